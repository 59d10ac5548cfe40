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

// --- The V2 encoding, exposed for tests. ---
// ZigZag then LEB128 as HdrHistogram's "LEB128-64b9B": 7 bits a byte, at most 9 bytes, the
// ninth carrying 8 bits.
void put_zigzag(std::string& out, std::int64_t value);
// Reads one value at `pos` and advances it. Throws std::invalid_argument on truncation.
std::int64_t get_zigzag(std::string_view in, std::size_t& pos);

std::string base64_encode(std::string_view bytes);
// Throws std::invalid_argument on characters outside the alphabet or a bad length.
std::string base64_decode(std::string_view text);

// The V2 encoding (cookie 0x1c849313): 40-byte big-endian header (cookie, payload length,
// normalizing index offset 0, significant digits, lowest discernible value, highest trackable
// value, integer-to-double ratio 1.0), then the counts up to the last non-zero one, ZigZag
// LEB128, a run of two or more zeros written as minus its length.
std::string encode_v2(const Histogram& histogram);
// The V2 compressed encoding (cookie 0x1c849314: deflate, zlib-wrapped, of the 0x1c849313
// encoding: header, then counts with runs of zeros written as negative counts).
// Throws std::runtime_error if zlib fails.
std::string encode_compressed(const Histogram& histogram);

// What a reader of the encoding gets back (the test decoder; echolab never reads logs).
struct DecodedHistogram {
  std::int32_t significant_digits = 0;
  std::int64_t lowest_discernible = 0;
  std::int64_t highest_trackable = 0;
  double conversion_ratio = 0;
  std::int32_t normalizing_index_offset = 0;
  std::vector<std::uint64_t> counts;  // as long as the encoding carried (trailing zeros cut)
};
// Throws std::invalid_argument on a bad cookie, length or payload.
DecodedHistogram decode_compressed(std::string_view bytes);

// --- The log. ---
// Header: "#[StartTime: ...]", "#[BaseTime: ...]", the format version comment, the legend.
void write_hlog_header(std::ostream& out, double start_unix_s, std::string_view start_text);
// One line "Tag=TAG,start,length,max_ms,BASE64" (start relative to the BaseTime, seconds).
void write_hlog_interval(std::ostream& out, std::string_view tag, double start_s, double length_s,
                         const Histogram& histogram);
// The whole log of a run: per interval, the `corrected` histogram and, when the run kept
// them, `uncorrected` and `send_lag`.
std::string hlog_text(const RunResult& result);

}  // namespace echolab
