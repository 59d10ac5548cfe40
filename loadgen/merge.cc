#include "loadgen/merge.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>
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

// Sums of counts from files (loadgen/tally.h checks them), their failures as one line.
template <typename Sum>
void checked(const Sum& sum) {
  try {
    sum();
  } catch (const std::overflow_error&) {
    throw UsageError("merge: the counts of the inputs add up past 64 bits");
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("merge: ") + e.what());
  }
}

void add(std::uint64_t& total, std::uint64_t n) {
  checked([&] { add_count(total, n); });
}

void add(Histogram& total, const Histogram& part) {
  checked([&] { add_histogram(total, part); });
}

void require_two(std::size_t inputs) {
  if (inputs < 2) throw UsageError("merge needs at least two inputs (results or interval logs)");
}

// One load measured by several generators at once: their spans must overlap.
void require_overlap(double latest_start, double earliest_end, bool allow_disjoint,
                     const std::string& inputs, const std::string& spans) {
  if (latest_start >= earliest_end && !allow_disjoint) {
    throw UsageError("the " + inputs + " did not run at the same time (their " + spans +
                     " do not overlap); add --force to merge them anyway");
  }
}

// The upper median: of a log's interval lengths, never its short last one when it has two.
double median(std::vector<double> values) {
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
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
  require_overlap(latest_start, earliest_end, allow_disjoint, "results", "measured windows");

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
    checked([&] {
      merged.tally.add(r.tally);
      for (std::size_t i = 0; i < r.intervals.size(); ++i) {
        add_interval(merged.intervals, i, r.intervals[i]);
      }
    });
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

IntervalLog merge_interval_logs(const std::vector<IntervalLog>& logs, bool allow_disjoint) {
  require_two(logs.size());
  std::vector<double> lengths;
  double latest_start = 0;
  double earliest_end = std::numeric_limits<double>::infinity();
  double earliest_start = earliest_end;
  IntervalLog merged;
  merged.name = "merged";
  merged.start_unix_s = earliest_end;
  for (const IntervalLog& log : logs) {
    std::vector<double> own;
    double first = std::numeric_limits<double>::infinity();
    double last = 0;
    for (const LoggedInterval& in : log.intervals) {
      own.push_back(in.length_s);
      first = std::min(first, in.start_unix_s);
      last = std::max(last, in.start_unix_s + in.length_s);
    }
    if (own.empty()) throw UsageError(log.name + " holds no interval histograms");
    lengths.push_back(median(std::move(own)));
    latest_start = std::max(latest_start, first);
    earliest_end = std::min(earliest_end, last);
    earliest_start = std::min(earliest_start, first);
    merged.start_unix_s = std::min(merged.start_unix_s, log.start_unix_s);
  }
  const auto [shortest, longest] = std::minmax_element(lengths.begin(), lengths.end());
  // 1e-9: the lengths come from decimal text, 0.501 - 0.5 is a hair over 0.001.
  if (*longest - *shortest > std::max(0.001, 0.001 * *longest) + 1e-9) {
    const auto name = [&](auto at) {
      return logs[static_cast<std::size_t>(at - lengths.begin())].name;
    };
    char text[96];
    std::snprintf(text, sizeof(text), " has intervals of %.3f s, ", *longest);
    std::string message = name(longest) + text + name(shortest);
    std::snprintf(text, sizeof(text), " of %.3f s: merge logs written with one --interval",
                  *shortest);
    throw UsageError(message + text);
  }
  require_overlap(latest_start, earliest_end, allow_disjoint, "logs", "intervals");
  // Rounded down (1e-6: 0.3 s must stay 300 ms): no slot is longer than any log's interval,
  // so two intervals of one log never share a slot.
  const auto slot_us = static_cast<std::int64_t>(std::floor(*shortest * 1e3 + 1e-6)) * 1000;
  if (slot_us <= 0) {
    throw UsageError("the logs' intervals are shorter than 1 ms: too short to align");
  }
  // Never before the earliest interval, so that no merged line starts at a negative offset.
  merged.start_unix_s = std::min(merged.start_unix_s, earliest_start);
  const std::int64_t origin_us = std::llround(earliest_start * 1e6);

  std::vector<std::string> tags;  // in the order first met
  std::map<std::pair<std::int64_t, std::size_t>, LoggedInterval> slots;  // (slot, tag) -> sum
  for (const IntervalLog& log : logs) {
    for (const LoggedInterval& in : log.intervals) {
      const auto tag =
          static_cast<std::size_t>(std::find(tags.begin(), tags.end(), in.tag) - tags.begin());
      if (tag == tags.size()) tags.push_back(in.tag);
      const std::int64_t slot = (std::llround(in.start_unix_s * 1e6) - origin_us) / slot_us;
      const auto [at, first] = slots.try_emplace({slot, tag}, in);
      LoggedInterval& sum = at->second;
      if (first) {
        sum.start_unix_s = static_cast<double>(origin_us + slot * slot_us) / 1e6;
        continue;
      }
      sum.length_s = std::max(sum.length_s, in.length_s);
      if (!sum.histogram.same_layout(in.histogram)) {
        throw UsageError(log.name + ": the " + (in.tag.empty() ? "untagged" : in.tag) +
                         " intervals have another histogram layout than the other logs'");
      }
      add(sum.histogram, in.histogram);
    }
  }
  for (auto& [key, interval] : slots) merged.intervals.push_back(std::move(interval));
  return merged;
}

IntervalLog merge_log_texts(const std::vector<LogText>& logs, bool allow_disjoint) {
  std::vector<IntervalLog> read;
  try {
    for (const LogText& log : logs) {
      std::istringstream in(log.text);
      read.push_back(read_hlog(in, log.name));
    }
  } catch (const UsageError& e) {
    throw UsageError(std::string("merge: ") + e.what());
  }
  return merge_interval_logs(read, allow_disjoint);
}

std::optional<Histogram> tag_total(const IntervalLog& log, std::string_view tag) {
  std::optional<Histogram> total;
  for (const LoggedInterval& in : log.intervals) {
    if (in.tag != tag) continue;
    if (total) {
      add(*total, in.histogram);
    } else {
      total = in.histogram;
    }
  }
  return total;
}

}  // namespace echolab
