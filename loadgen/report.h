#pragma once
// How a RunResult reaches people and files: the summary table printed at the end, the
// one-line live status (only on a terminal), and the --json / --hgrm outputs.
#include <iosfwd>
#include <optional>
#include <string>

#include "loadgen/hlog.h"
#include "loadgen/result.h"
#include "loadgen/run.h"

namespace echolab {

// A human summary: what ran, valid or why not, throughput against the asked rate, the
// three latency distributions, errors by kind and the generator's own CPU.
void print_summary(std::ostream& out, const RunResult& result);

// After a merge of interval logs: how many, and each tag's intervals added up, as the
// latency table of print_summary.
void print_log_summary(std::ostream& out, const IntervalLog& merged, std::size_t inputs);

// "  12.0s   41,234 msgs/s   p99 52.1 us   errors 0"
[[nodiscard]] std::string format_status(const LiveStatus& status);

// Rewrites one line in place on a terminal; does nothing at all when `enabled` is false
// (output is a file or a pipe), so logs never fill with carriage returns.
class StatusLine {
 public:
  explicit StatusLine(bool enabled) : enabled_(enabled) {}
  ~StatusLine() { clear(); }
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

  void show(const LiveStatus& status);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
};

// Writes `text` to `path` ("-": stdout). Throws std::system_error naming the file.
void write_output(const std::string& path, const std::string& text);

// The corrected latency distribution in HdrHistogram's .hgrm format, values in µs.
[[nodiscard]] std::string hgrm_text(const RunResult& result);

// The files a result goes to (empty: not written; "-": stdout).
struct Outputs {
  std::string json;
  std::string hgrm;
  std::string hlog;
};

// True when two outputs would land in one file: both "-", one file reached through two
// names ("-" and /dev/stdout, a symlink, "./x" and "x"). /dev/null may take both.
[[nodiscard]] bool same_output(const std::string& a, const std::string& b);

// Fails before a long run, not after it: throws UsageError (one line) when an output's
// directory is not writable or two outputs are the same file.
void check_outputs(const Outputs& outputs);

// Writes the result to its outputs, and the summary table unless `quiet` (on stderr when
// an output takes stdout, so that stdout stays parseable). The interval log is `hlog` when
// given (a merge of the generators' own logs), else the result's. Throws std::system_error.
void emit(const RunResult& result, const Outputs& outputs, bool quiet,
          const std::optional<std::string>& hlog = std::nullopt);

}  // namespace echolab
