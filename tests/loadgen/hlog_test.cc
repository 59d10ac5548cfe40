// The .hlog encoder without sockets: ZigZag LEB128 bytes, base64, the V2 header and counts
// payload, and histograms round-tripped through the decoder (which merge uses), index for index.
#include "loadgen/hlog.h"

#include <gtest/gtest.h>

#include <limits>
#include <sstream>
#include <string>

#include "loadgen/recorder.h"

namespace echolab {
namespace {

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

std::string zigzag(std::int64_t v) {
  std::string out;
  put_zigzag(out, v);
  return out;
}

TEST(Hlog, ZigZagLeb128Bytes) {
  EXPECT_EQ(zigzag(0), bytes({0x00}));
  EXPECT_EQ(zigzag(-1), bytes({0x01}));
  EXPECT_EQ(zigzag(1), bytes({0x02}));
  EXPECT_EQ(zigzag(63), bytes({0x7e}));
  EXPECT_EQ(zigzag(-64), bytes({0x7f}));
  EXPECT_EQ(zigzag(64), bytes({0x80, 0x01}));
  EXPECT_EQ(zigzag(300), bytes({0xd8, 0x04}));
  // Past 56 bits: the ninth byte carries 8 bits, not 7 (HdrHistogram's LEB128-64b9B).
  EXPECT_EQ(zigzag(std::numeric_limits<std::int64_t>::min()),
            bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(zigzag(std::numeric_limits<std::int64_t>::max()),
            bytes({0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

TEST(Hlog, ZigZagRoundTrips) {
  const std::int64_t values[] = {0,
                                 1,
                                 -1,
                                 127,
                                 -128,
                                 1 << 20,
                                 -(1LL << 40),
                                 (1LL << 56) - 1,
                                 1LL << 56,
                                 std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::min()};
  std::string all;
  for (auto v : values) put_zigzag(all, v);
  std::size_t pos = 0;
  for (auto v : values) EXPECT_EQ(get_zigzag(all, pos), v);
  EXPECT_EQ(pos, all.size());
  std::size_t bad = 0;
  EXPECT_THROW(get_zigzag(bytes({0x80}), bad), std::invalid_argument);
}

TEST(Hlog, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
  EXPECT_THROW(base64_decode("Zm9"), std::invalid_argument);
  EXPECT_THROW(base64_decode("Zm9*"), std::invalid_argument);
}

TEST(Hlog, V2HeaderAndZeroRuns) {
  Histogram h = make_latency_histogram();  // 1 µs .. 60 s in ns, 3 digits: unit 1 ns
  h.record_n(1'000, 3);                    // index 1000
  h.record(1'002);                         // one zero between: written as a plain 0
  h.record(1'500);                         // 497 zeros between: written as -497
  const std::string v2 = encode_v2(h);
  ASSERT_GE(v2.size(), 40u);
  EXPECT_EQ(v2.substr(0, 4), bytes({0x1c, 0x84, 0x93, 0x13}));
  EXPECT_EQ(v2.substr(8, 8), bytes({0, 0, 0, 0, 0, 0, 0, 3}));   // offset 0, 3 digits
  EXPECT_EQ(v2.substr(16, 8), bytes({0, 0, 0, 0, 0, 0, 0, 1}));  // lowest discernible 1 ns
  EXPECT_EQ(v2.substr(24, 8), bytes({0, 0, 0, 0x0d, 0xf8, 0x47, 0x58, 0x00}));  // 60e9
  EXPECT_EQ(v2.substr(32, 8), bytes({0x3f, 0xf0, 0, 0, 0, 0, 0, 0}));           // 1.0
  std::string payload;
  put_zigzag(payload, -1000);
  put_zigzag(payload, 3);
  put_zigzag(payload, 0);
  put_zigzag(payload, 1);
  put_zigzag(payload, -497);
  put_zigzag(payload, 1);
  EXPECT_EQ(v2.substr(4, 4), bytes({0, 0, 0, static_cast<int>(payload.size())}));
  EXPECT_EQ(v2.substr(40), payload);
}

void expect_round_trip(const Histogram& h, std::int64_t unit) {
  const std::string compressed = encode_compressed(h);
  EXPECT_EQ(compressed.substr(0, 4), bytes({0x1c, 0x84, 0x93, 0x14}));
  const DecodedHistogram d = decode_compressed(base64_decode(base64_encode(compressed)));
  EXPECT_EQ(d.significant_digits, h.significant_digits());
  EXPECT_EQ(d.lowest_discernible, unit);
  EXPECT_EQ(d.highest_trackable, h.highest());
  EXPECT_EQ(d.conversion_ratio, 1.0);
  EXPECT_EQ(d.normalizing_index_offset, 0);
  ASSERT_LE(d.counts.size(), h.counts_size());
  for (std::size_t i = 0; i < h.counts_size(); ++i) {
    ASSERT_EQ(i < d.counts.size() ? d.counts[i] : 0, h.count_at_index(i)) << "index " << i;
  }
}

TEST(Hlog, HistogramsRoundTripIndexForIndex) {
  Histogram latency = make_latency_histogram();
  Histogram interval = make_interval_histogram();  // 2 digits from 1 µs: unit 4 ns
  Histogram lag = make_interval_send_lag_histogram();
  std::uint64_t n = 1;
  for (std::int64_t v = 1'000; v <= 60'000'000'000; v = v * 7 / 5 + 13, ++n) {
    latency.record_n(v, n);
    interval.record_n(v, n * 1'000'000'007ULL);  // counts past 4 LEB128 bytes
    lag.record(v / 1'000);
  }
  expect_round_trip(latency, 1);
  expect_round_trip(interval, 4);
  expect_round_trip(lag, 1);
  expect_round_trip(make_latency_histogram(), 1);  // empty: one zero count
}

TEST(Hlog, DecoderRejectsDamage) {
  Histogram h = make_latency_histogram();
  h.record(5'000);
  std::string c = encode_compressed(h);
  EXPECT_THROW(decode_compressed(c.substr(0, c.size() - 1)), std::invalid_argument);
  c[0] = 0;
  EXPECT_THROW(decode_compressed(c), std::invalid_argument);
}

TEST(Hlog, LogLines) {
  Histogram h = make_interval_histogram();
  h.record(1'234'567);  // max: the bucket's highest value, in ms
  std::ostringstream out;
  write_hlog_header(out, 1'700'000'000.25, "2023-11-14T22:13:20.250Z");
  write_hlog_interval(out, "corrected", 1.5, 0.5, h);
  const std::string text = out.str();
  EXPECT_NE(text.find("#[Histogram log format version 1.3]\n"), std::string::npos);
  EXPECT_NE(text.find("#[StartTime: 1700000000.250 (seconds since epoch), 2023-11-14"),
            std::string::npos);
  EXPECT_NE(text.find("#[BaseTime: 1700000000.250 (seconds since epoch)]\n"), std::string::npos);
  EXPECT_NE(text.find("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
                      "\"Interval_Compressed_Histogram\"\n"),
            std::string::npos);
  const std::string prefix = "Tag=corrected,1.500,0.500,1.237,";
  const auto at = text.find(prefix);
  ASSERT_NE(at, std::string::npos) << text;
  const std::string b64 = text.substr(at + prefix.size(), text.size() - at - prefix.size() - 1);
  const DecodedHistogram d = decode_compressed(base64_decode(b64));
  std::uint64_t total = 0;
  for (auto c : d.counts) total += c;
  EXPECT_EQ(total, 1u);
  EXPECT_EQ(d.counts.back(), 1u);
}

}  // namespace
}  // namespace echolab
