#pragma once
// Recorder: what one generator thread measured, in a Tally (loadgen/tally.h) and a time
// series of Intervals. Everything here is plain (no locks, no atomics on the hot path except
// single-writer relaxed stores for the live status line), one instance per thread, added up
// exactly after the run.
//
// Failures are counted by kind and never recorded as latencies. Time is split into
// intervals for the time series; an interval's histogram, once closed, is immutable, which
// is what lets the status line read it from another thread.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "loadgen/tally.h"

namespace echolab {

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
    tally_.anomalies[static_cast<std::size_t>(anomaly)] += n;
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
  const Tally& tally() const { return tally_; }
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
  Tally tally_;
  std::uint64_t errors_ = 0;  // failures in the measured window, for the status line
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
