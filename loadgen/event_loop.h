#pragma once
// EventLoop: one generator thread. It owns an epoll set, its share of the connections, a
// Recorder and (open mode) a Pacer, and runs in two steps: prepare() opens the connections
// before the clock starts, so that set-up never counts as latency; run() drives the load
// until the run's end, drains what is in flight for at most one timeout, and stops at the
// hard limit whatever the target does.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/address.h"
#include "core/clock.h"
#include "core/fd.h"
#include "core/stats.h"
#include "loadgen/config.h"
#include "loadgen/connection.h"
#include "loadgen/message.h"
#include "loadgen/pacer.h"
#include "loadgen/recorder.h"

namespace echolab {

// The shared timeline of a run (CLOCK_MONOTONIC ns).
struct RunClock {
  std::int64_t start = 0;          // warm-up begins
  std::int64_t measure_start = 0;  // results count from here
  std::int64_t send_end = 0;       // no new messages after this (INT64_MAX with --messages)
  std::int64_t hard_deadline = 0;  // the loop returns by then, whatever happens
};

struct ThreadPlan {
  int index = 0;
  int cpu = -1;  // -1: not pinned
  std::uint32_t first_connection_id = 0;
  int connections = 1;
  bool limited = false;     // --messages: this thread issues `quota` measured messages
  std::uint64_t quota = 0;
  double rate = 0;          // open mode: this thread's msgs/s
};

enum class StopReason { duration, messages, time_limit, interrupted };
[[nodiscard]] std::string_view to_string(StopReason reason);

class EventLoop final : public TicketSource {
 public:
  // `sources`: see WorkerContext::sources; it must outlive the loop.
  EventLoop(const LoadConfig& config, const ThreadPlan& plan, const SocketAddress& target,
            const PayloadPool& pool, std::span<const SocketAddress> sources = {});
  ~EventLoop();

  // Bytes a loop for `plan` allocates up front (connections, buffers, histograms), so that
  // a run the machine cannot hold is refused before it starts.
  [[nodiscard]] static std::size_t memory_estimate(const LoadConfig& config, const ThreadPlan& plan);
  [[nodiscard]] static std::size_t max_intervals(const LoadConfig& config);

  // In the loop's own thread: pins it, opens its connections and waits (at most one
  // timeout) until each is connected or has failed (counted).
  void prepare();
  // In the loop's own thread: the measured run.
  void run(const RunClock& clock);

  [[nodiscard]] Recorder& recorder() { return recorder_; }
  [[nodiscard]] const Counters& syscalls() const { return syscalls_; }
  [[nodiscard]] StopReason stop_reason() const { return stop_reason_; }
  // When this thread stopped issuing: the end of its measured window.
  [[nodiscard]] std::int64_t measure_end() const { return measure_end_; }
  [[nodiscard]] std::uint64_t issued() const { return issued_; }
  // Set when pinning failed (reported, not fatal).
  [[nodiscard]] const std::string& pin_error() const { return pin_error_; }

  bool take_ticket(std::int64_t now) override;
  [[nodiscard]] bool issuing() const override { return issuing_; }

 private:
  void end_sending(std::int64_t now, StopReason reason);
  void dispatch(int ready, std::int64_t now);
  [[nodiscard]] std::size_t in_flight() const;
  // One epoll wait of at most `timeout_ns` (0: a poll that returns at once); the ready count.
  int wait_for_events(std::int64_t timeout_ns);
  // Set-up: waits until `until` or the first events, and handles them.
  void wait(std::int64_t until, std::int64_t now);
  // Open mode: sends every message due by the clock, the clock read again after each send.
  // Returns the clock after the last.
  std::int64_t send_due(std::int64_t now);
  // The measured run's wait for the next deadline `until`: polled for when a paced send is
  // that near (or already due), slept for otherwise; events are handled. Time spent with
  // nothing to do is counted idle, up to `idle_since` (set here, closed by the caller at
  // its next clock reading).
  void wait_in_run(std::int64_t until, bool pacing, std::int64_t& idle_since);

  const LoadConfig& config_;
  ThreadPlan plan_;
  Fd epoll_;
  Counters syscalls_;
  SizeSampler sizes_;
  Recorder recorder_;
  std::unique_ptr<WorkerContext> context_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::optional<Pacer> pacer_;
  std::size_t next_connection_ = 0;  // round robin of the pacer
  std::uint64_t burst_ = 0;  // paced messages sent since the thread last waited idle
  RunClock clock_;
  bool issuing_ = false;
  std::uint64_t issued_ = 0;
  std::int64_t drain_deadline_ = 0;
  std::int64_t measure_end_ = 0;
  StopReason stop_reason_ = StopReason::duration;
  std::string pin_error_;
  std::vector<epoll_event> events_;
};

}  // namespace echolab
