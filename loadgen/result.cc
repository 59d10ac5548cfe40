#include "loadgen/result.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "echolab/version.h"

namespace echolab {
namespace {

double us(double ns) { return ns / 1000.0; }

std::string format(const char* pattern, double a, double b) {
  char text[160];
  std::snprintf(text, sizeof(text), pattern, a, b);
  return text;
}

void add_reason(RunResult& result, const std::string& reason) {
  if (std::find(result.invalid_reasons.begin(), result.invalid_reasons.end(), reason) ==
      result.invalid_reasons.end()) {
    result.invalid_reasons.push_back(reason);
  }
}

const nlohmann::json& field(const nlohmann::json& json, const char* key) {
  if (!json.is_object() || !json.contains(key)) {
    throw std::invalid_argument(std::string("missing field \"") + key + "\"");
  }
  return json.at(key);
}

}  // namespace

std::uint64_t RunResult::errors_total() const {
  std::uint64_t total = 0;
  for (const std::uint64_t n : failures) total += n;
  return total;
}

nlohmann::json latency_summary(const Histogram& h) {
  // Percentiles are the highest value of their bucket (HdrHistogram); never above the
  // exact maximum, which is known.
  auto at = [&h](double p) { return us(static_cast<double>(std::min(h.value_at_percentile(p), h.max()))); };
  return {{"count", h.count()},
          {"below_range", h.below_range()},
          {"above_range", h.above_range()},
          {"min_us", us(static_cast<double>(h.min()))},
          {"mean_us", us(h.mean())},
          {"stddev_us", us(h.stddev())},
          {"p50_us", at(50)},
          {"p90_us", at(90)},
          {"p99_us", at(99)},
          {"p99_9_us", at(99.9)},
          {"p99_99_us", at(99.99)},
          {"max_us", us(static_cast<double>(h.max()))}};
}

void assess_validity(RunResult& result) {
  const nlohmann::json& config = result.config;
  const double max_lag_ns = config.value("max_send_lag_s", 0.005) * 1e9;
  const double max_cpu = config.value("max_cpu_share", 0.9);
  const auto lag_p99 = static_cast<double>(result.send_lag.value_at_percentile(99));
  if (result.send_lag.count() > 0 && lag_p99 > max_lag_ns) {
    add_reason(result, format("generator send lag p99 %.3f ms is over --max-send-lag %.3f ms",
                              lag_p99 / 1e6, max_lag_ns / 1e6));
  }
  for (std::size_t i = 0; i < result.threads.size(); ++i) {
    const ThreadUsage& t = result.threads[i];
    if (t.wall_s > 0 && (t.user_s + t.sys_s) / t.wall_s > max_cpu) {
      add_reason(result, "generator thread " + std::to_string(i) +
                             format(" used %.0f%% of a core, over --max-cpu %.0f%%",
                                    100 * (t.user_s + t.sys_s) / t.wall_s, 100 * max_cpu));
    }
  }
  if (result.asked_msgs_per_s > 0 && result.sent_msgs_per_s < 0.95 * result.asked_msgs_per_s) {
    add_reason(result, format("generator sent %.0f msgs/s, under 95%% of the asked %.0f",
                              result.sent_msgs_per_s, result.asked_msgs_per_s));
  }
  if (const std::uint64_t n = result.failures[static_cast<int>(Failure::overflow)]; n > 0) {
    add_reason(result, "generator queue overflowed: " + std::to_string(n) + " messages never sent");
  }
  if (result.stopped_by == "time_limit") {
    add_reason(result, "the hard time limit ended the run (the target stopped answering?)");
  } else if (result.stopped_by == "interrupted") {
    add_reason(result, "interrupted by a signal before the end");
  }
  result.valid = result.invalid_reasons.empty();
}

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json j;
  j["schema"] = kResultSchemaId;
  j["schema_version"] = kResultSchemaVersion;
  j["echolab"] = {{"version", kVersion}, {"git_commit", kGitCommit}};
  j["context"] = r.context;
  j["config"] = r.config;
  j["valid"] = r.valid;
  j["invalid_reasons"] = r.invalid_reasons;
  j["run"] = {{"start_utc", r.start_utc},
              {"start_unix_s", r.start_unix_s},
              {"measured_s", r.measured_s},
              {"stopped_by", r.stopped_by},
              {"sources", r.sources}};
  j["throughput"] = {
      {"asked_msgs_per_s", r.asked_msgs_per_s > 0 ? nlohmann::json(r.asked_msgs_per_s) : nlohmann::json()},
      {"sent_msgs_per_s", r.sent_msgs_per_s},
      {"msgs_per_s", r.msgs_per_s},
      {"bytes_per_s", r.bytes_per_s}};
  j["messages"] = {{"sent", r.sent},
                   {"received", r.received},
                   {"bytes_sent", r.bytes_sent},
                   {"bytes_received", r.bytes_received},
                   {"warmup_messages", r.warmup_messages},
                   {"warmup_failures", r.warmup_failures}};
  nlohmann::json errors = {{"total", r.errors_total()}};
  for (int i = 0; i < kFailureKinds; ++i) {
    errors[std::string(to_string(static_cast<Failure>(i)))] = r.failures[static_cast<std::size_t>(i)];
  }
  j["errors"] = errors;
  nlohmann::json anomalies = nlohmann::json::object();
  for (int i = 0; i < kAnomalyKinds; ++i) {
    anomalies[std::string(to_string(static_cast<Anomaly>(i)))] = r.anomalies[static_cast<std::size_t>(i)];
  }
  j["anomalies"] = anomalies;
  j["latency"] = {{"unit", "us"},
                  {"corrected", latency_summary(r.corrected)},
                  {"uncorrected", latency_summary(r.uncorrected)},
                  {"send_lag", latency_summary(r.send_lag)}};
  nlohmann::json intervals = nlohmann::json::array();
  nlohmann::json interval_histograms = nlohmann::json::array();
  for (const IntervalResult& in : r.intervals) {
    intervals.push_back(
        {{"start_s", in.start_s},
         {"length_s", in.length_s},
         {"messages", in.messages},
         {"msgs_per_s", in.length_s > 0 ? static_cast<double>(in.messages) / in.length_s : 0.0},
         {"bytes", in.bytes},
         {"errors", in.errors},
         {"p50_us", us(static_cast<double>(in.latency.value_at_percentile(50)))},
         {"p99_us", us(static_cast<double>(in.latency.value_at_percentile(99)))}});
    interval_histograms.push_back(in.latency.to_json());
  }
  j["intervals"] = intervals;
  nlohmann::json threads = nlohmann::json::array();
  double user = 0;
  double sys = 0;
  for (const ThreadUsage& t : r.threads) {
    threads.push_back({{"user_s", t.user_s},
                       {"sys_s", t.sys_s},
                       {"wall_s", t.wall_s},
                       {"cpu_share", t.wall_s > 0 ? (t.user_s + t.sys_s) / t.wall_s : 0.0}});
    user += t.user_s;
    sys += t.sys_s;
  }
  j["generator"] = {{"threads", threads},
                    {"cpu_user_s", user},
                    {"cpu_sys_s", sys},
                    {"syscalls", r.syscalls}};
  j["histograms"] = {{"unit", "ns"},
                     {"corrected", r.corrected.to_json()},
                     {"uncorrected", r.uncorrected.to_json()},
                     {"send_lag", r.send_lag.to_json()},
                     {"intervals", interval_histograms}};
  return j;
}

RunResult result_from_json(const nlohmann::json& j) {
  if (field(j, "schema") != kResultSchemaId) {
    throw std::invalid_argument("not an echolab-loadgen result (\"schema\" is not " +
                                std::string(kResultSchemaId) + ")");
  }
  if (field(j, "schema_version").get<int>() != kResultSchemaVersion) {
    throw std::invalid_argument("schema_version " + field(j, "schema_version").dump() +
                                " is not supported (this build reads " +
                                std::to_string(kResultSchemaVersion) + ")");
  }
  RunResult r;
  r.config = field(j, "config");
  r.context = field(j, "context");
  r.valid = field(j, "valid").get<bool>();
  r.invalid_reasons = field(j, "invalid_reasons").get<std::vector<std::string>>();
  const auto& run = field(j, "run");
  r.start_utc = field(run, "start_utc").get<std::string>();
  r.start_unix_s = field(run, "start_unix_s").get<double>();
  r.measured_s = field(run, "measured_s").get<double>();
  r.stopped_by = field(run, "stopped_by").get<std::string>();
  r.sources = field(run, "sources").get<std::vector<nlohmann::json>>();
  const auto& throughput = field(j, "throughput");
  const auto& asked = field(throughput, "asked_msgs_per_s");
  r.asked_msgs_per_s = asked.is_null() ? 0.0 : asked.get<double>();
  r.sent_msgs_per_s = field(throughput, "sent_msgs_per_s").get<double>();
  r.msgs_per_s = field(throughput, "msgs_per_s").get<double>();
  r.bytes_per_s = field(throughput, "bytes_per_s").get<double>();
  const auto& messages = field(j, "messages");
  r.sent = field(messages, "sent").get<std::uint64_t>();
  r.received = field(messages, "received").get<std::uint64_t>();
  r.bytes_sent = field(messages, "bytes_sent").get<std::uint64_t>();
  r.bytes_received = field(messages, "bytes_received").get<std::uint64_t>();
  r.warmup_messages = field(messages, "warmup_messages").get<std::uint64_t>();
  r.warmup_failures = field(messages, "warmup_failures").get<std::uint64_t>();
  const auto& errors = field(j, "errors");
  for (int i = 0; i < kFailureKinds; ++i) {
    const std::string name(to_string(static_cast<Failure>(i)));
    r.failures[static_cast<std::size_t>(i)] = field(errors, name.c_str()).get<std::uint64_t>();
  }
  const auto& anomalies = field(j, "anomalies");
  for (int i = 0; i < kAnomalyKinds; ++i) {
    const std::string name(to_string(static_cast<Anomaly>(i)));
    r.anomalies[static_cast<std::size_t>(i)] = field(anomalies, name.c_str()).get<std::uint64_t>();
  }
  const auto& histograms = field(j, "histograms");
  r.corrected = Histogram::from_json(field(histograms, "corrected"));
  r.uncorrected = Histogram::from_json(field(histograms, "uncorrected"));
  r.send_lag = Histogram::from_json(field(histograms, "send_lag"));
  const auto& intervals = field(j, "intervals");
  const auto& interval_histograms = field(histograms, "intervals");
  if (!intervals.is_array() || !interval_histograms.is_array() ||
      intervals.size() != interval_histograms.size()) {
    throw std::invalid_argument("\"intervals\" and \"histograms.intervals\" differ in length");
  }
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    IntervalResult in;
    in.start_s = field(intervals[i], "start_s").get<double>();
    in.length_s = field(intervals[i], "length_s").get<double>();
    in.messages = field(intervals[i], "messages").get<std::uint64_t>();
    in.bytes = field(intervals[i], "bytes").get<std::uint64_t>();
    in.errors = field(intervals[i], "errors").get<std::uint64_t>();
    in.latency = Histogram::from_json(interval_histograms[i]);
    r.intervals.push_back(std::move(in));
  }
  const auto& generator = field(j, "generator");
  for (const auto& t : field(generator, "threads")) {
    r.threads.push_back(ThreadUsage{field(t, "user_s").get<double>(), field(t, "sys_s").get<double>(),
                                    field(t, "wall_s").get<double>()});
  }
  r.syscalls = field(generator, "syscalls").get<std::map<std::string, std::uint64_t>>();
  return r;
}

}  // namespace echolab
