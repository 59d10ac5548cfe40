#include "loadgen/report.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "loadgen/merge.h"
#include "loadgen/hlog.h"

namespace echolab {
namespace {

// 1234567 -> "1,234,567"
std::string grouped(double value) {
  const auto n = static_cast<long long>(value + 0.5);
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string bytes_rate(double bytes_per_s) {
  char text[32];
  if (bytes_per_s >= 1e9) {
    std::snprintf(text, sizeof(text), "%.2f GB/s", bytes_per_s / 1e9);
  } else if (bytes_per_s >= 1e6) {
    std::snprintf(text, sizeof(text), "%.2f MB/s", bytes_per_s / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.1f kB/s", bytes_per_s / 1e3);
  }
  return text;
}

std::string latency_row(const char* name, const Histogram& h) {
  char row[256];
  auto at = [&h](double p) {
    return static_cast<double>(std::min(h.value_at_percentile(p), h.max())) / 1e3;
  };
  if (h.count() == 0) {
    std::snprintf(row, sizeof(row), "  %-12s %10s\n", name, "-");
    return row;
  }
  std::snprintf(row, sizeof(row),
                "  %-12s %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f\n", name,
                static_cast<double>(h.min()) / 1e3, at(50), at(90), at(99), at(99.9), at(99.99),
                static_cast<double>(h.max()) / 1e3, h.mean() / 1e3, h.stddev() / 1e3);
  return row;
}

std::string latency_header() {
  char line[256];
  std::snprintf(line, sizeof(line), "  %-12s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n",
                "latency (us)", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean",
                "stdev");
  return line;
}

// Fails before a long run, not after it, when an output file cannot be written.
void check_writable(const std::string& path, const char* option) {
  if (path.empty() || path == "-") return;
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (::access(dir.c_str(), W_OK) != 0) {
    throw UsageError(std::string("--") + option + " " + path + ": cannot write in " + dir + " (" +
                     std::strerror(errno) + ")");
  }
}

// The file an output names: stdout for "-"; nullopt if it does not exist yet.
std::optional<struct stat> output_file(const std::string& path) {
  struct stat info {};
  const int rc = path == "-" ? ::fstat(STDOUT_FILENO, &info) : ::stat(path.c_str(), &info);
  return rc == 0 ? std::optional(info) : std::nullopt;
}

// The per-generator breakdown of a load spread over several (loadgen/spread.h).
void print_generators(std::ostream& out, const nlohmann::json& generators) {
  out << "  generators: " << generators.value("split", "?") << "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "  start skew %.3f ms (--max-start-skew %.3f ms)\n",
                generators.value("start_skew_us", 0.0) / 1e3, generators.value("max_start_skew_us", 0.0) / 1e3);
  out << line;
  std::snprintf(line, sizeof(line), "  %5s %-16s %12s %10s %10s %8s %6s %9s %s\n", "rank", "host", "msgs/s",
                "p50 us", "p99 us", "errors", "CPU", "late us", "valid");
  out << line;
  for (const nlohmann::json& g : generators.value("ranks", nlohmann::json::array())) {
    std::snprintf(line, sizeof(line), "  %5d %-16s %12s %10.1f %10.1f %8s %5.0f%% %9.1f %s\n", g.value("rank", -1),
                  g.value("host", std::string("?")).c_str(), grouped(g.value("msgs_per_s", 0.0)).c_str(),
                  g.value("p50_us", 0.0), g.value("p99_us", 0.0),
                  grouped(static_cast<double>(g.value("errors", std::uint64_t{0}))).c_str(),
                  100 * g.value("busiest_thread_cpu_share", 0.0), g.value("start_late_us", 0.0),
                  g.value("valid", false) ? "yes" : "NO");
    out << line;
  }
}

}  // namespace

void print_summary(std::ostream& out, const RunResult& r) {
  const nlohmann::json& c = r.config;
  out << "echolab-loadgen " << c.value("mode", "?") << " " << c.value("transport", "?") << " "
      << c.value("protocol", "?") << " -> " << c.value("target", "?") << ": "
      << c.value("connections", 0) << " connection(s)";
  if (c.value("pipeline", 1) > 1) out << " x pipeline " << c.value("pipeline", 1);
  out << ", " << c.value("threads", 1) << " thread(s), size " << c["size"].value("spec", "?")
      << " B\n";
  char line[256];
  std::snprintf(line, sizeof(line), "  measured %.3f s (stopped by %s)", r.measured_s,
                r.stopped_by.c_str());
  out << line;
  if (!r.sources.empty()) out << ", merged from " << r.sources.size() << " results";
  out << "\n";
  if (r.valid) {
    out << "  valid: yes\n";
  } else {
    out << "  valid: NO\n";
    for (const std::string& reason : r.invalid_reasons) out << "    - " << reason << "\n";
  }
  out << "  throughput: " << grouped(r.msgs_per_s) << " msgs/s echoed, "
      << bytes_rate(r.bytes_per_s) << "; " << grouped(r.sent_msgs_per_s) << " msgs/s sent";
  if (r.asked_msgs_per_s > 0) out << " (asked " << grouped(r.asked_msgs_per_s) << ")";
  const Tally& tally = r.tally;
  out << "\n  messages: " << tally.sent << " sent, " << tally.received << " echoed and verified\n";
  out << latency_header() << latency_row("corrected", tally.corrected)
      << latency_row("uncorrected", tally.uncorrected);
  if (c.value("mode", "") == "open") {
    out << latency_row("send lag", tally.send_lag);
  }
  const std::uint64_t out_of_range =
      tally.corrected.below_range() + tally.corrected.above_range();
  if (out_of_range > 0) {
    out << "  out of histogram range (1 us .. 60 s): " << out_of_range << "\n";
  }
  out << "  errors: ";
  if (tally.failures_total() == 0) {
    out << "none";
  } else {
    const char* separator = "";
    for (int i = 0; i < kFailureKinds; ++i) {
      if (const std::uint64_t n = tally.failures[static_cast<std::size_t>(i)]; n > 0) {
        out << separator << to_string(static_cast<Failure>(i)) << " " << n;
        separator = ", ";
      }
    }
  }
  out << "\n";
  bool any_anomaly = false;
  for (int i = 0; i < kAnomalyKinds; ++i) {
    if (const std::uint64_t n = tally.anomalies[static_cast<std::size_t>(i)]; n > 0) {
      out << (any_anomaly ? ", " : "  also: ") << to_string(static_cast<Anomaly>(i)) << " " << n;
      any_anomaly = true;
    }
  }
  if (any_anomaly) out << "\n";
  double user = 0;
  double sys = 0;
  double busiest = 0;
  double busiest_busy = 0;
  for (const ThreadUsage& t : r.threads) {
    user += t.user_s;
    sys += t.sys_s;
    busiest = std::max(busiest, t.cpu_share());
    busiest_busy = std::max(busiest_busy, t.busy_share());
  }
  std::snprintf(line, sizeof(line),
                "  generator CPU: user %.2f s, sys %.2f s; busiest thread %.0f%% of a core, busy %.0f%% of the time\n",
                user, sys, 100 * busiest, 100 * busiest_busy);
  out << line;
  if (!r.generators.is_null()) {
    print_generators(out, r.generators);
  }
}

void print_log_summary(std::ostream& out, const IntervalLog& merged, std::size_t inputs) {
  std::vector<std::string> tags;
  for (const LoggedInterval& in : merged.intervals) {
    if (std::find(tags.begin(), tags.end(), in.tag) == tags.end()) tags.push_back(in.tag);
  }
  out << "echolab-loadgen merge: " << inputs << " interval logs, " << merged.intervals.size()
      << " merged intervals\n"
      << latency_header();
  for (const std::string& tag : tags) {
    out << latency_row(tag.empty() ? "(untagged)" : tag.c_str(), *tag_total(merged, tag));
  }
}

std::string format_status(const LiveStatus& s) {
  char text[160];
  const std::string p99 = s.p99_us < 0 ? std::string("-") : [&] {
    char v[32];
    std::snprintf(v, sizeof(v), "%.1f us", s.p99_us);
    return std::string(v);
  }();
  std::snprintf(text, sizeof(text), "%7.1fs%s %12s msgs/s   p99 %-12s errors %s", s.elapsed_s,
                s.warming_up ? " (warm-up)" : "", grouped(s.msgs_per_s).c_str(), p99.c_str(),
                grouped(static_cast<double>(s.errors)).c_str());
  return text;
}

void StatusLine::show(const LiveStatus& status) {
  if (!enabled_) return;
  std::cout << "\r\x1b[2K" << format_status(status) << std::flush;
  shown_ = true;
}

void StatusLine::clear() {
  if (enabled_ && shown_) {
    std::cout << "\r\x1b[2K" << std::flush;
    shown_ = false;
  }
}

void write_output(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text << std::flush;
    return;
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) {
    throw sys_error("open " + path, errno);
  }
  file << text;
  file.close();
  if (!file) {
    throw sys_error("write " + path, errno != 0 ? errno : EIO);
  }
}

std::string hgrm_text(const RunResult& result) {
  std::ostringstream out;
  result.tally.corrected.write_hgrm(out, 1000.0);
  return out.str();
}

bool same_output(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  if (a == b) return a != "/dev/null";
  const auto file_a = output_file(a);
  const auto file_b = output_file(b);
  if (file_a && file_b) {
    const auto null = output_file("/dev/null");
    const bool is_null = null && file_a->st_dev == null->st_dev && file_a->st_ino == null->st_ino;
    return file_a->st_dev == file_b->st_dev && file_a->st_ino == file_b->st_ino && !is_null;
  }
  if (file_a || file_b || a == "-" || b == "-") return false;
  std::error_code ea;
  std::error_code eb;
  const auto path_a = std::filesystem::weakly_canonical(std::filesystem::absolute(a), ea);
  const auto path_b = std::filesystem::weakly_canonical(std::filesystem::absolute(b), eb);
  return !ea && !eb && path_a == path_b;
}

void check_outputs(const Outputs& outputs) {
  const std::pair<const char*, const std::string*> named[] = {
      {"json", &outputs.json}, {"hgrm", &outputs.hgrm}, {"hlog", &outputs.hlog}};
  for (const auto& [option, path] : named) check_writable(*path, option);
  for (std::size_t i = 0; i < std::size(named); ++i) {
    for (std::size_t k = i + 1; k < std::size(named); ++k) {
      if (same_output(*named[i].second, *named[k].second)) {
        throw UsageError(std::string("--") + named[i].first + " " + *named[i].second + " and --" +
                         named[k].first + " " + *named[k].second +
                         " are the same file: the two outputs would mix; give each its own");
      }
    }
  }
}

void emit(const RunResult& result, const Outputs& outputs, bool quiet,
          const std::optional<std::string>& hlog) {
  if (!outputs.json.empty()) {
    write_output(outputs.json, to_json(result).dump(1) + "\n");
  }
  if (!outputs.hgrm.empty()) {
    write_output(outputs.hgrm, hgrm_text(result));
  }
  if (!outputs.hlog.empty()) {
    write_output(outputs.hlog, hlog ? *hlog : hlog_text(result));
  }
  if (!quiet) {
    // With an output on stdout, the table goes to stderr so that stdout stays parseable.
    const bool stdout_taken = same_output(outputs.json, "-") || same_output(outputs.hgrm, "-") ||
                              same_output(outputs.hlog, "-");
    print_summary(stdout_taken ? std::cerr : std::cout, result);
  }
}

}  // namespace echolab
