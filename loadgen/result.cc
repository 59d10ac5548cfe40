#include "loadgen/result.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "echolab/version.h"

namespace echolab {
namespace {

double us(double ns) { return ns / 1000.0; }

template <typename... Numbers>
std::string format(const char* pattern, Numbers... numbers) {
  char text[200];
  std::snprintf(text, sizeof(text), pattern, numbers...);
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

// Counts: non-negative integers. nlohmann's get<std::uint64_t>() would turn -1 into 2^64-1
// and 1e308 into garbage.
std::uint64_t count(const nlohmann::json& json, const char* key) {
  const nlohmann::json& value = field(json, key);
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  throw std::invalid_argument(std::string("\"") + key + "\" must be a non-negative integer, got " +
                              value.dump());
}

// Times and rates: finite, non-negative, and small enough that adding a few thousand of them
// stays finite (10^15 s is 30 million years; 10^15 msgs/s is far past any network).
double amount(const nlohmann::json& json, const char* key) {
  constexpr double kMaxAmount = 1e15;
  const nlohmann::json& value = field(json, key);
  if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= kMaxAmount)) {
    throw std::invalid_argument(std::string("\"") + key + "\" must be a number from 0 to 1e15, got " +
                                value.dump());
  }
  return value.get<double>();
}

// The configuration is copied into a merged result: the numbers its schema constrains are
// checked here so that a bad input cannot produce an output that fails it.
void check_config(const nlohmann::json& config) {
  if (!config.is_object()) throw std::invalid_argument("\"config\" must be an object");
  for (const char* key : {"connections", "pipeline", "threads"}) {
    if (count(config, key) < 1) {
      throw std::invalid_argument(std::string("config \"") + key + "\" must be at least 1");
    }
  }
  (void)count(config, "seed");
  const double max_cpu = amount(config, "max_cpu_share");
  if (!(max_cpu > 0 && max_cpu <= 1)) {
    throw std::invalid_argument("config \"max_cpu_share\" must be above 0 and at most 1");
  }
  for (const char* key : {"warmup_s", "timeout_s", "time_limit_s", "interval_s", "max_send_lag_s"}) {
    (void)amount(config, key);
  }
  if (!field(config, "rate_msgs_per_s").is_null()) (void)amount(config, "rate_msgs_per_s");
  if (!field(config, "duration_s").is_null()) (void)amount(config, "duration_s");
  if (!field(config, "messages").is_null()) (void)count(config, "messages");
}

}  // namespace

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
  const Histogram& send_lag = result.tally.send_lag;
  const auto lag_p99 = static_cast<double>(send_lag.value_at_percentile(99));
  if (send_lag.count() > 0 && lag_p99 > max_lag_ns) {
    add_reason(result, format("generator send lag p99 %.3f ms is over --max-send-lag %.3f ms",
                              lag_p99 / 1e6, max_lag_ns / 1e6));
  }
  // Busy, not CPU: an open-loop thread polls while its next send is near, which takes the
  // whole core whatever the rate; only the share spent working says it could not do more.
  for (std::size_t i = 0; i < result.threads.size(); ++i) {
    const ThreadUsage& t = result.threads[i];
    if (t.busy_share() > max_cpu) {
      add_reason(result, "generator thread " + std::to_string(i) +
                             format(" was busy %.0f%% of the time (CPU %.0f%% of a core), over --max-cpu %.0f%%",
                                    100 * t.busy_share(), 100 * t.cpu_share(), 100 * max_cpu));
    }
  }
  if (result.asked_msgs_per_s > 0 && result.sent_msgs_per_s < 0.95 * result.asked_msgs_per_s) {
    add_reason(result, format("generator sent %.0f msgs/s, under 95%% of the asked %.0f",
                              result.sent_msgs_per_s, result.asked_msgs_per_s));
  }
  const auto overflow = static_cast<std::size_t>(Failure::overflow);
  if (const std::uint64_t n = result.tally.failures[overflow]; n > 0) {
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
  if (r.start_late_s) {
    j["run"]["start_late_s"] = *r.start_late_s;
  }
  j["throughput"] = {
      {"asked_msgs_per_s", r.asked_msgs_per_s > 0 ? nlohmann::json(r.asked_msgs_per_s) : nlohmann::json()},
      {"sent_msgs_per_s", r.sent_msgs_per_s},
      {"msgs_per_s", r.msgs_per_s},
      {"bytes_per_s", r.bytes_per_s}};
  const Tally& tally = r.tally;
  j["messages"] = {{"sent", tally.sent},
                   {"received", tally.received},
                   {"bytes_sent", tally.bytes_sent},
                   {"bytes_received", tally.bytes_received},
                   {"warmup_messages", tally.warmup_messages},
                   {"warmup_failures", tally.warmup_failures}};
  nlohmann::json errors = {{"total", tally.failures_total()}};
  for (int i = 0; i < kFailureKinds; ++i) {
    errors[std::string(to_string(static_cast<Failure>(i)))] =
        tally.failures[static_cast<std::size_t>(i)];
  }
  j["errors"] = errors;
  nlohmann::json anomalies = nlohmann::json::object();
  for (int i = 0; i < kAnomalyKinds; ++i) {
    anomalies[std::string(to_string(static_cast<Anomaly>(i)))] =
        tally.anomalies[static_cast<std::size_t>(i)];
  }
  j["anomalies"] = anomalies;
  j["latency"] = {{"unit", "us"},
                  {"corrected", latency_summary(tally.corrected)},
                  {"uncorrected", latency_summary(tally.uncorrected)},
                  {"send_lag", latency_summary(tally.send_lag)}};
  nlohmann::json intervals = nlohmann::json::array();
  nlohmann::json interval_histograms = nlohmann::json::array();
  for (const Interval& in : r.intervals) {
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
                       {"cpu_share", t.cpu_share()},
                       {"busy_s", t.busy_s},
                       {"busy_share", t.busy_share()},
                       {"largest_burst_msgs", t.largest_burst}});
    user += t.user_s;
    sys += t.sys_s;
  }
  j["generator"] = {{"threads", threads},
                    {"cpu_user_s", user},
                    {"cpu_sys_s", sys},
                    {"syscalls", r.syscalls}};
  if (!r.generators.is_null()) {
    j["generators"] = r.generators;
  }
  j["histograms"] = {{"unit", "ns"},
                     {"corrected", tally.corrected.to_json()},
                     {"uncorrected", tally.uncorrected.to_json()},
                     {"send_lag", tally.send_lag.to_json()},
                     {"intervals", interval_histograms}};
  return j;
}

RunResult result_from_json(const nlohmann::json& j) {
  if (field(j, "schema") != kResultSchemaId) {
    throw std::invalid_argument("not an echolab-loadgen result (\"schema\" is not " +
                                std::string(kResultSchemaId) + ")");
  }
  if (!field(j, "schema_version").is_number_integer() ||
      field(j, "schema_version").get<std::int64_t>() != kResultSchemaVersion) {
    throw std::invalid_argument("schema_version " + field(j, "schema_version").dump() +
                                " is not supported (this build reads " +
                                std::to_string(kResultSchemaVersion) + ")");
  }
  RunResult r;
  r.config = field(j, "config");
  check_config(r.config);
  r.context = field(j, "context");
  r.valid = field(j, "valid").get<bool>();
  r.invalid_reasons = field(j, "invalid_reasons").get<std::vector<std::string>>();
  const auto& run = field(j, "run");
  r.start_utc = field(run, "start_utc").get<std::string>();
  r.start_unix_s = amount(run, "start_unix_s");
  r.measured_s = amount(run, "measured_s");
  r.stopped_by = field(run, "stopped_by").get<std::string>();
  r.sources = field(run, "sources").get<std::vector<nlohmann::json>>();
  if (run.contains("start_late_s")) {
    // Signed: a start can be early when the clock was stepped during the sleep.
    const nlohmann::json& late = run.at("start_late_s");
    if (!late.is_number()) throw std::invalid_argument("\"start_late_s\" must be a number, got " + late.dump());
    r.start_late_s = late.get<double>();
  }
  if (j.contains("generators")) {
    r.generators = j.at("generators");
  }
  const auto& throughput = field(j, "throughput");
  const auto& asked = field(throughput, "asked_msgs_per_s");
  r.asked_msgs_per_s = asked.is_null() ? 0.0 : amount(throughput, "asked_msgs_per_s");
  r.sent_msgs_per_s = amount(throughput, "sent_msgs_per_s");
  r.msgs_per_s = amount(throughput, "msgs_per_s");
  r.bytes_per_s = amount(throughput, "bytes_per_s");
  const auto& messages = field(j, "messages");
  Tally& tally = r.tally;
  tally.sent = count(messages, "sent");
  tally.received = count(messages, "received");
  tally.bytes_sent = count(messages, "bytes_sent");
  tally.bytes_received = count(messages, "bytes_received");
  tally.warmup_messages = count(messages, "warmup_messages");
  tally.warmup_failures = count(messages, "warmup_failures");
  const auto& errors = field(j, "errors");
  for (int i = 0; i < kFailureKinds; ++i) {
    const std::string name(to_string(static_cast<Failure>(i)));
    tally.failures[static_cast<std::size_t>(i)] = count(errors, name.c_str());
  }
  const auto& anomalies = field(j, "anomalies");
  for (int i = 0; i < kAnomalyKinds; ++i) {
    const std::string name(to_string(static_cast<Anomaly>(i)));
    tally.anomalies[static_cast<std::size_t>(i)] = count(anomalies, name.c_str());
  }
  const auto& histograms = field(j, "histograms");
  tally.corrected = Histogram::from_json(field(histograms, "corrected"));
  tally.uncorrected = Histogram::from_json(field(histograms, "uncorrected"));
  tally.send_lag = Histogram::from_json(field(histograms, "send_lag"));
  const auto& intervals = field(j, "intervals");
  const auto& interval_histograms = field(histograms, "intervals");
  if (!intervals.is_array() || !interval_histograms.is_array() ||
      intervals.size() != interval_histograms.size()) {
    throw std::invalid_argument("\"intervals\" and \"histograms.intervals\" differ in length");
  }
  for (std::size_t i = 0; i < intervals.size(); ++i) {
    Interval in;
    in.start_s = amount(intervals[i], "start_s");
    in.length_s = amount(intervals[i], "length_s");
    in.messages = count(intervals[i], "messages");
    in.bytes = count(intervals[i], "bytes");
    in.errors = count(intervals[i], "errors");
    in.latency = Histogram::from_json(interval_histograms[i]);
    r.intervals.push_back(std::move(in));
  }
  const auto& generator = field(j, "generator");
  for (const auto& t : field(generator, "threads")) {
    ThreadUsage usage{.user_s = amount(t, "user_s"), .sys_s = amount(t, "sys_s"), .wall_s = amount(t, "wall_s")};
    // Results written before busy time was kept: their CPU time is judged as it was then
    // (within the wall time, which CPU time counted in clock ticks can overshoot).
    usage.busy_s = t.contains("busy_s") ? amount(t, "busy_s")
                                        : std::min(usage.user_s + usage.sys_s, usage.wall_s);
    if (usage.busy_s > usage.wall_s) {
      throw std::invalid_argument("\"busy_s\" " + t.at("busy_s").dump() + " is more than \"wall_s\" " +
                                  t.at("wall_s").dump());
    }
    usage.largest_burst = t.contains("largest_burst_msgs") ? count(t, "largest_burst_msgs") : 0;
    r.threads.push_back(usage);
  }
  const auto& syscalls = field(generator, "syscalls");
  if (!syscalls.is_object()) throw std::invalid_argument("\"syscalls\" must be an object");
  for (const auto& [call, n] : syscalls.items()) {
    r.syscalls[call] = count(syscalls, call.c_str());
  }
  return r;
}

}  // namespace echolab
