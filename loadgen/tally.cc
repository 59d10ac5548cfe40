#include "loadgen/tally.h"

#include <algorithm>
#include <stdexcept>

namespace echolab {

std::string_view to_string(Failure failure) {
  switch (failure) {
    case Failure::mismatched: return "mismatched";
    case Failure::missing: return "missing";
    case Failure::short_echo: return "short_echo";
    case Failure::timeout: return "timeout";
    case Failure::unexpected: return "unexpected";
    case Failure::connect_refused: return "connect_refused";
    case Failure::connect_error: return "connect_error";
    case Failure::reset: return "reset";
    case Failure::closed_by_peer: return "closed_by_peer";
    case Failure::send_error: return "send_error";
    case Failure::receive_error: return "receive_error";
    case Failure::protocol_error: return "protocol_error";
    case Failure::aborted: return "aborted";
    case Failure::overflow: return "overflow";
    case Failure::unfinished: return "unfinished";
    case Failure::kCount: break;
  }
  return "?";
}

std::string_view to_string(Anomaly anomaly) {
  switch (anomaly) {
    case Anomaly::mismatched_bytes: return "mismatched_bytes";
    case Anomaly::late: return "late";
    case Anomaly::duplicate: return "duplicate";
    case Anomaly::reordered: return "reordered";
    case Anomaly::kCount: break;
  }
  return "?";
}

Histogram make_latency_histogram() { return Histogram(1'000, 60'000'000'000, 3); }
Histogram make_send_lag_histogram() { return Histogram(1, 60'000'000'000, 3); }
Histogram make_interval_histogram() { return Histogram(1'000, 60'000'000'000, 2); }
Histogram make_interval_send_lag_histogram() { return Histogram(1, 60'000'000'000, 2); }

void add_count(std::uint64_t& total, std::uint64_t n) {
  if (n > UINT64_MAX - total) {
    throw std::overflow_error("the counts add up past 64 bits");
  }
  total += n;
}

void add_histogram(Histogram& total, const Histogram& part) {
  // Every value the merged histogram will hold, in range or not, must still be countable.
  std::uint64_t values = total.count() + total.below_range() + total.above_range();
  add_count(values, part.count() + part.below_range() + part.above_range());
  total.merge(part);
}

std::uint64_t Tally::failures_total() const {
  std::uint64_t total = 0;
  for (const std::uint64_t n : failures) total += n;
  return total;
}

void Tally::add(const Tally& part) {
  add_count(sent, part.sent);
  add_count(received, part.received);
  add_count(bytes_sent, part.bytes_sent);
  add_count(bytes_received, part.bytes_received);
  add_count(warmup_messages, part.warmup_messages);
  add_count(warmup_failures, part.warmup_failures);
  for (std::size_t i = 0; i < failures.size(); ++i) add_count(failures[i], part.failures[i]);
  for (std::size_t i = 0; i < anomalies.size(); ++i) add_count(anomalies[i], part.anomalies[i]);
  add_histogram(corrected, part.corrected);
  add_histogram(uncorrected, part.uncorrected);
  add_histogram(send_lag, part.send_lag);
}

void add_interval(std::vector<Interval>& intervals, std::size_t index, const Interval& part) {
  if (intervals.size() <= index) {
    intervals.resize(index + 1);
    intervals[index].start_s = part.start_s;
  }
  Interval& total = intervals[index];
  total.length_s = std::max(total.length_s, part.length_s);
  add_count(total.messages, part.messages);
  add_count(total.bytes, part.bytes);
  add_count(total.errors, part.errors);
  add_histogram(total.latency, part.latency);
  if (part.uncorrected) {
    if (!total.uncorrected) total.uncorrected.emplace(make_interval_histogram());
    add_histogram(*total.uncorrected, *part.uncorrected);
  }
  if (part.send_lag) {
    if (!total.send_lag) total.send_lag.emplace(make_interval_send_lag_histogram());
    add_histogram(*total.send_lag, *part.send_lag);
  }
}

}  // namespace echolab
