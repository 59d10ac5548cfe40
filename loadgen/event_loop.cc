#include "loadgen/event_loop.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>

#include "core/error.h"
#include "core/stop.h"
#include "loadgen/datagram_connection.h"
#include "loadgen/stream_connection.h"

namespace echolab {
namespace {

constexpr int kMaxEvents = 256;
// Due messages sent per turn of the loop before it polls for echoes again: a backlog after a
// stall is sent in batches with a zero-timeout poll between them (so echoes keep being read
// while it drains, and the run's deadlines keep being checked), never with a sleep, so the
// bound paces nothing: the thread keeps turning until nothing is due.
constexpr int kMaxPacedBatch = 256;
// A paced send due within this much is waited for by polling the event loop (epoll_wait with
// a zero timeout), not by sleeping. A sleeping wait costs a timer, a context switch each way
// and a wake-up that comes several µs late (more on a virtual machine); at 100,000 msgs/s a
// thread's sends are 10 µs apart, so sleeping for each would cost most of the core and put
// the wake-up's lateness into every send's lag. Polling costs the core too but sends on
// time, and its empty polls count as idle, not busy (ThreadUsage::busy_s). Past 50 µs (under
// 20,000 msgs/s per thread) a sleep frees enough of the core to be worth its lateness.
constexpr std::int64_t kSpinWindowNs = 50'000;
constexpr std::size_t kMaxRing = 1 << 16;

std::size_t ring_capacity(const LoadConfig& config, const ThreadPlan& plan) {
  std::size_t wanted = 1;
  switch (config.mode) {
    case LoadMode::closed:
      wanted = static_cast<std::size_t>(config.pipeline);
      break;
    case LoadMode::connect:
      wanted = 1;
      break;
    case LoadMode::open: {
      // Room for everything one connection may have in flight before it times out, twice.
      const double per_connection = plan.rate / plan.connections;
      const double seconds = static_cast<double>(config.timeout.count()) / 1e9;
      wanted = static_cast<std::size_t>(std::min(per_connection * seconds * 2 + 64, double{kMaxRing}));
      break;
    }
  }
  if (!is_stream(config.transport)) {
    // Datagram slots stay marked (answered, timed out) for a while so that late and
    // duplicate replies are recognised: keep a window well past what is outstanding.
    wanted = std::max<std::size_t>(wanted * 4, 64);
  }
  return std::bit_ceil(std::min(wanted, kMaxRing));
}

}  // namespace

std::size_t EventLoop::memory_estimate(const LoadConfig& config, const ThreadPlan& plan) {
  const std::size_t ring = ring_capacity(config, plan);
  const std::size_t per_connection = is_stream(config.transport)
                                         ? StreamConnection::footprint(config, ring)
                                         : DatagramConnection::footprint(config, ring);
  const std::size_t histograms = (2 * make_latency_histogram().counts_size() +
                                  make_send_lag_histogram().counts_size()) * sizeof(std::uint64_t);
  const std::size_t interval_slots = max_intervals(config) * sizeof(void*);
  return static_cast<std::size_t>(plan.connections) * per_connection + histograms + interval_slots;
}

std::size_t EventLoop::max_intervals(const LoadConfig& config) {
  return static_cast<std::size_t>(config.hard_limit() / config.interval) + 2;
}

std::string_view to_string(StopReason reason) {
  switch (reason) {
    case StopReason::duration: return "duration";
    case StopReason::messages: return "messages";
    case StopReason::time_limit: return "time_limit";
    case StopReason::interrupted: return "interrupted";
  }
  return "?";
}

EventLoop::EventLoop(const LoadConfig& config, const ThreadPlan& plan, const SocketAddress& target,
                     const PayloadPool& pool, std::span<const SocketAddress> sources)
    : config_(config),
      plan_(plan),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      sizes_(config.size, config.seed * 1'000'003 + static_cast<std::uint64_t>(plan.index)),
      recorder_(INT64_MAX, config.interval.count(), max_intervals(config),
                !config.hlog_path.empty()),
      events_(kMaxEvents) {
  if (!epoll_) {
    throw_sys_error("epoll_create1");
  }
  context_ = std::make_unique<WorkerContext>(WorkerContext{
      config, target, pool, sizes_, recorder_, syscalls_, *this, epoll_.get(),
      ring_capacity(config, plan), sources});
  connections_.reserve(static_cast<std::size_t>(plan.connections));
  for (int i = 0; i < plan.connections; ++i) {
    const std::uint32_t id = plan.first_connection_id + static_cast<std::uint32_t>(i);
    const auto slot = static_cast<std::uint32_t>(i);
    if (is_stream(config.transport)) {
      connections_.push_back(std::make_unique<StreamConnection>(*context_, id, slot));
    } else {
      connections_.push_back(std::make_unique<DatagramConnection>(*context_, id, slot));
    }
  }
}

EventLoop::~EventLoop() = default;

void EventLoop::prepare() {
  // The default 50 us timer slack would let every paced wake-up come up to 50 us late, all
  // of it counted as send lag: ask for 1 ns.
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  if (plan_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(plan_.cpu, &set);
    if (int err = ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set)) {
      pin_error_ = describe_errno("pthread_setaffinity_np cpu " + std::to_string(plan_.cpu), err);
    }
  }
  std::int64_t now = monotonic_ns();
  for (auto& connection : connections_) {
    connection->start(now);
  }
  const std::int64_t deadline = now + config_.timeout.count();
  for (;;) {
    now = monotonic_ns();
    const bool all_settled = std::all_of(connections_.begin(), connections_.end(),
                                         [](const auto& c) { return c->settled(); });
    if (all_settled || now >= deadline || stop_requested()) {
      break;
    }
    wait(std::min(deadline, now + 50'000'000), now);
  }
}

bool EventLoop::take_ticket(std::int64_t now) {
  if (!issuing_) {
    return false;
  }
  if (plan_.limited && recorder_.measuring(now)) {
    if (issued_ >= plan_.quota) {
      end_sending(now, StopReason::messages);
      return false;
    }
    if (++issued_ >= plan_.quota) {
      end_sending(now, StopReason::messages);
    }
  }
  return true;
}

void EventLoop::end_sending(std::int64_t now, StopReason reason) {
  if (!issuing_) {
    return;
  }
  issuing_ = false;
  stop_reason_ = reason;
  measure_end_ = reason == StopReason::duration ? clock_.send_end : now;
  recorder_.stop_measuring(measure_end_);
  // One timeout lets every message in flight either come back or time out; the timeout
  // checks run every tick, hence the margin.
  drain_deadline_ = now + config_.timeout.count() + 100'000'000;
}

std::size_t EventLoop::in_flight() const {
  std::size_t total = 0;
  for (const auto& connection : connections_) {
    total += connection->in_flight();
  }
  return total;
}

int EventLoop::wait_for_events(std::int64_t timeout_ns) {
  const std::int64_t delay = std::max<std::int64_t>(0, timeout_ns);
  const timespec timeout{static_cast<time_t>(delay / 1'000'000'000),
                         static_cast<long>(delay % 1'000'000'000)};
  syscalls_.count(Syscall::epoll_wait);
  return ::epoll_pwait2(epoll_.get(), events_.data(), kMaxEvents, &timeout, nullptr);
}

void EventLoop::wait(std::int64_t until, std::int64_t now) {
  const int ready = wait_for_events(until - now);
  if (ready > 0) {
    dispatch(ready, monotonic_ns());
  }
}

void EventLoop::wait_in_run(std::int64_t until, bool pacing, std::int64_t& idle_since) {
  // The clock read afresh: the turn's sends took time, and a timeout computed from the turn's
  // start would oversleep by that much.
  const std::int64_t before = monotonic_ns();
  const bool nothing_due = until > before;
  const bool poll = !nothing_due || (pacing && until - before <= kSpinWindowNs);
  const int ready = wait_for_events(poll ? 0 : until - before);
  if (nothing_due) {
    recorder_.note_burst(burst_);
    burst_ = 0;
  }
  if (ready > 0) {
    const std::int64_t after = monotonic_ns();
    if (!poll) {
      recorder_.add_idle(before, after);  // asleep until the events came
    }
    dispatch(ready, after);
  } else if (nothing_due) {
    idle_since = before;
    if (poll) {
      // A thread polling for its next send holds its core: hand it over when another thread
      // waits for it (a second generator thread on the same CPU, say), which would otherwise
      // wait out a whole time slice. Alone on the core this returns at once.
      ::sched_yield();
    }
  }
}

std::int64_t EventLoop::send_due(std::int64_t now) {
  // Bounded: behind a rate this thread cannot send at, the backlog never empties, and the
  // run's deadlines must still be checked every turn (see kMaxPacedBatch). Nothing intended
  // from the end of sending on: the clock read inside the batch may pass it.
  const std::int64_t last_intended = clock_.send_end - 1;
  for (int batch = 0; batch < kMaxPacedBatch && issuing_ && pacer_->next() <= std::min(now, last_intended);
       ++batch) {
    const std::int64_t intended = pacer_->next();
    pacer_->advance();
    if (!take_ticket(intended)) {
      break;
    }
    connections_[next_connection_]->submit(intended, now);
    next_connection_ = (next_connection_ + 1) % connections_.size();
    ++burst_;
    // Each send timed when it is made: the lag of the last message of a burst includes the
    // sends before it, and messages that fell due meanwhile go out in the same turn.
    now = monotonic_ns();
  }
  return now;
}

void EventLoop::dispatch(int ready, std::int64_t now) {
  for (int i = 0; i < ready; ++i) {
    const std::uint64_t key = events_[static_cast<std::size_t>(i)].data.u64;
    const auto slot = static_cast<std::size_t>(key >> 32);
    const auto generation = static_cast<std::uint32_t>(key);
    if (slot < connections_.size() && connections_[slot]->generation() == generation) {
      connections_[slot]->on_events(events_[static_cast<std::size_t>(i)].events, now);
    }
  }
}

void EventLoop::run(const RunClock& clock) {
  clock_ = clock;
  recorder_.set_measure_start(clock.measure_start, clock.send_end);
  if (config_.mode == LoadMode::open) {
    // Threads start a fraction of a period apart, so their schedules interleave.
    const double total_period_ns = 1e9 / config_.rate;
    pacer_.emplace(plan_.rate, clock.start + static_cast<std::int64_t>(plan_.index * total_period_ns));
  }
  issuing_ = true;
  measure_end_ = clock.send_end;
  std::int64_t now = monotonic_ns();
  for (auto& connection : connections_) {
    connection->resume(now);
  }
  const std::int64_t tick_ns =
      std::clamp<std::int64_t>(config_.timeout.count() / 4, 1'000'000, 50'000'000);
  std::int64_t next_tick = now + tick_ns;
  std::int64_t idle_since = -1;  // >= 0: the last wait found nothing to do, from then
  for (;;) {
    now = monotonic_ns();
    if (idle_since >= 0) {
      recorder_.add_idle(idle_since, now);
      idle_since = -1;
    }
    if (now >= clock_.hard_deadline) {
      end_sending(now, StopReason::time_limit);
      stop_reason_ = StopReason::time_limit;
      break;
    }
    if (issuing_ && stop_requested()) {
      end_sending(now, StopReason::interrupted);
    }
    if (issuing_ && now >= clock_.send_end) {
      end_sending(now, StopReason::duration);
    }
    recorder_.advance(now);
    if (pacer_) {
      now = send_due(now);
    }
    if (now >= next_tick) {
      for (auto& connection : connections_) {
        connection->tick(now);
      }
      next_tick = now + tick_ns;
    }
    if (!issuing_ && (in_flight() == 0 || now >= drain_deadline_)) {
      break;
    }
    std::int64_t until = std::min({next_tick, recorder_.next_boundary(), clock_.hard_deadline});
    if (issuing_) {
      until = std::min(until, clock_.send_end);
      if (pacer_) until = std::min(until, pacer_->next());
    } else {
      until = std::min(until, drain_deadline_);
    }
    wait_in_run(until, pacer_ && issuing_, idle_since);
  }
  now = monotonic_ns();
  recorder_.note_burst(burst_);
  for (auto& connection : connections_) {
    connection->abandon(now);
  }
  recorder_.finish(now);
}

}  // namespace echolab
