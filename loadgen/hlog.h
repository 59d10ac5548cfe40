#pragma once
// HdrHistogram's interval log (.hlog, "Histogram log format version 1.3"), so the HdrHistogram
// tools (HistogramLogProcessor, HistogramLogAnalyzer, the ports' log readers) read echolab's
// latency per interval.
//
// Units: values are nanoseconds, as the format's tools assume (HistogramLogProcessor's default
// -outputValueUnitRatio is 1e6, "1 msec in nsec"); Interval_Max is written in milliseconds
// (max / 1e6, HistogramLogWriter's default max value unit ratio). For µs pass
// -outputValueUnitRatio 1000 to HistogramLogProcessor.
//
// Buckets: echolab's Histogram uses HdrHistogram's layout with a finest sub-bucket width of
// 2^unit_magnitude. An HdrHistogram built with lowestDiscernibleValue = 2^unit_magnitude, the
// same highestTrackableValue and significant digits has the same counts array, index for
// index, so the counts are written as they are: no conversion, nothing lost. (Values below
// echolab's `lowest` are counted apart and are not in the log.)
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/histogram.h"

namespace echolab {

struct RunResult;

// --- The V2 encoding (exposed for tests). ---
// ZigZag then LEB128 as HdrHistogram's "LEB128-64b9B": 7 bits a byte, at most 9 bytes, the
// ninth carrying 8 bits.
void put_zigzag(std::string& out, std::int64_t value);
// Reads one value at `pos` and advances it. Throws std::invalid_argument on truncation.
std::int64_t get_zigzag(std::string_view in, std::size_t& pos);

std::string base64_encode(std::string_view bytes);
// Throws std::invalid_argument on characters outside the alphabet or a bad length.
std::string base64_decode(std::string_view text);

// HdrHistogram's lowestDiscernibleValue for echolab's layout: the finest sub-bucket's width
// (2^unit_magnitude), which is what makes the two counts arrays the same.
std::int64_t lowest_discernible_value(const Histogram& histogram);

// The V2 encoding (cookie 0x1c849313): 40-byte big-endian header (cookie, payload length,
// normalizing index offset 0, significant digits, lowest discernible value, highest trackable
// value, integer-to-double ratio 1.0), then the counts up to the last non-zero one, ZigZag
// LEB128, a run of two or more zeros written as minus its length.
std::string encode_v2(const Histogram& histogram);
// The V2 compressed encoding (cookie 0x1c849314: deflate, zlib-wrapped, of the 0x1c849313
// encoding: header, then counts with runs of zeros written as negative counts).
// Throws std::runtime_error if zlib fails.
std::string encode_compressed(const Histogram& histogram);

// What the encoding carries: its header and its counts.
struct DecodedHistogram {
  std::int32_t significant_digits = 0;
  std::int64_t lowest_discernible = 0;
  std::int64_t highest_trackable = 0;
  double conversion_ratio = 0;
  std::int32_t normalizing_index_offset = 0;
  std::vector<std::uint64_t> counts;  // as long as the encoding carried (trailing zeros cut)
};
// Far more counts than any echolab layout has (the 3-digit latency layout: ~27,000), so that
// a damaged or hostile encoding cannot make the decoder inflate or allocate without bound.
inline constexpr std::size_t kMaxDecodedCounts = std::size_t{1} << 20;
// Throws std::invalid_argument (one phrase: what is wrong) on a bad cookie, a length that
// does not match, zlib data that does not inflate, a bad payload, or more than max_counts
// counts.
DecodedHistogram decode_compressed(std::string_view bytes,
                                   std::size_t max_counts = kMaxDecodedCounts);

// --- The log. ---
// Header: "#[StartTime: ...]", "#[BaseTime: ...]", the format version comment, the legend.
void write_hlog_header(std::ostream& out, double start_unix_s, std::string_view start_text);
// One line "Tag=TAG,start,length,max_ms,BASE64" (start relative to the BaseTime, seconds);
// without the "Tag=" field when `tag` is empty, as HdrHistogram writes untagged intervals.
void write_hlog_interval(std::ostream& out, std::string_view tag, double start_s, double length_s,
                         const Histogram& histogram);
// The whole log of a run: per interval, the `corrected` histogram and, when the run kept
// them, `uncorrected` and `send_lag`.
std::string hlog_text(const RunResult& result);

// --- Reading logs back (echolab-loadgen merge A.hlog B.hlog ...). ---
//
// The reader takes what HdrHistogram's HistogramLogReader takes: "#[StartTime: S" and
// "#[BaseTime: S" comments (seconds since the epoch), other comments, the legend, and interval
// lines "[Tag=TAG,]start,length,max,BASE64" (seconds; the max is checked to be a number and
// otherwise ignored, since the histogram holds it). A line's absolute start is the BaseTime
// plus its start; a log without a BaseTime gets HdrHistogram's rule: starts more than a year
// before the StartTime are offsets from it, others are absolute; a log without a StartTime
// starts at its first interval.
//
// Only V2 compressed integer histograms in echolab's interval layouts are accepted, so that
// they merge bucket for bucket with nothing converted: tags `corrected` and `uncorrected` are
// 1 µs .. 60 s at 2 digits (lowest discernible value 4 ns), `send_lag` 1 ns .. 60 s at 2
// digits (lowest discernible 1 ns), a line without a tag or with another tag either one.
// Anything else (another layout, counts outside echolab's range, a DoubleHistogram, damage)
// is refused with the file, the line and what is wrong.
//
// Merging logs (merge_interval_logs in loadgen/merge.h; `echolab-loadgen merge A.hlog B.hlog
// --hlog OUT`): the generators of one load ran at the same time, each with its own clock
// start, so their intervals are aligned on absolute time, not by index.
//  - A log's interval length is the median of its intervals' lengths (the upper one of two),
//    so a short last interval does not count. The logs' lengths must agree within
//    max(1 ms, 0.1 %), else the merge is refused; the slot is the shortest, rounded down to
//    the millisecond, so that no slot is longer than a log's interval and two intervals of
//    one log never fall in one slot. (Logs whose lengths differ a little drift apart by that
//    difference per interval: hence the small tolerance.)
//  - Slots count from the earliest interval start of all the logs: an interval belongs to
//    slot floor((its absolute start - that earliest start) / slot). Intervals of one tag in
//    one slot are added bucket by bucket; the merged interval starts at its slot's start and
//    is as long as the longest of its parts. Untagged intervals are a tag of their own.
//  - The merged log's StartTime (and BaseTime) is the earliest of the inputs' (or the
//    earliest interval's start, should that come before it); its lines go slot by slot,
//    tags in the order they were first met.
//  - Logs that do not overlap in time (a log's span: its first interval's start to its last
//    interval's end) are refused, as JSON results whose measured windows do not overlap are,
//    unless --force: then they are aligned the same way, and the slots between them simply
//    have no lines.
struct LoggedInterval {
  std::string tag;          // "" for a line without a tag
  double start_unix_s = 0;  // absolute: the BaseTime plus the line's start
  double length_s = 0;
  Histogram histogram;
};
struct IntervalLog {
  std::string name;                       // the file it came from, for messages
  double start_unix_s = 0;                // its StartTime
  std::vector<LoggedInterval> intervals;  // in the order of the file
};
// Throws UsageError "NAME line N: what is wrong" (one line), or "NAME holds no interval
// histograms" for a log without any.
[[nodiscard]] IntervalLog read_hlog(std::istream& in, const std::string& name);
// The log as HdrHistogram's tools read it: StartTime and BaseTime are the log's start_unix_s,
// each interval's start is written relative to it.
[[nodiscard]] std::string hlog_text(const IntervalLog& log);

}  // namespace echolab
