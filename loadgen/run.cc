#include "loadgen/run.h"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "core/error.h"
#include "core/fd.h"
#include "core/io.h"
#include "core/socket.h"
#include "core/stop.h"
#include "loadgen/environment.h"
#include "loadgen/event_loop.h"
#include "loadgen/live_status.h"
#include "loadgen/sources.h"
#include "loadgen/spread.h"

namespace echolab {
namespace {

constexpr std::uint32_t kProbeConnectionId = 0xFFFFFFFF;
constexpr std::int64_t kStuckGraceNs = 10'000'000'000;

// Waits for `events` on fd for at most timeout_ms; returns poll's revents (0 on timeout).
short wait_for(int fd, short events, int timeout_ms) {
  pollfd waiter{fd, events, 0};
  int ready;
  do {
    ready = ::poll(&waiter, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  return ready > 0 ? waiter.revents : 0;
}

// Empty string: the address answered. Otherwise why not, as "call: reason".
std::string probe_address(const LoadConfig& config, const SocketAddress& address) {
  const int timeout_ms = static_cast<int>(std::max<std::int64_t>(1, config.timeout.count() / 1'000'000));
  const bool datagram = config.is_datagram();
  Fd fd(::socket(address.family(), (datagram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    return describe_errno("socket", errno);
  }
  if (config.transport == Transport::unix_dgram) {
    sa_family_t family = AF_UNIX;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&family), sizeof(family)) != 0) {
      return describe_errno("bind", errno);
    }
  }
  if (::connect(fd.get(), address.get(), address.length) != 0) {
    if (errno != EINPROGRESS) {
      return describe_errno("connect", errno);
    }
    if (wait_for(fd.get(), POLLOUT, timeout_ms) == 0) {
      return "connect: no answer within --timeout";
    }
    int err = 0;
    socklen_t length = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &length);
    if (err != 0) {
      return describe_errno("connect", err);
    }
  }
  if (!datagram) {
    return {};
  }
  // A datagram target has to prove it is there by echoing.
  PayloadPool pool(config.size.min, config.seed);
  std::vector<std::byte> message(wire_size(config.protocol, config.size.min));
  encode_message(message.data(), config.protocol, kProbeConnectionId, 0, config.size.min, pool);
  if (::send(fd.get(), message.data(), message.size(), MSG_NOSIGNAL) < 0) {
    return describe_errno("send", errno);
  }
  if (wait_for(fd.get(), POLLIN, timeout_ms) == 0) {
    return "no echo within --timeout";
  }
  std::vector<std::byte> reply(message.size() + 1);
  if (::recv(fd.get(), reply.data(), reply.size(), 0) < 0) {
    return describe_errno("recv", errno);
  }
  return {};
}

std::vector<ThreadPlan> plan_threads(const LoadConfig& config) {
  std::vector<ThreadPlan> plans;
  std::uint32_t next_id = 0;
  const auto threads = static_cast<std::uint64_t>(config.threads);
  for (int i = 0; i < config.threads; ++i) {
    ThreadPlan plan;
    plan.index = i;
    plan.cpu = config.cpus.empty() ? -1 : config.cpus[static_cast<std::size_t>(i) % config.cpus.size()];
    plan.connections = static_cast<int>(even_share(static_cast<std::uint64_t>(config.connections),
                                                   static_cast<std::uint64_t>(i), threads));
    plan.first_connection_id = next_id;
    next_id += static_cast<std::uint32_t>(plan.connections);
    if (config.messages > 0) {
      plan.limited = true;
      plan.quota = even_share(config.messages, static_cast<std::uint64_t>(i), threads);
    }
    plan.rate = config.rate * plan.connections / config.connections;
    plans.push_back(plan);
  }
  return plans;
}

std::string limit_text(rlim_t limit) { return limit == RLIM_INFINITY ? "unlimited" : std::to_string(limit); }

// What set-up decided on the run's behalf (a raised limit, extra source addresses): one line
// each on stderr, since the JSON result's schema has no place for them yet.
void print_note(const std::string& note) {
  if (!note.empty()) {
    std::cerr << ("echolab-loadgen: note: " + note + "\n") << std::flush;
  }
}

// The measured window, for --window-file: written whole under a temporary name and renamed,
// so a reader polling for the file never sees half of it. A failure is a warning: the run
// itself is still worth having.
void write_measured_window(const std::string& path, const RunClock& clock) {
  const auto seconds = [](std::int64_t ns) { return static_cast<double>(ns) / 1e9; };
  nlohmann::json window = {{"clock", "CLOCK_MONOTONIC"},
                           {"start_s", seconds(clock.start)},
                           {"measure_start_s", seconds(clock.measure_start)},
                           {"send_end_s", clock.send_end == INT64_MAX ? nlohmann::json(nullptr)
                                                                      : nlohmann::json(seconds(clock.send_end))}};
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << window.dump() << "\n";
    if (!out.flush()) {
      std::cerr << "echolab-loadgen: warning: --window-file: cannot write " << temporary << "\n";
      return;
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    std::cerr << "echolab-loadgen: warning: --window-file: " << describe_errno("rename " + path, errno) << "\n";
  }
}

// Sleeps until `when` on CLOCK_REALTIME (the clock the generators agreed on), through
// signals: a stop asked for meanwhile is seen by the run that follows.
void sleep_until(std::chrono::system_clock::time_point when) {
  const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
  if (since_epoch <= 0) return;
  const timespec at{static_cast<time_t>(since_epoch / 1'000'000'000), static_cast<long>(since_epoch % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr) == EINTR) {
  }
}

std::string mebibytes(std::uint64_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

// Refuses, before anything is allocated or connected, a run this machine cannot hold:
// buffers past half of the physical memory, or more sockets than RLIMIT_NOFILE lets the
// process open (after raising the soft limit towards the hard one, which any process may).
// Returns a note saying so when it raised the limit, empty otherwise.
std::string check_resources(const LoadConfig& config, const std::vector<ThreadPlan>& plans) {
  std::uint64_t bytes = 0;
  for (const ThreadPlan& plan : plans) {
    bytes += EventLoop::memory_estimate(config, plan);
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    const auto physical = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
    if (bytes > physical / 2) {
      throw UsageError("this run needs about " + mebibytes(bytes) + " of buffers (--connections " +
                       std::to_string(config.connections) + ", --size up to " +
                       std::to_string(config.size.max) + "), more than half of this machine's " +
                       mebibytes(physical) + ": use fewer --connections or a smaller --size");
    }
  }
  // One socket per connection, one epoll per thread, and a margin for stdio, the probe
  // socket and the output files.
  const auto needed = static_cast<rlim_t>(config.connections) + static_cast<rlim_t>(config.threads) + 16;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) {
    throw_sys_error("getrlimit RLIMIT_NOFILE");
  }
  std::string note;
  if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < needed) {
    rlimit raised = files;
    raised.rlim_cur = files.rlim_max == RLIM_INFINITY ? needed : std::min(needed, files.rlim_max);
    if (raised.rlim_cur >= needed && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      note = "raised the RLIMIT_NOFILE soft limit from " + std::to_string(files.rlim_cur) + " to " +
             std::to_string(raised.rlim_cur) + " (hard limit " + limit_text(files.rlim_max) + "): --connections " +
             std::to_string(config.connections) + " needs " + std::to_string(needed) + " file descriptors";
      files = raised;
    }
  }
  if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < needed) {
    throw UsageError("--connections " + std::to_string(config.connections) + " needs " +
                     std::to_string(needed) + " file descriptors, but RLIMIT_NOFILE allows " +
                     std::to_string(files.rlim_cur) + " (hard limit " + limit_text(files.rlim_max) +
                     "): use fewer --connections or raise the hard limit (ulimit -Hn, as root)");
  }
  return note;
}

// What run_load shares with its generator threads: the loops and all they refer to (the
// configuration, target, payloads and source addresses), the latches, the clock, the count
// of finished threads and their errors. Each thread holds it too: one stuck past the hard
// limit is left behind, detached, and must find it all still there after run_load threw.
struct SharedRun {
  SharedRun(const LoadConfig& load, const SocketAddress& address,
            std::vector<SocketAddress> source_addresses, const std::vector<ThreadPlan>& plans)
      : config(load),
        target(address),
        sources(std::move(source_addresses)),
        pool(config.size.max, config.seed),
        ready(static_cast<std::ptrdiff_t>(plans.size())),
        thread_errors(plans.size()) {
    for (const ThreadPlan& plan : plans) {
      loops.push_back(std::make_unique<EventLoop>(config, plan, target, pool, sources));
    }
  }

  const LoadConfig config;
  const SocketAddress target;
  const std::vector<SocketAddress> sources;
  const PayloadPool pool;
  std::vector<std::unique_ptr<EventLoop>> loops;
  std::latch ready;
  std::latch go{1};
  RunClock clock;          // written before go opens, read after: the latch orders it
  bool cancelled = false;  // likewise: set when the run ends before it starts
  std::mutex mutex;
  std::condition_variable finished_changed;
  std::size_t finished = 0;  // guarded by mutex
  // A generator thread that fails (out of memory opening an interval, say) must not take the
  // process down with std::terminate: its error is rethrown once all have stopped.
  std::vector<std::exception_ptr> thread_errors;
};

// One thread per loop: it connects (prepare), counts down `ready`, waits for `go`, runs.
std::vector<std::thread> start_threads(const std::shared_ptr<SharedRun>& run) {
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < run->loops.size(); ++i) {
    threads.emplace_back([run, i] {
      block_stop_signals_in_this_thread();
      EventLoop& loop = *run->loops[i];
      bool counted_down = false;
      try {
        loop.prepare();
        run->ready.count_down();
        counted_down = true;
        run->go.wait();
        if (!run->cancelled) {
          loop.run(run->clock);
        }
      } catch (...) {
        run->thread_errors[i] = std::current_exception();
        if (!counted_down) {
          run->ready.count_down();
        }
      }
      {
        std::lock_guard lock(run->mutex);
        ++run->finished;
      }
      run->finished_changed.notify_one();
    });
  }
  return threads;
}

// Waits until every generator thread has finished, showing the live status meanwhile, and
// joins them. Threads still running well past the hard limit (which cannot happen unless
// one is stuck: the loops stop there whatever the target does) are detached instead, and
// std::runtime_error is thrown: the caller is neither hung nor ended.
void wait_for_threads(SharedRun& run, std::vector<std::thread>& threads,
                      const StatusCallback& on_status) {
  std::vector<const Recorder*> recorders;
  for (const auto& loop : run.loops) {
    recorders.push_back(&loop->recorder());
  }
  LiveStatusSampler sampler(std::move(recorders), run.clock.start, run.clock.measure_start);
  std::unique_lock lock(run.mutex);
  while (run.finished < threads.size()) {
    run.finished_changed.wait_for(lock, std::chrono::milliseconds(250));
    if (monotonic_ns() > run.clock.hard_deadline + kStuckGraceNs) {
      lock.unlock();
      for (std::thread& thread : threads) {
        thread.detach();
      }
      throw std::runtime_error("generator threads did not stop at the hard time limit");
    }
    if (!on_status || run.finished == threads.size()) {
      continue;
    }
    const LiveStatus status = sampler.sample(monotonic_ns());
    lock.unlock();
    on_status(status);
    lock.lock();
  }
  lock.unlock();
  for (std::thread& thread : threads) {
    thread.join();
  }
}

// Adds up what the threads measured, exactly, into the run's result.
RunResult fold_result(const SharedRun& run, std::chrono::system_clock::time_point wall_start,
                      std::optional<std::chrono::system_clock::time_point> agreed_start) {
  const LoadConfig& config = run.config;
  RunResult r;
  r.config = to_json(config);
  r.context = collect_context();
  r.start_utc = format_utc(wall_start + config.warmup);
  r.start_unix_s = std::chrono::duration<double>(wall_start.time_since_epoch()).count() +
                   static_cast<double>(config.warmup.count()) / 1e9;
  if (agreed_start) {
    r.start_late_s = std::chrono::duration<double>(wall_start - *agreed_start).count();
  }
  std::int64_t measure_end = run.clock.measure_start;
  bool time_limit = false;
  bool interrupted = false;
  std::array<std::uint64_t, static_cast<int>(Syscall::kCount)> syscalls{};
  for (const auto& loop : run.loops) {
    measure_end = std::max(measure_end, loop->measure_end());
    time_limit |= loop->stop_reason() == StopReason::time_limit;
    interrupted |= loop->stop_reason() == StopReason::interrupted;
    const Recorder& rec = loop->recorder();
    r.tally.add(rec.tally());
    for (std::size_t i = 0; i < rec.interval_count(); ++i) {
      add_interval(r.intervals, i, rec.interval(i));
    }
    r.threads.push_back(rec.usage());
    for (std::size_t i = 0; i < syscalls.size(); ++i) {
      syscalls[i] += loop->syscalls().syscalls[i];
    }
  }
  for (std::size_t i = 0; i < syscalls.size(); ++i) {
    if (syscalls[i] > 0) {
      r.syscalls[std::string(to_string(static_cast<Syscall>(i)))] = syscalls[i];
    }
  }
  r.measured_s = std::max(1e-9, static_cast<double>(measure_end - run.clock.measure_start) / 1e9);
  r.stopped_by = time_limit    ? "time_limit"
                 : interrupted ? "interrupted"
                 : std::string(config.messages > 0 ? "messages" : "duration");
  r.asked_msgs_per_s = config.mode == LoadMode::open ? config.rate : 0.0;
  r.sent_msgs_per_s = static_cast<double>(r.tally.sent) / r.measured_s;
  r.msgs_per_s = static_cast<double>(r.tally.received) / r.measured_s;
  r.bytes_per_s = static_cast<double>(r.tally.bytes_received) / r.measured_s;
  assess_validity(r);
  return r;
}

}  // namespace

SocketAddress probe_target(const LoadConfig& config) {
  const std::vector<SocketAddress> candidates = resolve(config.target, config.transport, false);
  std::string why = "no address";
  for (const SocketAddress& candidate : candidates) {
    why = probe_address(config, candidate);
    if (why.empty()) {
      return candidate;
    }
  }
  throw UsageError("cannot reach " + config.target_text + " (" +
                   std::string(to_string(config.transport)) + "): " + why);
}

RunResult run_load(const LoadConfig& config, const StatusCallback& on_status,
                   const StartAgreement& agree_on_start) {
  ignore_sigpipe();
  const std::vector<ThreadPlan> plans = plan_threads(config);
  const std::string limit_note = check_resources(config, plans);
  const SocketAddress target = probe_target(config);
  SourcePlan sources = plan_sources(config, target, read_port_range());
  print_note(limit_note);
  print_note(sources.note);
  const auto run = std::make_shared<SharedRun>(config, target, std::move(sources.addresses), plans);

  std::vector<std::thread> threads = start_threads(run);
  run->ready.wait();
  // Nothing is measured when a thread could not set up, or when the other generators say
  // not to start: the threads are released without running and the reason propagates.
  // (Until `go` opens, only failed set-ups have written their thread_errors entry.)
  std::exception_ptr setup_error;
  for (const std::exception_ptr& error : run->thread_errors) {
    if (error && !setup_error) setup_error = error;
  }
  std::optional<std::chrono::system_clock::time_point> agreed_start;
  if (!setup_error && agree_on_start) {
    try {
      agreed_start = agree_on_start();
    } catch (...) {
      setup_error = std::current_exception();
    }
  }
  if (setup_error) {
    run->cancelled = true;
    run->go.count_down();
    for (auto& thread : threads) {
      thread.join();
    }
    std::rethrow_exception(setup_error);
  }
  for (const auto& loop : run->loops) {
    if (!loop->pin_error().empty()) {
      std::cerr << "echolab-loadgen: warning: " << loop->pin_error() << "\n";
    }
  }
  if (agreed_start) {
    sleep_until(*agreed_start);
  }
  const auto wall_start = std::chrono::system_clock::now();
  const std::int64_t start = monotonic_ns();
  run->clock.start = start;
  run->clock.measure_start = start + config.warmup.count();
  run->clock.send_end =
      config.messages > 0 ? INT64_MAX : run->clock.measure_start + config.duration.count();
  run->clock.hard_deadline = start + config.hard_limit().count();
  run->go.count_down();
  if (!config.window_path.empty()) {
    // Once, from this thread, in the warm-up (unless there is none).
    write_measured_window(config.window_path, run->clock);
  }

  wait_for_threads(*run, threads, on_status);
  for (const std::exception_ptr& error : run->thread_errors) {
    if (error) {
      std::rethrow_exception(error);
    }
  }
  return fold_result(*run, wall_start, agreed_start);
}

}  // namespace echolab
