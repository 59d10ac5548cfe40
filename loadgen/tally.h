#pragma once
// Tally: what a run counted (messages, bytes, failures by kind, anomalies) and the three
// latency histograms, and Interval: the same, in short, for one slice of the time series.
// A generator thread fills one of each (loadgen/recorder.h); a run adds its threads' up, and
// a merge adds runs' up (loadgen/merge.h), both with the same add.
//
// Histograms are in nanoseconds:
//   corrected   completion - intended send time (wrk2's "corrected" latency)
//   uncorrected completion - actual send time
//   send_lag    actual - intended send time: how far the generator itself fell behind
#include <array>
#include <cstddef>
#include <cstdint>
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

// Sums of counts that may come from files, where a wrap-around would be a silent lie. Both
// throw std::overflow_error when a count would pass 64 bits; add_histogram also throws
// std::invalid_argument (Histogram::merge's) for another layout. Either leaves `total`
// partly added: a failed sum is to be thrown away.
void add_count(std::uint64_t& total, std::uint64_t n);
void add_histogram(Histogram& total, const Histogram& part);

struct Tally {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;  // echoes received and verified
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t warmup_messages = 0;  // echoes of messages intended before the measure start
  std::uint64_t warmup_failures = 0;
  std::array<std::uint64_t, kFailureKinds> failures{};  // indexed by Failure
  std::array<std::uint64_t, kAnomalyKinds> anomalies{};  // indexed by Anomaly
  Histogram corrected = make_latency_histogram();
  Histogram uncorrected = make_latency_histogram();
  Histogram send_lag = make_send_lag_histogram();

  [[nodiscard]] std::uint64_t failures_total() const;
  // Adds another tally in, checked as add_count and add_histogram are (and throwing as they do).
  void add(const Tally& part);
};

// One slice of the measured window, counted from the start of measurement. Seconds, not
// nanoseconds: the JSON result holds seconds, and a result read back must add up to what
// was written.
struct Interval {
  double start_s = 0;
  double length_s = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;  // echoed bytes received
  std::uint64_t errors = 0;
  Histogram latency = make_interval_histogram();  // corrected
  // Kept only when asked for (the .hlog output), and not part of the JSON: two more
  // histograms per interval and thread are memory the time series alone does not need.
  std::optional<Histogram> uncorrected;
  std::optional<Histogram> send_lag;
};

// Adds `part` in as interval `index` of `intervals`, which grows to hold it. Intervals line
// up by index: each counts from its own run's (or thread's) start of measurement, and the
// first part's start stands for all. The length is the longest part's. Checked and throwing
// as add_count and add_histogram.
void add_interval(std::vector<Interval>& intervals, std::size_t index, const Interval& part);

}  // namespace echolab
