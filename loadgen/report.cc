#include "loadgen/report.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "loadgen/merge.h"

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
  out << "\n  messages: " << r.sent << " sent, " << r.received << " echoed and verified\n";
  out << latency_header() << latency_row("corrected", r.corrected)
      << latency_row("uncorrected", r.uncorrected);
  if (c.value("mode", "") == "open") {
    out << latency_row("send lag", r.send_lag);
  }
  const std::uint64_t out_of_range = r.corrected.below_range() + r.corrected.above_range();
  if (out_of_range > 0) {
    out << "  out of histogram range (1 us .. 60 s): " << out_of_range << "\n";
  }
  out << "  errors: ";
  if (r.errors_total() == 0) {
    out << "none";
  } else {
    const char* separator = "";
    for (int i = 0; i < kFailureKinds; ++i) {
      if (const std::uint64_t n = r.failures[static_cast<std::size_t>(i)]; n > 0) {
        out << separator << to_string(static_cast<Failure>(i)) << " " << n;
        separator = ", ";
      }
    }
  }
  out << "\n";
  bool any_anomaly = false;
  for (int i = 0; i < kAnomalyKinds; ++i) {
    if (const std::uint64_t n = r.anomalies[static_cast<std::size_t>(i)]; n > 0) {
      out << (any_anomaly ? ", " : "  also: ") << to_string(static_cast<Anomaly>(i)) << " " << n;
      any_anomaly = true;
    }
  }
  if (any_anomaly) out << "\n";
  double user = 0;
  double sys = 0;
  double busiest = 0;
  for (const ThreadUsage& t : r.threads) {
    user += t.user_s;
    sys += t.sys_s;
    if (t.wall_s > 0) busiest = std::max(busiest, (t.user_s + t.sys_s) / t.wall_s);
  }
  std::snprintf(line, sizeof(line),
                "  generator CPU: user %.2f s, sys %.2f s; busiest thread %.0f%% of a core\n",
                user, sys, 100 * busiest);
  out << line;
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
  result.corrected.write_hgrm(out, 1000.0);
  return out.str();
}

}  // namespace echolab
