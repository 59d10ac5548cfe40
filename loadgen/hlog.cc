#include "loadgen/hlog.h"

#include <zlib.h>

#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "loadgen/environment.h"
#include "loadgen/result.h"

namespace echolab {
namespace {

// The "| 0x10" marks the V2 word size (LEB128-64b9B, zeros run-length encoded).
constexpr std::uint32_t kEncodingCookie = 0x1c849303 | 0x10;
constexpr std::uint32_t kCompressedCookie = 0x1c849304 | 0x10;
constexpr std::size_t kHeaderBytes = 40;  // cookie, length, offset, digits, 2 longs, a double
constexpr std::size_t kMaxZigZagBytes = 9;
constexpr double kNsPerMs = 1e6;          // HistogramLogWriter's default max value unit ratio
constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

std::uint64_t get_be(std::string_view in, std::size_t pos, int bytes) {
  if (in.size() < pos + static_cast<std::size_t>(bytes)) {
    throw std::invalid_argument("V2 histogram: header truncated");
  }
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(in[pos + static_cast<std::size_t>(i)]);
  }
  return value;
}

}  // namespace

std::int64_t lowest_discernible_value(const Histogram& histogram) {
  // The finest sub-bucket is [0, 2^unit_magnitude): its highest value + 1 is the unit.
  return histogram.highest_equivalent_value(0) + 1;
}

std::string encode_v2(const Histogram& h) {
  std::string out;
  put_be(out, kEncodingCookie, 4);
  put_be(out, 0, 4);  // payload length, filled in below
  put_be(out, 0, 4);  // normalizing index offset: echolab never shifts its counts
  put_be(out, static_cast<std::uint32_t>(h.significant_digits()), 4);
  put_be(out, static_cast<std::uint64_t>(lowest_discernible_value(h)), 8);
  put_be(out, static_cast<std::uint64_t>(h.highest()), 8);
  put_be(out, std::bit_cast<std::uint64_t>(1.0), 8);  // integer values: ratio 1

  // Up to the last non-zero count (one zero for an empty histogram, as HdrHistogram does).
  std::size_t limit = 1;
  for (std::size_t i = h.counts_size(); i > 0; --i) {
    if (h.count_at_index(i - 1) != 0) {
      limit = i;
      break;
    }
  }
  for (std::size_t i = 0; i < limit;) {
    const std::uint64_t count = h.count_at_index(i);
    std::size_t zeros = 0;
    while (i + zeros < limit && h.count_at_index(i + zeros) == 0) ++zeros;
    if (zeros > 1) {
      put_zigzag(out, -static_cast<std::int64_t>(zeros));
      i += zeros;
    } else {
      put_zigzag(out, static_cast<std::int64_t>(count));
      ++i;
    }
  }
  const std::size_t payload = out.size() - kHeaderBytes;
  for (int b = 0; b < 4; ++b) {
    out[4 + static_cast<std::size_t>(b)] = static_cast<char>((payload >> (8 * (3 - b))) & 0xff);
  }
  return out;
}

namespace {

std::string fixed3(double v) {
  std::array<char, 64> buf{};
  auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 3);
  return ec == std::errc{} ? std::string(buf.data(), end) : std::string("0.000");
}

}  // namespace

void put_zigzag(std::string& out, std::int64_t value) {
  auto v = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
  for (int i = 0; i < 8; ++i) {
    if ((v >> 7) == 0) {
      out.push_back(static_cast<char>(v));
      return;
    }
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));  // the ninth byte carries the last 8 bits whole
}

std::int64_t get_zigzag(std::string_view in, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int i = 0; i < 9; ++i) {
    if (pos >= in.size()) throw std::invalid_argument("V2 histogram: a count is truncated");
    const auto byte = static_cast<unsigned char>(in[pos++]);
    if (i == 8) {
      v |= static_cast<std::uint64_t>(byte) << 56;
      break;
    }
    v |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) break;
  }
  return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t block = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      block = (block << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out.push_back(k <= n ? kBase64[(block >> (18 - 6 * k)) & 0x3f] : '=');
    }
  }
  return out;
}

std::string base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) throw std::invalid_argument("base64: length not a multiple of 4");
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t block = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      std::uint32_t six = 0;
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
      } else {
        const auto at = kBase64.find(c);
        if (at == std::string_view::npos || pad > 0) {
          throw std::invalid_argument("base64: a character outside the alphabet");
        }
        six = static_cast<std::uint32_t>(at);
      }
      block = (block << 6) | six;
    }
    for (int k = 0; k < 3 - pad; ++k)
      out.push_back(static_cast<char>((block >> (16 - 8 * k)) & 0xff));
  }
  return out;
}

std::string encode_compressed(const Histogram& histogram) {
  const std::string plain = encode_v2(histogram);
  uLongf size = compressBound(static_cast<uLong>(plain.size()));
  std::string out;
  put_be(out, kCompressedCookie, 4);
  put_be(out, 0, 4);
  out.resize(8 + size);
  // compress2 writes zlib-wrapped deflate, which is what HdrHistogram's Deflater/Inflater use.
  const int rc = compress2(reinterpret_cast<Bytef*>(out.data() + 8), &size,
                           reinterpret_cast<const Bytef*>(plain.data()),
                           static_cast<uLong>(plain.size()), Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) throw std::runtime_error(std::string("hlog: compress2: ") + zError(rc));
  out.resize(8 + size);
  for (int b = 0; b < 4; ++b) {
    out[4 + static_cast<std::size_t>(b)] = static_cast<char>((size >> (8 * (3 - b))) & 0xff);
  }
  return out;
}

namespace {

// Inflates a whole zlib stream, refusing one that inflates past `limit` bytes (the most a
// valid histogram of the accepted size can take) instead of growing without bound.
std::string inflate_at_most(std::string_view deflated, std::size_t limit) {
  z_stream z{};
  if (const int rc = inflateInit(&z); rc != Z_OK) {
    throw std::runtime_error(std::string("inflateInit: ") + zError(rc));
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(deflated.data()));
  z.avail_in = static_cast<uInt>(deflated.size());
  // One byte past the limit, so that a stream of exactly `limit` bytes can say it ended.
  const std::size_t room = limit + 1;
  std::string plain(std::min(room, 4 * deflated.size() + kHeaderBytes), '\0');
  std::size_t have = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (have == plain.size()) {
      if (plain.size() == room) {
        inflateEnd(&z);
        throw std::invalid_argument("zlib: inflates past " + std::to_string(limit) +
                                    " bytes, more than any accepted histogram");
      }
      plain.resize(std::min(room, 2 * plain.size()));
    }
    z.next_out = reinterpret_cast<Bytef*>(plain.data() + have);
    z.avail_out = static_cast<uInt>(plain.size() - have);
    rc = inflate(&z, Z_NO_FLUSH);
    have = plain.size() - z.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END) {
      // Z_BUF_ERROR here: no progress possible, the input ended inside the stream.
      const std::string why = rc == Z_BUF_ERROR  ? "the compressed data ends early"
                              : z.msg != nullptr ? z.msg
                                                 : zError(rc);
      inflateEnd(&z);
      throw std::invalid_argument("zlib inflate: " + why);
    }
  }
  inflateEnd(&z);
  plain.resize(have);
  return plain;
}

}  // namespace

DecodedHistogram decode_compressed(std::string_view bytes, std::size_t max_counts) {
  if (const auto cookie = get_be(bytes, 0, 4); cookie != kCompressedCookie) {
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%08x", static_cast<unsigned>(cookie));
    throw std::invalid_argument(std::string("not a V2 compressed integer histogram (cookie ") +
                                hex + ")");
  }
  const auto length = get_be(bytes, 4, 4);
  if (bytes.size() != 8 + length) {
    throw std::invalid_argument("V2 histogram: " + std::to_string(bytes.size() - 8) +
                                " compressed bytes, the header says " + std::to_string(length));
  }
  // A count takes at most 9 bytes, a run of zeros at least one byte.
  const std::string plain =
      inflate_at_most(bytes.substr(8), kHeaderBytes + kMaxZigZagBytes * max_counts);

  if (get_be(plain, 0, 4) != kEncodingCookie) {
    throw std::invalid_argument("V2 histogram: the inflated data has another cookie");
  }
  DecodedHistogram d;
  const auto payload = get_be(plain, 4, 4);
  d.normalizing_index_offset = static_cast<std::int32_t>(get_be(plain, 8, 4));
  d.significant_digits = static_cast<std::int32_t>(get_be(plain, 12, 4));
  d.lowest_discernible = static_cast<std::int64_t>(get_be(plain, 16, 8));
  d.highest_trackable = static_cast<std::int64_t>(get_be(plain, 24, 8));
  d.conversion_ratio = std::bit_cast<double>(get_be(plain, 32, 8));
  if (plain.size() != kHeaderBytes + payload) {
    throw std::invalid_argument("V2 histogram: " + std::to_string(plain.size() - kHeaderBytes) +
                                " payload bytes, the header says " + std::to_string(payload));
  }
  const std::string_view counts(plain.data() + kHeaderBytes, payload);
  for (std::size_t pos = 0; pos < counts.size();) {
    const std::int64_t v = get_zigzag(counts, pos);
    // -(v + 1) + 1: minus the most negative value would overflow.
    const std::uint64_t n = v < 0 ? static_cast<std::uint64_t>(-(v + 1)) + 1 : 1;
    if (n > max_counts - d.counts.size()) {
      throw std::invalid_argument("V2 histogram: more than " + std::to_string(max_counts) +
                                  " counts");
    }
    if (v < 0) {
      d.counts.insert(d.counts.end(), n, 0);
    } else {
      d.counts.push_back(static_cast<std::uint64_t>(v));
    }
  }
  return d;
}

void write_hlog_header(std::ostream& out, double start_unix_s, std::string_view start_text) {
  out << "#[Logged with echolab-loadgen]\n"
      << "#[Histogram log format version 1.3]\n"
      << "#[StartTime: " << fixed3(start_unix_s) << " (seconds since epoch), " << start_text
      << "]\n"
      << "#[BaseTime: " << fixed3(start_unix_s) << " (seconds since epoch)]\n"
      << "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_"
         "Histogram\"\n";
}

void write_hlog_interval(std::ostream& out, std::string_view tag, double start_s, double length_s,
                         const Histogram& histogram) {
  const double max_ms =
      histogram.empty()
          ? 0.0
          : static_cast<double>(histogram.highest_equivalent_value(histogram.max())) / kNsPerMs;
  if (!tag.empty()) out << "Tag=" << tag << ',';
  out << fixed3(start_s) << ',' << fixed3(length_s) << ',' << fixed3(max_ms) << ','
      << base64_encode(encode_compressed(histogram)) << '\n';
}

std::string hlog_text(const RunResult& result) {
  std::ostringstream out;
  write_hlog_header(out, result.start_unix_s, result.start_utc);
  for (const Interval& in : result.intervals) {
    write_hlog_interval(out, "corrected", in.start_s, in.length_s, in.latency);
    if (in.uncorrected)
      write_hlog_interval(out, "uncorrected", in.start_s, in.length_s, *in.uncorrected);
    if (in.send_lag) write_hlog_interval(out, "send_lag", in.start_s, in.length_s, *in.send_lag);
  }
  return out.str();
}

std::string hlog_text(const IntervalLog& log) {
  const auto start = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(log.start_unix_s)));
  std::ostringstream out;
  write_hlog_header(out, log.start_unix_s, format_utc(start));
  for (const LoggedInterval& in : log.intervals) {
    write_hlog_interval(out, in.tag, in.start_unix_s - log.start_unix_s, in.length_s, in.histogram);
  }
  return out.str();
}

}  // namespace echolab
