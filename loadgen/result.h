#pragma once
// RunResult: the outcome of one run (or of several merged), and its JSON form.
//
// The JSON (results/schema/loadgen-result.schema.json) carries the raw material (counts and
// the full histograms in compact form) beside the figures computed from it, so that a file
// can be re-plotted or merged with others (loadgen/merge.h) without re-running anything.
// result_from_json() reads back exactly what to_json() wrote; the figures are recomputed.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loadgen/histogram.h"
#include "loadgen/recorder.h"  // ThreadUsage
#include "loadgen/tally.h"

namespace echolab {

inline constexpr const char* kResultSchemaId = "echolab.loadgen.result";
inline constexpr int kResultSchemaVersion = 1;

struct RunResult {
  nlohmann::json config;   // to_json(LoadConfig)
  nlohmann::json context;  // environment: host, CPU, kernel, build (loadgen/report.h)
  std::string start_utc;   // ISO 8601, start of measurement
  double start_unix_s = 0;
  double measured_s = 0;   // the measured window (drain excluded)
  std::string stopped_by;  // duration | messages | time_limit | interrupted
  double asked_msgs_per_s = 0;  // open mode; 0 otherwise
  // Rates are computed per run and add up when runs are merged.
  double sent_msgs_per_s = 0;
  double msgs_per_s = 0;   // echoes received (verified) per second
  double bytes_per_s = 0;  // echoed bytes received per second
  Tally tally;  // the measured window's counts and histograms (warm-up counted apart)
  std::vector<Interval> intervals;  // their uncorrected and send_lag only with --hlog
  std::vector<ThreadUsage> threads;
  std::map<std::string, std::uint64_t> syscalls;
  bool valid = true;
  std::vector<std::string> invalid_reasons;
  std::vector<nlohmann::json> sources;  // merged results: where each part came from
  // A run started at a time agreed with other generators (run_load's StartAgreement): how
  // late it really started, on this host's CLOCK_REALTIME.
  std::optional<double> start_late_s;
  // One load spread over several generators (loadgen/spread.h): how it was shared out,
  // each generator's own figures and the start skew. Null otherwise.
  nlohmann::json generators;
};

// Re-derives `valid` and its reasons from the figures and the thresholds in `config`:
// send lag p99 past max_send_lag, a generator thread's busy share past max_cpu, an achieved
// send rate under 95 % of the asked one, an overflowing generator queue, or a run cut short
// by the hard limit or a signal. Reasons already present (from merged parts) are kept.
void assess_validity(RunResult& result);

[[nodiscard]] nlohmann::json to_json(const RunResult& result);
// Throws std::invalid_argument (or nlohmann::json::exception) naming what is wrong.
[[nodiscard]] RunResult result_from_json(const nlohmann::json& json);

// {"count", "min_us", ..., "p99_99_us", "max_us", "below_range", "above_range"}.
[[nodiscard]] nlohmann::json latency_summary(const Histogram& histogram);

}  // namespace echolab
