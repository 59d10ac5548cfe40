#pragma once
// How a RunResult reaches people and files: the summary table printed at the end, the
// one-line live status (only on a terminal), and the --json / --hgrm outputs.
#include <iosfwd>
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

}  // namespace echolab
