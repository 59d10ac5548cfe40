#pragma once
// Merging results of one load spread over several generators (processes or hosts) that
// ran the same configuration at the same time: counts and rates add, histograms merge
// bucket by bucket (exactly: never by averaging percentiles), and the merged result is
// valid only if every part was. HdrHistogram interval logs merge the same way, interval by
// interval, aligned on absolute time.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/hlog.h"
#include "loadgen/result.h"

namespace echolab {

struct MergeInput {
  std::string name;  // where it came from (a file, a rank), for messages and the "sources" list
  RunResult result;
};

// One input or more: a single one comes back with its "sources" entry and its invalid
// reasons prefixed with its name, as in any merge. Throws UsageError (one line) when the
// inputs do not belong together: a configuration that differs (other than the generator's
// own threads, CPUs and seed), or measurement windows that do not overlap, unless
// allow_disjoint.
[[nodiscard]] RunResult merge_results(const std::vector<MergeInput>& inputs, bool allow_disjoint);

// Interval logs (.hlog) of generators that ran at the same time, aligned on absolute time
// slot by slot, every tag: how is described in loadgen/hlog.h ("Merging logs").
// Throws UsageError (one line) for fewer than two logs, lengths that differ, logs that do
// not overlap (unless allow_disjoint), or counts that add up past 64 bits.
[[nodiscard]] IntervalLog merge_interval_logs(const std::vector<IntervalLog>& logs,
                                              bool allow_disjoint);

// An interval log as text (.hlog), and where it came from (a file, a rank).
struct LogText {
  std::string name;
  std::string text;
};

// Reads every text (read_hlog) and merges the logs (merge_interval_logs): what
// `echolab-loadgen merge A.hlog B.hlog` writes from files and echolab-loadgen-mpi from its
// ranks' logs. Throws UsageError "merge: NAME line N: what is wrong" for a text that is not
// a log, else as merge_interval_logs.
[[nodiscard]] IntervalLog merge_log_texts(const std::vector<LogText>& logs, bool allow_disjoint);

// All of a log's intervals of `tag` added up (the --hgrm of a merge of logs: `corrected`);
// nullopt when the log has none. Throws UsageError when the counts add up past 64 bits.
[[nodiscard]] std::optional<Histogram> tag_total(const IntervalLog& log, std::string_view tag);

}  // namespace echolab
