#pragma once
// Recorder: what one generator thread measured. Everything here is plain (no locks, no
// atomics on the hot path except single-writer relaxed stores for the live status line),
// one instance per thread, merged exactly after the run.
//
// Three histograms, all in nanoseconds:
//   corrected   completion - intended send time (wrk2's "corrected" latency)
//   uncorrected completion - actual send time
//   send_lag    actual - intended send time: how far the generator itself fell behind
// Failures are counted by kind and never recorded as latencies. Time is split into
// intervals for the time series; an interval's histogram, once closed, is immutable, which
// is what lets the status line read it from another thread.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "loadgen/histogram.h"

namespace echolab {

// Each counts messages (or connection attempts) that did not produce a latency.
enum class Failure : int {
  mismatched,       // echo arrived with at least one byte different
  missing,          // a later echo arrived first on the same stream: this one never came
  short_echo,       // the connection ended in the middle of this echo
  timeout,          // no echo within --timeout (lost, for datagrams)
  unexpected,       // an echo of no message in flight (unknown id or sequence)
  connect_refused,  // connect (or a datagram) answered with ECONNREFUSED
  connect_error,    // any other failed or timed-out connect
  reset,            // ECONNRESET / EPIPE on an established connection
  closed_by_peer,   // orderly close by the server while messages were in flight or due
  send_error,
  receive_error,
  protocol_error,   // an echo frame header announcing more than was ever sent
  aborted,          // in flight on a connection that failed for one of the reasons above
  overflow,         // the generator's own queue was full: the message was never sent
  unfinished,       // still in flight when the hard time limit or a signal ended the run
  kCount
};
inline constexpr int kFailureKinds = static_cast<int>(Failure::kCount);
[[nodiscard]] std::string_view to_string(Failure failure);

// Observations that are not failures of a message (its fate is counted elsewhere).
enum class Anomaly : int {
  mismatched_bytes,  // bytes that differed, over all mismatched echoes
  late,              // a datagram echo after its message timed out (not a new reply)
  duplicate,         // a second echo of a message already answered
  reordered,         // a datagram echo arriving after an echo of a later message
  kCount
};
inline constexpr int kAnomalyKinds = static_cast<int>(Anomaly::kCount);
[[nodiscard]] std::string_view to_string(Anomaly anomaly);

// Layouts: latencies 1 µs .. 60 s at 3 digits; send lag from 1 ns (it is often sub-µs);
// the per-interval histograms at 2 digits (1 % is plenty for a time series' p50/p99).
[[nodiscard]] Histogram make_latency_histogram();
[[nodiscard]] Histogram make_send_lag_histogram();
[[nodiscard]] Histogram make_interval_histogram();
[[nodiscard]] Histogram make_interval_send_lag_histogram();

struct Interval {
  std::int64_t start_ns = 0;  // relative to the start of measurement
  std::int64_t length_ns = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;  // echoed bytes received
  std::uint64_t errors = 0;
  Histogram latency = make_interval_histogram();  // corrected
  // Kept only when the recorder was asked for them (the .hlog output): two more histograms
  // per interval and thread are memory the time series alone does not need.
  std::optional<Histogram> uncorrected;
  std::optional<Histogram> send_lag;
};

// What one generator thread spent over the measured window (drain included).
struct ThreadUsage {
  double user_s = 0;
  double sys_s = 0;
  double wall_s = 0;
  // The wall time it was not waiting for something to do: everything but sleeps and polls
  // that found nothing (an open-loop thread polls instead of sleeping when its next send is
  // near, which costs a whole core without being work). Wall time: preempted with work in
  // hand counts as busy, so on a shared core it can pass user + sys. What --max-cpu judges.
  double busy_s = 0;
  // Open mode: the most paced messages sent back to back, with no idle wait between them:
  // how many were ever due at once (after a stall, say; warm-up included). 0 in closed and
  // connect modes.
  std::uint64_t largest_burst = 0;

  [[nodiscard]] double cpu_share() const { return wall_s > 0 ? (user_s + sys_s) / wall_s : 0.0; }
  [[nodiscard]] double busy_share() const { return wall_s > 0 ? busy_s / wall_s : 0.0; }
};

class Recorder {
 public:
  // Times are CLOCK_MONOTONIC nanoseconds; results count from `measure_start`.
  // `interval_details`: also keep uncorrected and send lag per interval (Interval's optionals).
  Recorder(std::int64_t measure_start, std::int64_t interval, std::size_t max_intervals,
           bool interval_details = false);
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Rolls the interval over when `now` passed its end; call once per loop iteration.
  void advance(std::int64_t now) {
    if (now >= next_boundary_) roll(now);
  }
  [[nodiscard]] bool measuring(std::int64_t intended) const { return intended >= measure_start_; }
  [[nodiscard]] std::int64_t next_boundary() const { return next_boundary_; }

  // `scheduled`: the message had an intended time of its own (open mode). In closed and
  // connect modes a message is intended when it is sent, so there is no lag to record.
  void record_send(std::int64_t intended, std::int64_t sent, std::size_t wire_bytes,
                   bool scheduled) noexcept;
  void record_echo(std::int64_t intended, std::int64_t sent, std::int64_t done,
                   std::size_t wire_bytes) noexcept;
  // `when`: the message's intended send time, or now for connection-level failures.
  void count(Failure failure, std::int64_t when, std::uint64_t n = 1) noexcept;
  void note(Anomaly anomaly, std::uint64_t n = 1) noexcept {
    anomalies_[static_cast<int>(anomaly)] += n;
  }
  // The thread waited with nothing to do from `from` to `to`; only the part inside the
  // measured window counts, the window the CPU time is taken over.
  void add_idle(std::int64_t from, std::int64_t to) noexcept {
    if (to > measure_start_) idle_ns_ += to - std::max(from, measure_start_);
  }
  void note_burst(std::uint64_t messages) noexcept {
    largest_burst_ = std::max(largest_burst_, messages);
  }

  // The measured window: set when the clock starts (until then everything counts as
  // warm-up), and when sending stops (later echoes still count, in the last interval).
  void set_measure_start(std::int64_t measure_start, std::int64_t planned_end = INT64_MAX);
  void stop_measuring(std::int64_t measure_end);
  // Closes the last interval and takes the thread's CPU usage (from the measure start to
  // `now`, drain included). Call in the recording thread.
  void finish(std::int64_t now);

  // --- read after finish() (or, for the published_* ones, live from another thread) ---
  const Histogram& corrected() const { return corrected_; }
  const Histogram& uncorrected() const { return uncorrected_; }
  const Histogram& send_lag() const { return send_lag_; }
  std::uint64_t failures(Failure f) const { return failures_[static_cast<int>(f)]; }
  std::uint64_t anomalies(Anomaly a) const { return anomalies_[static_cast<int>(a)]; }
  std::uint64_t warmup_failures() const { return warmup_failures_; }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t received() const { return received_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  std::uint64_t bytes_received() const { return bytes_received_; }
  std::uint64_t warmup_messages() const { return warmup_messages_; }
  const ThreadUsage& usage() const { return usage_; }
  // Intervals [0, closed_intervals()) are complete and immutable (acquire).
  std::size_t closed_intervals() const { return closed_.load(std::memory_order_acquire); }
  const Interval& interval(std::size_t index) const { return *intervals_[index]; }
  std::size_t interval_count() const { return used_intervals_; }
  std::uint64_t published_messages() const { return published_messages_.load(std::memory_order_relaxed); }
  std::uint64_t published_errors() const { return published_errors_.load(std::memory_order_relaxed); }

 private:
  void roll(std::int64_t now);
  void open_interval(std::size_t index);

  std::int64_t measure_start_;
  std::int64_t measure_end_ = INT64_MAX;
  std::int64_t interval_ns_;
  std::int64_t next_boundary_;
  std::size_t last_index_;  // intervals past this one are never opened
  Histogram corrected_ = make_latency_histogram();
  Histogram uncorrected_ = make_latency_histogram();
  Histogram send_lag_ = make_send_lag_histogram();
  std::uint64_t failures_[kFailureKinds] = {};
  std::uint64_t anomalies_[kAnomalyKinds] = {};
  std::uint64_t warmup_failures_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t warmup_messages_ = 0;
  std::uint64_t errors_ = 0;
  // Slots sized once, filled as intervals open: another thread may read closed ones while
  // this one writes the next, so the vector itself never reallocates.
  std::vector<std::unique_ptr<Interval>> intervals_;
  Interval* current_ = nullptr;
  std::size_t used_intervals_ = 0;
  std::atomic<std::size_t> closed_{0};
  std::atomic<std::uint64_t> published_messages_{0};
  std::atomic<std::uint64_t> published_errors_{0};
  ThreadUsage usage_;
  ThreadUsage usage_at_start_;
  std::int64_t idle_ns_ = 0;
  std::uint64_t largest_burst_ = 0;
  bool started_ = false;
  bool interval_details_ = false;
};

}  // namespace echolab
