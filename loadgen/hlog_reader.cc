// Reading HdrHistogram interval logs back (see loadgen/hlog.h): the lines, the time base the
// way HdrHistogram's HistogramLogReader derives it, and each histogram decoded into one of
// echolab's interval layouts, counts at the same indices.
#include <charconv>
#include <cmath>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "loadgen/hlog.h"
#include "loadgen/recorder.h"

namespace echolab {
namespace {

// HistogramLogReader: without a BaseTime, starts this far before the StartTime are offsets.
constexpr double kSecondsPerYear = 365 * 24 * 3600.0;
// Past the year 5000: keeps every time of a log exact when aligned in integer microseconds.
constexpr double kLatestSeconds = 1e11;

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// A time or length from a log, in seconds: a finite number from 0 to kLatestSeconds.
double seconds(std::string_view text, const std::string& what) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || stop != end || !std::isfinite(value)) {
    throw std::invalid_argument(what + " is not a number: \"" + std::string(text) + "\"");
  }
  if (value < 0 || value > kLatestSeconds) {
    throw std::invalid_argument(what + " " + std::string(text) + " s is out of range");
  }
  return value;
}

// "#[StartTime: 1700000000.250 (seconds since epoch), ..." -> 1700000000.25
double header_time(std::string_view comment, std::string_view prefix) {
  const std::string_view rest = trim(comment.substr(prefix.size()));
  const std::string what(prefix.substr(2, prefix.size() - 3));  // "StartTime"
  return seconds(rest.substr(0, rest.find_first_of(" ,]")), what);
}

std::string describe_layout(std::int64_t lowest_discernible, std::int64_t highest, int digits) {
  return "lowest discernible value " + std::to_string(lowest_discernible) +
         ", highest trackable value " + std::to_string(highest) + ", " + std::to_string(digits) +
         " significant digits";
}

std::string describe_layout(const Histogram& layout) {
  return describe_layout(lowest_discernible_value(layout), layout.highest(),
                         layout.significant_digits());
}

// echolab's interval layouts (loadgen/recorder.h), the only ones a log may use.
const Histogram& latency_layout() {
  static const Histogram layout = make_interval_histogram();
  return layout;
}
const Histogram& send_lag_layout() {
  static const Histogram layout = make_interval_send_lag_histogram();
  return layout;
}

// The decoded counts in a Histogram of the layout echolab uses for `tag`, index for index.
Histogram in_echolab_layout(const std::string& tag, const DecodedHistogram& decoded) {
  if (decoded.conversion_ratio != 1.0 || decoded.normalizing_index_offset != 0) {
    throw std::invalid_argument("a shifted or floating-point histogram (integer-to-double ratio " +
                                std::to_string(decoded.conversion_ratio) + ", index offset " +
                                std::to_string(decoded.normalizing_index_offset) +
                                "): echolab merges integer histograms only");
  }
  std::vector<const Histogram*> layouts;
  if (tag != "send_lag") layouts.push_back(&latency_layout());
  if (tag != "corrected" && tag != "uncorrected") layouts.push_back(&send_lag_layout());
  const Histogram* layout = nullptr;
  std::string expected;
  for (const Histogram* candidate : layouts) {
    if (decoded.lowest_discernible == lowest_discernible_value(*candidate) &&
        decoded.highest_trackable == candidate->highest() &&
        decoded.significant_digits == candidate->significant_digits()) {
      layout = candidate;
    }
    expected += (expected.empty() ? "" : " or ") + describe_layout(*candidate);
  }
  if (layout == nullptr) {
    throw std::invalid_argument(
        "the histogram's layout (" +
        describe_layout(decoded.lowest_discernible, decoded.highest_trackable,
                        decoded.significant_digits) +
        ") is not echolab's for " + (tag.empty() ? "untagged intervals" : "tag " + tag) + " (" +
        expected + ")");
  }
  Histogram histogram = *layout;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < decoded.counts.size(); ++i) {
    const std::uint64_t n = decoded.counts[i];
    if (n == 0) continue;
    const std::int64_t value = i < histogram.counts_size() ? histogram.value_at_index(i) : -1;
    if (value < histogram.lowest() || value > histogram.highest()) {
      throw std::invalid_argument(
          "counts outside echolab's range " + std::to_string(histogram.lowest()) + " .. " +
          std::to_string(histogram.highest()) + " (at index " + std::to_string(i) + ")");
    }
    if (n > UINT64_MAX - total) throw std::invalid_argument("counts add up past 64 bits");
    total += n;
    histogram.record_n(value, n);
  }
  return histogram;
}

// What HistogramLogReader keeps between lines to place intervals in time.
struct TimeBase {
  std::optional<double> start_time;
  std::optional<double> base_time;

  double absolute(double start) {
    if (!start_time) start_time = start;
    if (!base_time) base_time = start < *start_time - kSecondsPerYear ? *start_time : 0.0;
    return *base_time + start;
  }
};

// One interval line: "[Tag=TAG,]start,length,max,BASE64".
LoggedInterval read_interval(std::string_view line, TimeBase& time, std::size_t max_counts) {
  std::vector<std::string_view> fields;
  for (std::size_t from = 0;;) {
    const auto comma = line.find(',', from);
    fields.push_back(trim(line.substr(from, comma - from)));
    if (comma == std::string_view::npos) break;
    from = comma + 1;
  }
  LoggedInterval interval;
  if (starts_with(fields.front(), "Tag=")) {
    interval.tag = std::string(fields.front().substr(4));
    if (interval.tag.empty()) throw std::invalid_argument("an empty Tag=");
    fields.erase(fields.begin());
  }
  if (fields.size() != 4) {
    throw std::invalid_argument("expected [Tag=TAG,]start,length,max,histogram, got " +
                                std::to_string(fields.size()) + " fields after the tag");
  }
  const double start = seconds(fields[0], "the start");
  interval.length_s = seconds(fields[1], "the length");
  if (interval.length_s <= 0) throw std::invalid_argument("the length is 0");
  static_cast<void>(seconds(fields[2], "the max"));  // the histogram holds the max itself
  interval.histogram =
      in_echolab_layout(interval.tag, decode_compressed(base64_decode(fields[3]), max_counts));
  interval.start_unix_s = time.absolute(start);
  if (interval.start_unix_s > kLatestSeconds) {
    throw std::invalid_argument("the start is past the year 5000");
  }
  return interval;
}

}  // namespace

IntervalLog read_hlog(std::istream& in, const std::string& name) {
  constexpr std::string_view kStartTime = "#[StartTime:";
  constexpr std::string_view kBaseTime = "#[BaseTime:";
  const std::size_t max_counts =
      std::max(latency_layout().counts_size(), send_lag_layout().counts_size());
  IntervalLog log;
  log.name = name;
  TimeBase time;
  std::string text;
  for (std::size_t number = 1; std::getline(in, text); ++number) {
    const std::string_view line = trim(text);
    try {
      if (starts_with(line, kStartTime)) {
        time.start_time = header_time(line, kStartTime);
      } else if (starts_with(line, kBaseTime)) {
        time.base_time = header_time(line, kBaseTime);
      } else if (!line.empty() && !starts_with(line, "#") &&
                 !starts_with(line, "\"StartTimestamp\"")) {
        log.intervals.push_back(read_interval(line, time, max_counts));
      }
    } catch (const std::invalid_argument& e) {
      throw UsageError(name + " line " + std::to_string(number) + ": " + e.what());
    }
  }
  if (in.bad()) throw std::runtime_error("read " + name + ": input error");
  if (log.intervals.empty()) throw UsageError(name + " holds no interval histograms");
  log.start_unix_s = *time.start_time;
  return log;
}

}  // namespace echolab
