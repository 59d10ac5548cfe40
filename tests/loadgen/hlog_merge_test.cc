// Interval logs read back and merged, without sockets: logs written by echolab's own writer
// for known histograms are merged, written, decoded again and compared count for count per
// tag and per aligned interval; logs placed in time the ways HdrHistogram allows; and the
// refusals (interval lengths, time, layouts, damaged lines), each one line naming file and line.
#include <gtest/gtest.h>
#include <zlib.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "loadgen/hlog.h"
#include "loadgen/merge.h"
#include "loadgen/recorder.h"

namespace echolab {
namespace {

constexpr double kStart = 1'700'000'000.0;
const std::vector<std::string> kTags = {"corrected", "uncorrected", "send_lag"};

Histogram layout_for(const std::string& tag) {
  return tag == "send_lag" ? make_interval_send_lag_histogram() : make_interval_histogram();
}

// A histogram that differs by log, interval and tag, so that a count in the wrong slot or
// tag shows.
Histogram sample(const std::string& tag, int log, int interval) {
  Histogram h = layout_for(tag);
  const auto seed = static_cast<std::int64_t>(100 * log + 10 * interval + tag.size());
  h.record_n(2'000 + 37 * seed, static_cast<std::uint64_t>(1 + seed));
  h.record_n(1'000'000 + 9'001 * seed, 3);
  if (interval % 2 == 1) h.record_n(40'000'000'000, static_cast<std::uint64_t>(log + 1));
  return h;
}

struct Line {
  std::string tag;
  double start_s;
  double length_s;
  Histogram histogram;
};

// What echolab-loadgen --hlog writes: its header, then the lines.
std::string log_text(double start_unix_s, const std::vector<Line>& lines) {
  std::ostringstream out;
  write_hlog_header(out, start_unix_s, "a start");
  for (const Line& line : lines) {
    write_hlog_interval(out, line.tag, line.start_s, line.length_s, line.histogram);
  }
  return out.str();
}

// `count` intervals of every tag, `length` s each from the log's start.
std::vector<Line> run_lines(int log, int count, double length) {
  std::vector<Line> lines;
  for (int i = 0; i < count; ++i) {
    for (const std::string& tag : kTags) {
      lines.push_back({tag, i * length, length, sample(tag, log, i)});
    }
  }
  return lines;
}

IntervalLog read_text(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  return read_hlog(in, name);
}

void expect_same_counts(const Histogram& actual, const Histogram& expected) {
  ASSERT_TRUE(actual.same_layout(expected));
  EXPECT_EQ(actual.count(), expected.count());
  for (std::size_t i = 0; i < expected.counts_size(); ++i) {
    ASSERT_EQ(actual.count_at_index(i), expected.count_at_index(i)) << "index " << i;
  }
}

// The one line of a refusal, which must name `where` and contain `needle`.
void expect_refused(const std::function<void()>& action, const std::string& where,
                    const std::string& needle) {
  try {
    action();
    ADD_FAILURE() << "not refused: expected \"" << where << "\" ... \"" << needle << "\"";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.rfind(where, 0), 0u) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << message;
  }
}

void expect_merge_refused(const std::vector<IntervalLog>& logs, bool allow_disjoint,
                          const std::string& where, const std::string& needle) {
  expect_refused([&] { static_cast<void>(merge_interval_logs(logs, allow_disjoint)); }, where,
                 needle);
}

// What a slot must hold: the two logs' samples of it, added.
Histogram both_logs(const std::string& tag, int interval) {
  Histogram sum = sample(tag, 0, interval);
  sum.merge(sample(tag, 1, interval));
  return sum;
}

TEST(HlogMerge, EveryTagAddsUpPerAlignedInterval) {
  // B starts 0.3 s after A: its interval i starts in A's interval i; its last one is short.
  std::vector<Line> b_lines = run_lines(1, 4, 0.5);
  for (std::size_t k = b_lines.size() - kTags.size(); k < b_lines.size(); ++k) {
    b_lines[k].length_s = 0.2;
  }
  const IntervalLog a = read_text(log_text(kStart, run_lines(0, 4, 0.5)), "a.hlog");
  const IntervalLog b = read_text(log_text(kStart + 0.3, b_lines), "b.hlog");
  ASSERT_EQ(a.intervals.size(), 12u);
  EXPECT_DOUBLE_EQ(b.start_unix_s, kStart + 0.3);
  EXPECT_NEAR(b.intervals[3].start_unix_s, kStart + 0.8, 1e-6);

  const std::string text = hlog_text(merge_interval_logs({a, b}, false));
  EXPECT_NE(
      text.find("#[StartTime: 1700000000.000 (seconds since epoch), 2023-11-14T22:13:20.000Z]"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("#[BaseTime: 1700000000.000 (seconds since epoch)]"), std::string::npos);
  EXPECT_NE(text.find("\nTag=send_lag,1.500,0.500,"), std::string::npos) << text;

  const IntervalLog merged = read_text(text, "merged.hlog");
  ASSERT_EQ(merged.intervals.size(), 12u);
  for (int slot = 0; slot < 4; ++slot) {
    for (std::size_t t = 0; t < kTags.size(); ++t) {
      SCOPED_TRACE("slot " + std::to_string(slot) + " tag " + kTags[t]);
      const LoggedInterval& in = merged.intervals[static_cast<std::size_t>(slot) * 3 + t];
      EXPECT_EQ(in.tag, kTags[t]);
      EXPECT_NEAR(in.start_unix_s, kStart + 0.5 * slot, 1e-6);
      EXPECT_DOUBLE_EQ(in.length_s, 0.5);  // the longest of the parts
      expect_same_counts(in.histogram, both_logs(kTags[t], slot));
    }
  }
  // --hgrm of a merge of logs: every corrected interval added up.
  Histogram all_corrected = make_interval_histogram();
  for (int log = 0; log < 2; ++log) {
    for (int slot = 0; slot < 4; ++slot) all_corrected.merge(sample("corrected", log, slot));
  }
  expect_same_counts(*tag_total(merged, "corrected"), all_corrected);
  EXPECT_FALSE(tag_total(merged, "no such tag"));
}

TEST(HlogMerge, TimeIsPlacedAsHdrHistogramPlacesIt) {
  const Histogram h = sample("corrected", 0, 0);
  const std::string b64 = base64_encode(encode_compressed(h));
  // StartTime only: starts that are offsets (more than a year before it) count from it.
  const IntervalLog relative = read_text(
      "#[StartTime: 1700000000.5 (seconds since epoch), x]\r\n"
      "Tag=corrected,1.000,1.000,1.0," +
          b64 + "\r\n",
      "relative.hlog");
  EXPECT_NEAR(relative.intervals[0].start_unix_s, kStart + 1.5, 1e-6);
  // No header at all, lines without a tag as HdrHistogram writes them: absolute starts.
  const IntervalLog absolute =
      read_text("1700000000.000,1.000,1.0," + b64 + "\n" + "1700000001.000,1.000,1.0," + b64 + "\n",
                "absolute.hlog");
  EXPECT_DOUBLE_EQ(absolute.start_unix_s, kStart);
  EXPECT_EQ(absolute.intervals[1].tag, "");
  EXPECT_NEAR(absolute.intervals[1].start_unix_s, kStart + 1, 1e-6);
  // A BaseTime of its own: starts count from it, not from the StartTime.
  const IntervalLog based = read_text(
      "#[StartTime: 1700000001.000]\n#[BaseTime: 1699999999.000]\n"
      "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\","
      "\"Interval_Compressed_Histogram\"\n"
      "2.000,1.000,1.0," +
          b64 + "\n",
      "based.hlog");
  EXPECT_NEAR(based.intervals[0].start_unix_s, kStart + 1, 1e-6);

  // Untagged intervals merge among themselves and are written back without a tag.
  const std::string text = hlog_text(merge_interval_logs({absolute, based}, false));
  EXPECT_EQ(text.find("Tag="), std::string::npos) << text;
  const IntervalLog merged = read_text(text, "merged.hlog");
  ASSERT_EQ(merged.intervals.size(), 2u);
  EXPECT_EQ(merged.intervals[1].histogram.count(), 2 * h.count());
}

TEST(HlogMerge, IntervalLengthsMustAgree) {
  const IntervalLog half = read_text(log_text(kStart, run_lines(0, 4, 0.5)), "half.hlog");
  const IntervalLog whole = read_text(log_text(kStart, run_lines(1, 2, 1.0)), "whole.hlog");
  expect_merge_refused({half, whole}, true,
                       "whole.hlog has intervals of 1.000 s, half.hlog of 0.500 s", "--interval");
  // Within the tolerance: the slot is the shorter length, and each log keeps one interval
  // per slot.
  const IntervalLog near = read_text(log_text(kStart, run_lines(1, 4, 0.501)), "near.hlog");
  const IntervalLog merged = merge_interval_logs({half, near}, false);
  ASSERT_EQ(merged.intervals.size(), 12u);
  EXPECT_NEAR(merged.intervals.back().start_unix_s, kStart + 1.5, 1e-6);
  EXPECT_DOUBLE_EQ(merged.intervals.back().length_s, 0.501);
  expect_same_counts(merged.intervals.back().histogram, both_logs("send_lag", 3));
  const IntervalLog too_far = read_text(log_text(kStart, run_lines(1, 4, 0.502)), "far.hlog");
  expect_merge_refused({half, too_far}, false,
                       "far.hlog has intervals of 0.502 s, half.hlog of 0.500 s", "--interval");
}

TEST(HlogMerge, LogsApartInTimeNeedForce) {
  const IntervalLog early = read_text(log_text(kStart, run_lines(0, 2, 0.5)), "early.hlog");
  const IntervalLog late = read_text(log_text(kStart + 100, run_lines(1, 2, 0.5)), "late.hlog");
  expect_merge_refused({early, late}, false, "the logs did not run at the same time", "--force");
  expect_merge_refused({early}, false, "merge needs at least two inputs", "");
  const IntervalLog merged = merge_interval_logs({early, late}, true);
  ASSERT_EQ(merged.intervals.size(), 12u);
  EXPECT_DOUBLE_EQ(merged.start_unix_s, kStart);
  EXPECT_NEAR(merged.intervals[6].start_unix_s, kStart + 100, 1e-6);
  expect_same_counts(merged.intervals[11].histogram, sample("send_lag", 1, 1));
}

// A histogram of `layout` holding one value.
Histogram holding(Histogram layout, std::int64_t value) {
  layout.record(value);
  return layout;
}

// A log whose one interval line, `histogram` under `tag`, must be refused naming that line.
void expect_line_refused(const std::string& tag, const Histogram& histogram,
                         const std::string& needle) {
  const std::string text = log_text(kStart, {{tag, 0, 1, histogram}});
  expect_refused([&] { read_text(text, "x.hlog"); }, "x.hlog line 6: ", needle);
}

TEST(HlogMerge, OtherLayoutsAreRefusedNamingTheLine) {
  expect_line_refused("corrected", holding(make_latency_histogram(), 5'000),
                      "layout (lowest discernible value 1, highest trackable value 60000000000, "
                      "3 significant digits) is not echolab's for tag corrected (lowest "
                      "discernible value 4, highest trackable value 60000000000, 2 significant "
                      "digits)");
  const Histogram latency = holding(make_interval_histogram(), 5'000);
  expect_line_refused("send_lag", latency, "not echolab's for tag send_lag");
  expect_line_refused("", holding(Histogram(1, 3'600'000'000'000, 2), 5'000),
                      "not echolab's for untagged intervals");
  // echolab's layout from 512 ns (same unit of 4 ns): a count under echolab's 1 µs.
  expect_line_refused("corrected", holding(Histogram(512, 60'000'000'000, 2), 600),
                      "counts outside echolab's range 1000 .. 60000000000");
  // Either interval layout is fine untagged or under a tag of its own.
  const std::string mine = log_text(kStart, {{"mine", 0, 1, latency}});
  EXPECT_EQ(read_text(mine, "e.hlog").intervals[0].histogram.count(), 1u);
}

// zlib-wrapped deflate of `plain` with the V2 compressed header, as encode_compressed does.
std::string compressed(const std::string& plain) {
  uLongf size = compressBound(static_cast<uLong>(plain.size()));
  std::string deflated(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(deflated.data()), &size,
                      reinterpret_cast<const Bytef*>(plain.data()),
                      static_cast<uLong>(plain.size()), Z_DEFAULT_COMPRESSION),
            Z_OK);
  deflated.resize(size);
  std::string out = {'\x1c', '\x84', '\x93', '\x14'};
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(size >> shift));
  return out + deflated;
}

TEST(HlogMerge, DamagedLinesAreOneLineNamingFileAndLine) {
  const Histogram h = sample("corrected", 0, 0);
  const std::string good = encode_compressed(h);
  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5a);
  // Six bytes short, the length field saying so: the zlib stream itself ends early.
  std::string cut = good.substr(0, good.size() - 6);
  const std::size_t cut_length = cut.size() - 8;
  for (int b = 0; b < 4; ++b) cut[4 + b] = static_cast<char>(cut_length >> (8 * (3 - b)));
  // A run of 2^40 zeros: must be refused, not allocated.
  std::string bomb = encode_v2(make_interval_histogram()).substr(0, 40);
  std::string run;
  put_zigzag(run, -(std::int64_t{1} << 40));
  bomb[7] = static_cast<char>(run.size());
  bomb += run;

  const std::string prefix = "Tag=corrected,0.000,1.000,1.000,";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {prefix + "HIST*AAA", "base64: a character outside the alphabet"},
      {prefix + "HISTFAA", "base64: length not a multiple of 4"},
      {prefix + base64_encode("not a histogram at all"), "not a V2 compressed integer histogram"},
      {prefix + base64_encode(flipped), "zlib inflate: "},
      {prefix + base64_encode(cut), "zlib inflate: the compressed data ends early"},
      {prefix + base64_encode(compressed(bomb)), "more than"},
      {"Tag=corrected,0.000,1.000," + base64_encode(good), "expected [Tag=TAG,]start,length"},
      {"Tag=corrected,soon,1.000,1.000," + base64_encode(good), "the start is not a number"},
      {"Tag=corrected,0.000,0,1.000," + base64_encode(good), "the length is 0"},
      {"Tag=corrected,0.000,1e300,1.000," + base64_encode(good), "out of range"},
      {"Tag=,0.000,1.000,1.000," + base64_encode(good), "an empty Tag="},
      {"#[StartTime: soon]", "StartTime is not a number"},
  };
  for (const auto& [line, needle] : cases) {
    SCOPED_TRACE(line.substr(0, 60));
    const std::string text = log_text(kStart, {{"corrected", 0, 1, h}}) + line + "\n";
    expect_refused([&] { read_text(text, "bad.hlog"); }, "bad.hlog line 7: ", needle);
  }
  std::ostringstream header_only;
  write_hlog_header(header_only, kStart, "x");
  expect_refused([&] { read_text(header_only.str(), "empty.hlog"); },
                 "empty.hlog holds no interval histograms", "");
}

// The texts' merge (what the merge command and echolab-loadgen-mpi's rank 0 call) is the
// logs' merge, and a text that is no log is refused naming it.
TEST(HlogMerge, TextsMergeAsTheLogsTheyHold) {
  const std::string a_text = log_text(kStart, run_lines(0, 3, 0.5));
  const std::string b_text = log_text(kStart + 0.1, run_lines(1, 3, 0.5));
  const IntervalLog expected =
      merge_interval_logs({read_text(a_text, "a"), read_text(b_text, "b")}, false);
  const IntervalLog merged = merge_log_texts({{"rank 0", a_text}, {"rank 1", b_text}}, false);
  EXPECT_EQ(hlog_text(merged), hlog_text(expected));
  for (const std::string& tag : kTags) {
    SCOPED_TRACE(tag);
    Histogram sum = layout_for(tag);
    for (int interval = 0; interval < 3; ++interval) sum.merge(both_logs(tag, interval));
    expect_same_counts(*tag_total(merged, tag), sum);
  }
  const std::vector<LogText> damaged = {{"rank 0", a_text}, {"rank 1", "{}"}};
  expect_refused([&] { static_cast<void>(merge_log_texts(damaged, false)); },
                 "merge: rank 1 line 1: ", "expected [Tag=TAG,]start");
}

}  // namespace
}  // namespace echolab
