#pragma once
// Pacer: the open-loop send schedule of one generator thread, wrk2-style.
//
// Message k is *intended* to be sent at start + k / rate, whatever happened to message k-1.
// Latency is measured from that intended time, not from when the send actually happened:
// a generator that waits for a stalled server (or is itself descheduled) sends late, and
// timing from the late send would hide exactly the delay a real client at that rate would
// have suffered (coordinated omission). Sends that fall behind are made up in a burst, each
// still timed from its own intended time; how far behind they were is the send lag. The
// event loop takes at most a bounded batch of due messages per turn, so that a rate it
// cannot keep up with never keeps it from seeing the end of the run.
#include <cmath>
#include <cstdint>

namespace echolab {

class Pacer {
 public:
  Pacer(double rate_per_s, std::int64_t start_ns)
      : period_ns_(1e9 / rate_per_s), start_ns_(start_ns) {}

  // Intended send time of the next message (CLOCK_MONOTONIC ns); INT64_MAX once that is
  // past what int64 nanoseconds can hold (a very low rate), i.e. never.
  [[nodiscard]] std::int64_t next() const {
    // Computed from the start each time rather than accumulated, so rounding never drifts.
    const double offset = static_cast<double>(count_) * period_ns_;
    if (!(offset < static_cast<double>(INT64_MAX - start_ns_))) {
      return INT64_MAX;
    }
    return start_ns_ + static_cast<std::int64_t>(std::llround(offset));
  }
  void advance() { ++count_; }
  [[nodiscard]] std::uint64_t scheduled() const { return count_; }

 private:
  double period_ns_;
  std::int64_t start_ns_;
  std::uint64_t count_ = 0;
};

}  // namespace echolab
