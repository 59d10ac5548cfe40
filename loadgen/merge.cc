#include "loadgen/merge.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "core/error.h"
#include "loadgen/environment.h"

namespace echolab {
namespace {

// Settings that may differ between the generators of one load: how each spreads its share.
nlohmann::json comparable_config(nlohmann::json config) {
  for (const char* key : {"threads", "cpus", "seed", "time_limit_s"}) {
    config.erase(key);
  }
  return config;
}

std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  for (const auto& [key, value] : a.items()) {
    if (!b.contains(key) || b.at(key) != value) {
      return key + " (" + value.dump() + " vs " + (b.contains(key) ? b.at(key).dump() : "absent") + ")";
    }
  }
  for (const auto& [key, value] : b.items()) {
    if (!a.contains(key)) return key;
  }
  return "?";
}

int severity(const std::string& stopped_by) {
  if (stopped_by == "time_limit") return 3;
  if (stopped_by == "interrupted") return 2;
  if (stopped_by == "messages") return 1;
  return 0;
}

nlohmann::json describe_source(const MergeInput& input) {
  nlohmann::json source = {{"file", input.name},
                           {"start_utc", input.result.start_utc},
                           {"measured_s", input.result.measured_s},
                           {"valid", input.result.valid}};
  for (const char* key : {"host_name", "git_commit"}) {
    if (input.result.context.contains(key)) source[key] = input.result.context.at(key);
  }
  return source;
}

// Sums of counts from files: a wrap-around would be a silent lie.
void add(std::uint64_t& total, std::uint64_t n) {
  if (n > UINT64_MAX - total) {
    throw UsageError("merge: the counts of the inputs add up past 64 bits");
  }
  total += n;
}

void add(Histogram& total, const Histogram& part) {
  std::uint64_t sum = total.count() + total.below_range() + total.above_range();
  add(sum, part.count() + part.below_range() + part.above_range());
  try {
    total.merge(part);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("merge: ") + e.what());
  }
}

}  // namespace

RunResult merge_results(const std::vector<MergeInput>& inputs, bool allow_disjoint) {
  if (inputs.empty()) {
    throw UsageError("merge: nothing to merge");
  }
  const nlohmann::json reference = comparable_config(inputs.front().result.config);
  double latest_start = inputs.front().result.start_unix_s;
  double earliest_end = latest_start + inputs.front().result.measured_s;
  for (const MergeInput& input : inputs) {
    const nlohmann::json config = comparable_config(input.result.config);
    if (config != reference) {
      throw UsageError(input.name + " has another configuration than " + inputs.front().name +
                       ": " + first_difference(reference, config));
    }
    latest_start = std::max(latest_start, input.result.start_unix_s);
    earliest_end = std::min(earliest_end, input.result.start_unix_s + input.result.measured_s);
  }
  if (latest_start >= earliest_end && !allow_disjoint) {
    throw UsageError("the results did not run at the same time (their measured windows do not "
                     "overlap); add --force to merge them anyway");
  }

  RunResult merged;
  merged.config = inputs.front().result.config;
  merged.context = collect_context();
  double start = inputs.front().result.start_unix_s;
  double end = start;
  for (const MergeInput& input : inputs) {
    const RunResult& r = input.result;
    if (r.start_unix_s <= start) {
      start = r.start_unix_s;
      merged.start_utc = r.start_utc;
    }
    end = std::max(end, r.start_unix_s + r.measured_s);
    if (severity(r.stopped_by) >= severity(merged.stopped_by)) merged.stopped_by = r.stopped_by;
    merged.asked_msgs_per_s += r.asked_msgs_per_s;
    merged.sent_msgs_per_s += r.sent_msgs_per_s;
    merged.msgs_per_s += r.msgs_per_s;
    merged.bytes_per_s += r.bytes_per_s;
    add(merged.sent, r.sent);
    add(merged.received, r.received);
    add(merged.bytes_sent, r.bytes_sent);
    add(merged.bytes_received, r.bytes_received);
    add(merged.warmup_messages, r.warmup_messages);
    add(merged.warmup_failures, r.warmup_failures);
    for (std::size_t i = 0; i < merged.failures.size(); ++i) add(merged.failures[i], r.failures[i]);
    for (std::size_t i = 0; i < merged.anomalies.size(); ++i) add(merged.anomalies[i], r.anomalies[i]);
    add(merged.corrected, r.corrected);
    add(merged.uncorrected, r.uncorrected);
    add(merged.send_lag, r.send_lag);
    // Intervals line up by index: each counts from its own run's start of measurement.
    for (std::size_t i = 0; i < r.intervals.size(); ++i) {
      if (merged.intervals.size() <= i) {
        merged.intervals.emplace_back();
        merged.intervals[i].start_s = r.intervals[i].start_s;
      }
      IntervalResult& in = merged.intervals[i];
      in.length_s = std::max(in.length_s, r.intervals[i].length_s);
      add(in.messages, r.intervals[i].messages);
      add(in.bytes, r.intervals[i].bytes);
      add(in.errors, r.intervals[i].errors);
      add(in.latency, r.intervals[i].latency);
    }
    merged.threads.insert(merged.threads.end(), r.threads.begin(), r.threads.end());
    for (const auto& [call, n] : r.syscalls) add(merged.syscalls[call], n);
    for (const std::string& reason : r.invalid_reasons) {
      merged.invalid_reasons.push_back(input.name + ": " + reason);
    }
    if (r.sources.empty()) {
      merged.sources.push_back(describe_source(input));
    } else {
      merged.sources.insert(merged.sources.end(), r.sources.begin(), r.sources.end());
    }
  }
  merged.start_unix_s = start;
  merged.measured_s = end - start;
  merged.valid = merged.invalid_reasons.empty();
  return merged;
}

}  // namespace echolab
