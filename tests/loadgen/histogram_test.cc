// Unit tests of the load generator's latency histogram. No sockets, no timing assertions:
// everything is checked against exact statistics of the same (seeded) random samples.
#include "loadgen/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// --- Allocation counting: replaces the global operator new for this test binary so the
// "record never allocates" property is checked directly rather than assumed. ---
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
void* counted_alloc(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace echolab {
namespace {

constexpr std::int64_t kLowest = 1'000;            // 1 µs in ns
constexpr std::int64_t kHighest = 60'000'000'000;  // 60 s in ns
constexpr double kPercentiles[] = {0, 50, 90, 99, 99.9, 99.99, 100};
constexpr std::size_t kSamples = 100'000;  // p/100 * kSamples is an integer for every p above

using Samples = std::vector<std::int64_t>;

Samples uniform_samples(std::int64_t lo, std::int64_t hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> dist(lo, hi);
  Samples s(kSamples);
  for (auto& v : s) v = dist(rng);
  return s;
}

// Log-uniform over the whole default range: every bucket magnitude gets samples.
Samples log_uniform_samples(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(std::log(static_cast<double>(kLowest)),
                                              std::log(static_cast<double>(kHighest)));
  Samples s(kSamples);
  for (auto& v : s) {
    v = std::clamp(static_cast<std::int64_t>(std::exp(dist(rng))), kLowest, kHighest);
  }
  return s;
}

// Typical latency shape: log-normal around ~100 µs with a long tail.
Samples log_normal_samples(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> dist(std::log(100'000.0), 1.0);
  Samples s(kSamples);
  for (auto& v : s) {
    v = std::clamp(static_cast<std::int64_t>(dist(rng)), kLowest, kHighest);
  }
  return s;
}

// Bimodal: fast path at ~50 µs plus 1% "GC pauses" at ~20 ms.
Samples bimodal_samples(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> fast(50'000.0, 5'000.0);
  std::normal_distribution<double> slow(20'000'000.0, 2'000'000.0);
  std::bernoulli_distribution is_slow(0.01);
  Samples s(kSamples);
  for (auto& v : s) {
    const double x = is_slow(rng) ? slow(rng) : fast(rng);
    v = std::clamp(static_cast<std::int64_t>(x), kLowest, kHighest);
  }
  return s;
}

Histogram histogram_of(const Samples& samples) {
  Histogram h;
  for (auto v : samples) h.record(v);
  return h;
}

// The exact p-th value: rank max(1, ceil(p/100 * n)) in sorted order (kSamples is chosen so
// the product is an integer: no floating-point rank ambiguity in the reference).
std::int64_t exact_percentile(const Samples& sorted, double p) {
  const double rank_fp = p / 100.0 * static_cast<double>(sorted.size());
  const auto rank = static_cast<std::size_t>(std::llround(rank_fp));
  EXPECT_NEAR(rank_fp, static_cast<double>(rank), 1e-6) << "pick a sample count that divides";
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

void expect_percentiles_within_precision(const Samples& samples, const std::string& name) {
  const Histogram h = histogram_of(samples);
  Samples sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(h.count(), samples.size());
  EXPECT_EQ(h.min(), sorted.front()) << name;
  EXPECT_EQ(h.max(), sorted.back()) << name;
  for (double p : kPercentiles) {
    const std::int64_t exact = exact_percentile(sorted, p);
    const std::int64_t got = h.value_at_percentile(p);
    // The documented guarantee: within one bucket, and a bucket is at most 1/1000 of its values
    // wide. Above (highest-equivalent) for p > 0, below (lowest-equivalent) for p == 0.
    if (p == 0) {
      EXPECT_LE(got, exact) << name << " p=" << p;
      EXPECT_GE(got * 1000, exact * 999) << name << " p=" << p;
    } else {
      EXPECT_GE(got, exact) << name << " p=" << p;
      EXPECT_LE(got - exact, exact / 1000) << name << " p=" << p;
    }
  }
  EXPECT_EQ(h.value_at_percentile(100), h.highest_equivalent_value(h.max())) << name;
}

TEST(HistogramLayout, DefaultLayoutMatchesHdrHistogramSizes) {
  const Histogram h;
  EXPECT_EQ(h.lowest(), kLowest);
  EXPECT_EQ(h.highest(), kHighest);
  EXPECT_EQ(h.significant_digits(), 3);
  EXPECT_EQ(h.sub_bucket_count(), 2048);
  // Unit 1 ns (1000 / 1024 < 1), 2048 << 25 > 60e9 => 26 buckets, 27 half-buckets of counts.
  EXPECT_EQ(h.bucket_count(), 26);
  EXPECT_EQ(h.counts_size(), 27u * 1024u);
  EXPECT_EQ(Histogram(1, 1000, 1).sub_bucket_count(), 32);
  EXPECT_EQ(Histogram(1, 1000, 2).sub_bucket_count(), 256);
  EXPECT_EQ(Histogram(1, 1000, 4).sub_bucket_count(), 32768);
}

TEST(HistogramLayout, RejectsInvalidLayouts) {
  EXPECT_THROW(Histogram(0, 1000, 3), std::invalid_argument);
  EXPECT_THROW(Histogram(-1, 1000, 3), std::invalid_argument);
  EXPECT_THROW(Histogram(1000, 1999, 3), std::invalid_argument);
  EXPECT_THROW(Histogram(1, 1000, -1), std::invalid_argument);
  EXPECT_THROW(Histogram(1, 1000, 6), std::invalid_argument);
  EXPECT_NO_THROW(Histogram(1, std::numeric_limits<std::int64_t>::max(), 3));
}

// Walks every bucket of several layouts: buckets tile [lowest, highest] without gaps, and
// within each, highest - lowest equivalent value is below value / 10^digits for every value in
// it (the documented precision guarantee; 1-wide buckets are exact).
TEST(HistogramLayout, BucketsTileTheRangeWithRelativeWidthBound) {
  struct Layout {
    std::int64_t lowest, highest;
    int digits;
  };
  const Layout layouts[] = {{kLowest, kHighest, 3},
                            {1, 3'600'000'000, 3},
                            {1'000'000, kHighest, 3},
                            {1'000, kHighest, 2},
                            {1, 1'000'000, 1},
                            {7, 123'456'789, 4},
                            {1, std::numeric_limits<std::int64_t>::max(), 3}};
  for (const auto& l : layouts) {
    const Histogram h(l.lowest, l.highest, l.digits);
    const double limit = std::pow(10.0, -l.digits);
    std::int64_t v = l.lowest;
    std::int64_t previous_high = h.lowest_equivalent_value(v) - 1;
    while (true) {
      const std::int64_t lo = h.lowest_equivalent_value(v);
      const std::int64_t hi = h.highest_equivalent_value(v);
      ASSERT_EQ(lo, previous_high + 1) << "gap/overlap at " << v;
      ASSERT_LE(lo, v);
      ASSERT_GE(hi, v);
      const auto spread = static_cast<double>(hi - lo);
      ASSERT_LT(spread / static_cast<double>(std::max(lo, l.lowest)), limit)
          << "lowest=" << l.lowest << " digits=" << l.digits << " v=" << v;
      if (hi >= l.highest) break;
      previous_high = hi;
      v = hi + 1;
    }
    // The extremes are in range and land in the counts array.
    Histogram r(l.lowest, l.highest, l.digits);
    r.record(l.lowest);
    r.record(l.highest);
    EXPECT_EQ(r.count(), 2u);
    EXPECT_EQ(r.min(), l.lowest);
    EXPECT_EQ(r.max(), l.highest);
  }
}

TEST(HistogramPercentiles, UniformMicroseconds) {
  expect_percentiles_within_precision(uniform_samples(kLowest, 10'000'000, 1), "uniform 1us..10ms");
}
TEST(HistogramPercentiles, UniformWholeRange) {
  expect_percentiles_within_precision(uniform_samples(kLowest, kHighest, 2), "uniform 1us..60s");
}
TEST(HistogramPercentiles, LogUniformWholeRange) {
  expect_percentiles_within_precision(log_uniform_samples(3), "log-uniform 1us..60s");
}
TEST(HistogramPercentiles, LogNormal) {
  expect_percentiles_within_precision(log_normal_samples(4), "log-normal");
}
TEST(HistogramPercentiles, Bimodal) {
  expect_percentiles_within_precision(bimodal_samples(5), "bimodal");
}
TEST(HistogramPercentiles, SmallValuesAreExact) {
  // Below 2048 ns the default layout has 1 ns buckets: percentiles are exact.
  Histogram h;
  for (std::int64_t v = 1000; v < 2000; ++v) h.record(v);
  EXPECT_EQ(h.value_at_percentile(50), 1499);
  EXPECT_EQ(h.value_at_percentile(100), 1999);
  EXPECT_EQ(h.value_at_percentile(0), 1000);
}
TEST(HistogramPercentiles, EmptyAndClamped) {
  Histogram h;
  for (double p : kPercentiles) EXPECT_EQ(h.value_at_percentile(p), 0);
  h.record(5'000);
  EXPECT_EQ(h.value_at_percentile(-3), 5'000);
  EXPECT_EQ(h.value_at_percentile(250), h.highest_equivalent_value(5'000));  // clamped to 100
  EXPECT_EQ(h.value_at_percentile(std::nan("")), 5'000);
}

TEST(HistogramMerge, EqualsHistogramOfAllSamples) {
  Samples a = log_normal_samples(10);
  Samples b = log_uniform_samples(11);
  Histogram ha = histogram_of(a);
  const Histogram hb = histogram_of(b);
  ha.record(1);             // below range
  ha.record(kHighest + 1);  // above range
  Samples all = a;
  all.insert(all.end(), b.begin(), b.end());
  Histogram expected = histogram_of(all);
  expected.record(1);
  expected.record(kHighest + 1);

  ha.merge(hb);
  ASSERT_EQ(ha.counts_size(), expected.counts_size());
  for (std::size_t i = 0; i < ha.counts_size(); ++i) {
    ASSERT_EQ(ha.count_at_index(i), expected.count_at_index(i)) << "index " << i;
  }
  EXPECT_TRUE(ha == expected);
  EXPECT_EQ(ha.count(), all.size());
  EXPECT_EQ(ha.below_range(), 1u);
  EXPECT_EQ(ha.above_range(), 1u);
  EXPECT_EQ(ha.min(), expected.min());
  EXPECT_EQ(ha.max(), expected.max());
  for (double p : kPercentiles) {
    EXPECT_EQ(ha.value_at_percentile(p), expected.value_at_percentile(p)) << p;
  }
  EXPECT_EQ(ha.mean(), expected.mean());
}

TEST(HistogramMerge, WithEmptyKeepsMinMax) {
  Histogram h;
  h.record(5'000);
  h.record(7'000);
  Histogram empty;
  h.merge(empty);
  EXPECT_EQ(h.min(), 5'000);
  EXPECT_EQ(h.max(), 7'000);
  empty.merge(h);
  EXPECT_TRUE(empty == h);
}

TEST(HistogramMerge, DifferentLayoutsThrow) {
  Histogram h;
  EXPECT_THROW(h.merge(Histogram(kLowest + 1, kHighest, 3)), std::invalid_argument);
  EXPECT_THROW(h.merge(Histogram(kLowest, kHighest - 1, 3)), std::invalid_argument);
  EXPECT_THROW(h.merge(Histogram(kLowest, kHighest, 2)), std::invalid_argument);
  EXPECT_NO_THROW(h.merge(Histogram()));
}

TEST(HistogramRange, OutOfRangeIsCountedButNotInPercentiles) {
  Histogram h;
  h.record(kLowest - 1);
  h.record(0);
  h.record(-5);
  h.record(kHighest + 1);
  EXPECT_EQ(h.below_range(), 3u);
  EXPECT_EQ(h.above_range(), 1u);
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.value_at_percentile(100), 0);
  EXPECT_EQ(h.mean(), 0.0);

  h.record(kLowest);  // inclusive bounds
  h.record(kHighest);
  h.record(std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.above_range(), 2u);
  EXPECT_EQ(h.min(), kLowest);
  EXPECT_EQ(h.max(), kHighest);
  EXPECT_EQ(h.value_at_percentile(50), kLowest);
  EXPECT_EQ(h.value_at_percentile(100), h.highest_equivalent_value(kHighest));
}

TEST(HistogramRecord, RecordNEqualsRepeatedRecord) {
  Histogram a;
  Histogram b;
  a.record_n(123'456, 5);
  a.record_n(7'000'000, 1);
  a.record_n(500, 3);           // below
  a.record_n(kHighest * 2, 2);  // above
  a.record_n(9'999, 0);         // no-op: must not touch min/max
  for (int i = 0; i < 5; ++i) b.record(123'456);
  b.record(7'000'000);
  for (int i = 0; i < 3; ++i) b.record(500);
  for (int i = 0; i < 2; ++i) b.record(kHighest * 2);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.count(), 6u);
  EXPECT_EQ(a.below_range(), 3u);
  EXPECT_EQ(a.above_range(), 2u);
  EXPECT_EQ(a.min(), 123'456);
  EXPECT_EQ(a.value_at_percentile(50), a.highest_equivalent_value(123'456));
}

TEST(HistogramRecord, ResetClearsEverything) {
  Histogram h = histogram_of(log_normal_samples(20));
  h.record(1);
  h.record(kHighest + 1);
  const std::size_t size = h.counts_size();
  h.reset();
  EXPECT_TRUE(h == Histogram());
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.below_range(), 0u);
  EXPECT_EQ(h.above_range(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.counts_size(), size);
  h.record(2'000);  // usable after reset, min tracking restarted
  EXPECT_EQ(h.min(), 2'000);
  EXPECT_EQ(h.max(), 2'000);
}

TEST(HistogramStats, MeanAndStddevWithinPrecision) {
  for (const Samples& s : {log_normal_samples(30), log_uniform_samples(31), bimodal_samples(32),
                           uniform_samples(kLowest, kHighest, 33)}) {
    const Histogram h = histogram_of(s);
    long double sum = 0;
    long double sum_sq = 0;
    for (auto v : s) {
      sum += v;
      sum_sq += static_cast<long double>(v) * v;
    }
    const auto n = static_cast<long double>(s.size());
    const auto exact_mean = static_cast<double>(sum / n);
    const auto exact_rms = static_cast<double>(std::sqrt(sum_sq / n));
    double var = 0;
    for (auto v : s)
      var += (static_cast<double>(v) - exact_mean) * (static_cast<double>(v) - exact_mean);
    const double exact_sd = std::sqrt(var / static_cast<double>(s.size()));
    // Documented bounds: |mean error| <= mean / 2048, |stddev error| <= rms / 2048 (plus
    // floating-point rounding slack).
    EXPECT_NEAR(h.mean(), exact_mean, exact_mean / 2048 + 1e-6 * exact_mean);
    EXPECT_NEAR(h.stddev(), exact_sd, exact_rms / 2048 + 1e-6 * exact_rms);
    EXPECT_NEAR(h.mean(), exact_mean, exact_mean * 1e-3);
  }
  // A single small value is exact (1 ns buckets).
  Histogram one;
  one.record(1'500);
  EXPECT_EQ(one.mean(), 1'500.0);
  EXPECT_EQ(one.stddev(), 0.0);
}

TEST(HistogramJson, RoundTrip) {
  Histogram h = histogram_of(bimodal_samples(40));
  h.record(1);
  h.record_n(kHighest + 5, 7);
  const nlohmann::json j = h.to_json();
  const Histogram back = Histogram::from_json(j);
  EXPECT_TRUE(back == h);
  EXPECT_EQ(back.count(), h.count());
  EXPECT_EQ(back.below_range(), 1u);
  EXPECT_EQ(back.above_range(), 7u);
  for (double p : kPercentiles) EXPECT_EQ(back.value_at_percentile(p), h.value_at_percentile(p));
  // Through text too, as the result files store it.
  EXPECT_TRUE(Histogram::from_json(nlohmann::json::parse(j.dump())) == h);
  // Sparse: far smaller than the dense counts array (27648 counts).
  EXPECT_LT(j.dump().size(), 60'000u);
}

TEST(HistogramJson, RoundTripEmptyAndOtherLayout) {
  const Histogram empty;
  EXPECT_TRUE(Histogram::from_json(empty.to_json()) == empty);
  Histogram other(1, 1'000'000, 2);
  other.record(1);
  other.record(999'999);
  other.record(1'000'001);
  const Histogram back = Histogram::from_json(other.to_json());
  EXPECT_TRUE(back == other);
  EXPECT_EQ(back.lowest(), 1);
  EXPECT_EQ(back.highest(), 1'000'000);
  EXPECT_EQ(back.significant_digits(), 2);
}

TEST(HistogramJson, RejectsMalformedInput) {
  Histogram h;
  h.record(5'000);
  h.record(6'000);
  h.record(6'000);
  const nlohmann::json good = h.to_json();
  ASSERT_NO_THROW(Histogram::from_json(good));

  const auto expect_rejected = [](const nlohmann::json& j, const std::string& why) {
    try {
      Histogram::from_json(j);
      ADD_FAILURE() << "accepted: " << why << ": " << j.dump();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("Histogram::from_json"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception type for " << why << ": " << e.what();
    }
  };
  const auto with = [&good](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = good;
    j[key] = value;
    return j;
  };
  const auto without = [&good](const std::string& key) {
    nlohmann::json j = good;
    j.erase(key);
    return j;
  };

  expect_rejected(nlohmann::json::array(), "not an object");
  expect_rejected(nlohmann::json("histogram"), "a string");
  for (const char* key : {"format", "version", "lowest", "highest", "significant_digits", "count",
                          "below_range", "above_range", "min", "max", "runs"}) {
    expect_rejected(without(key), std::string("missing ") + key);
  }
  expect_rejected(with("format", "hdrhistogram"), "wrong format");
  expect_rejected(with("version", 2), "future version");
  expect_rejected(with("lowest", 0), "lowest 0");
  expect_rejected(with("lowest", "1000"), "lowest as string");
  expect_rejected(with("highest", 1'500), "highest < 2 lowest");
  expect_rejected(with("significant_digits", 9), "digits 9");
  expect_rejected(with("significant_digits", 2.5), "digits not integer");
  expect_rejected(with("count", 4), "count mismatch");
  expect_rejected(with("count", -3), "negative count");
  expect_rejected(with("below_range", -1), "negative below");
  expect_rejected(with("min", 4'000), "min not in first bucket");
  expect_rejected(with("max", 7'000), "max not in last bucket");
  expect_rejected(with("min", 7'000), "min > max");
  expect_rejected(with("runs", nlohmann::json::object()), "runs not an array");
  expect_rejected(with("runs", nlohmann::json::array({nlohmann::json::array({5})})),
                  "run w/o counts");
  expect_rejected(with("runs", nlohmann::json::array({42})), "run not an array");
  expect_rejected(with("runs", nlohmann::json::array({{27'647, 1, 1}})), "run past the end");
  expect_rejected(with("runs", nlohmann::json::array({{1'000'000, 1}})), "index out of range");
  expect_rejected(with("runs", nlohmann::json::array({{-1, 1}})), "negative index");
  expect_rejected(with("runs", nlohmann::json::array({{5'000, -1}})), "negative count in run");
  expect_rejected(with("runs", nlohmann::json::array({{5'000, 1.5}})), "fractional count");
  // Overlapping / descending runs.
  nlohmann::json runs = good["runs"];
  ASSERT_FALSE(runs.empty());
  runs.push_back(runs[0]);
  expect_rejected(with("runs", runs), "overlapping runs");
  // Counts that would overflow 64 bits when summed.
  expect_rejected(
      with("runs", nlohmann::json::array({{5'000, std::numeric_limits<std::uint64_t>::max(),
                                           std::numeric_limits<std::uint64_t>::max()}})),
      "count overflow");
  // Empty histogram with non-zero min.
  nlohmann::json e = Histogram().to_json();
  e["min"] = 5;
  expect_rejected(e, "empty with min");
}

// --- .hgrm output ---

struct HgrmRow {
  double value, percentile;
  std::uint64_t total;
  bool has_inverse;
};

struct Hgrm {
  std::vector<HgrmRow> rows;
  std::uint64_t footer_total = 0;
  double footer_max = 0, footer_mean = 0;
  int buckets = 0, sub_buckets = 0;
  std::string last_percentile_text;
};

Hgrm parse_hgrm(const std::string& text) {
  Hgrm out;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "       Value     Percentile TotalCount 1/(1-Percentile)");
  std::getline(in, line);
  EXPECT_EQ(line, "");
  while (std::getline(in, line)) {
    if (line.rfind("#[Mean", 0) == 0) {
      EXPECT_EQ(std::sscanf(line.c_str(), "#[Mean = %lf,", &out.footer_mean), 1) << line;
      continue;
    }
    if (line.rfind("#[Max", 0) == 0) {
      unsigned long long total = 0;
      EXPECT_EQ(
          std::sscanf(line.c_str(), "#[Max = %lf, Total count = %llu]", &out.footer_max, &total), 2)
          << line;
      out.footer_total = total;
      continue;
    }
    if (line.rfind("#[Buckets", 0) == 0) {
      EXPECT_EQ(std::sscanf(line.c_str(), "#[Buckets = %d, SubBuckets = %d]", &out.buckets,
                            &out.sub_buckets),
                2)
          << line;
      continue;
    }
    std::istringstream fields(line);
    HgrmRow row{};
    std::string percentile_text;
    fields >> row.value >> percentile_text >> row.total;
    EXPECT_FALSE(fields.fail()) << "unparsable row: " << line;
    row.percentile = std::stod(percentile_text);
    double inverse = 0;
    row.has_inverse = static_cast<bool>(fields >> inverse);
    out.last_percentile_text = percentile_text;
    out.rows.push_back(row);
  }
  return out;
}

TEST(HistogramHgrm, OutputParsesAndIsConsistent) {
  Histogram h = histogram_of(log_normal_samples(50));
  h.record(1);  // out of range: must not show up in the total
  std::ostringstream out;
  h.write_hgrm(out);
  const Hgrm parsed = parse_hgrm(out.str());
  ASSERT_GE(parsed.rows.size(), 10u);
  for (std::size_t i = 1; i < parsed.rows.size(); ++i) {
    EXPECT_GE(parsed.rows[i].percentile, parsed.rows[i - 1].percentile) << "row " << i;
    EXPECT_GE(parsed.rows[i].value, parsed.rows[i - 1].value) << "row " << i;
    EXPECT_GE(parsed.rows[i].total, parsed.rows[i - 1].total) << "row " << i;
    EXPECT_EQ(parsed.rows[i - 1].has_inverse, true) << "row " << i - 1;
  }
  EXPECT_EQ(parsed.last_percentile_text, "1.000000000000");
  EXPECT_EQ(parsed.rows.back().percentile, 1.0);
  EXPECT_FALSE(parsed.rows.back().has_inverse);
  EXPECT_EQ(parsed.rows.back().total, h.count());
  EXPECT_EQ(parsed.rows.front().percentile, 0.0);
  EXPECT_EQ(parsed.footer_total, h.count());
  EXPECT_NEAR(parsed.footer_max, static_cast<double>(h.highest_equivalent_value(h.max())) / 1000.0,
              1e-3);
  EXPECT_NEAR(parsed.footer_mean, h.mean() / 1000.0, 1e-3);
  EXPECT_EQ(parsed.buckets, h.bucket_count());
  EXPECT_EQ(parsed.sub_buckets, 2048);
  // Row values are µs (value_scale 1000) of highest-equivalent values.
  EXPECT_NEAR(parsed.rows.back().value, static_cast<double>(h.value_at_percentile(100)) / 1000.0,
              1e-3);
  // Same ticks as the spectrum.
  const auto spectrum = h.percentile_spectrum();
  ASSERT_EQ(spectrum.size(), parsed.rows.size());
  for (std::size_t i = 0; i < spectrum.size(); ++i) {
    EXPECT_NEAR(spectrum[i].first / 100.0, parsed.rows[i].percentile, 1e-12);
  }
}

TEST(HistogramHgrm, ExactTextForASmallHistogram) {
  // Expected text worked out by hand from HdrHistogram's rules: "%12.3f %2.12f %10d %14.2f"
  // rows at ticks 0, 10, .., 50, 55, .., 75, 77.5, ...; values are highest-equivalent (1 ns
  // buckets below 2048, 2 ns up to 4095, 4 ns up to 8191); mean/stddev from bucket mid-points
  // (1000, 2000, 3001, 5002).
  Histogram h;
  h.record(1'000);
  h.record(2'000);
  h.record(3'000);
  h.record(5'000);
  std::ostringstream out;
  h.write_hgrm(out);
  const std::string expected =
      "       Value     Percentile TotalCount 1/(1-Percentile)\n"
      "\n"
      "       1.000 0.000000000000          1           1.00\n"
      "       1.000 0.100000000000          1           1.11\n"
      "       1.000 0.200000000000          1           1.25\n"
      "       2.000 0.300000000000          2           1.43\n"
      "       2.000 0.400000000000          2           1.67\n"
      "       2.000 0.500000000000          2           2.00\n"
      "       3.001 0.550000000000          3           2.22\n"
      "       3.001 0.600000000000          3           2.50\n"
      "       3.001 0.650000000000          3           2.86\n"
      "       3.001 0.700000000000          3           3.33\n"
      "       3.001 0.750000000000          3           4.00\n"
      "       5.003 0.775000000000          4           4.44\n"
      "       5.003 1.000000000000          4\n"
      "#[Mean    =        2.751, StdDeviation   =        1.480]\n"
      "#[Max     =        5.003, Total count    =            4]\n"
      "#[Buckets =           26, SubBuckets     =         2048]\n";
  EXPECT_EQ(out.str(), expected);
}

TEST(HistogramHgrm, EmptyHistogramHasHeaderAndFooterOnly) {
  std::ostringstream out;
  Histogram().write_hgrm(out);
  const Hgrm parsed = parse_hgrm(out.str());
  EXPECT_TRUE(parsed.rows.empty());
  EXPECT_EQ(parsed.footer_total, 0u);
  EXPECT_TRUE(Histogram().percentile_spectrum().empty());
}

TEST(HistogramHgrm, SpectrumTicksHalveTowardsHundred) {
  Histogram h;
  for (std::int64_t v = 1'000; v < 1'000 + static_cast<std::int64_t>(kSamples); ++v) h.record(v);
  const auto s = h.percentile_spectrum(5);
  const double expected[] = {0,  10,   20, 30,   40, 50,   55,    60, 65,    70,
                             75, 77.5, 80, 82.5, 85, 87.5, 88.75, 90, 91.25, 92.5};
  ASSERT_GE(s.size(), std::size(expected));
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_NEAR(s[i].first, expected[i], 1e-9) << i;
  }
  EXPECT_EQ(s.back().first, 100.0);
  EXPECT_EQ(s.back().second, h.value_at_percentile(100));
  EXPECT_THROW(h.percentile_spectrum(0), std::invalid_argument);
}

TEST(HistogramAllocation, RecordNeverAllocates) {
  const Samples values = log_normal_samples(60);  // generated before counting starts
  Histogram h;
  Histogram other = histogram_of(values);
  g_allocations = 0;
  g_counting = true;
  for (auto v : values) h.record(v);  // 1e5 records
  for (auto v : values) h.record_n(v, 2);
  h.record(1);  // out of range paths too
  h.record(kHighest * 2);
  h.merge(other);
  const std::int64_t p99 = h.value_at_percentile(99);
  h.reset();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_GT(p99, 0);
  // Sanity check that the counter works at all.
  g_counting = true;
  auto* probe = new std::vector<int>(10);
  g_counting = false;
  delete probe;
  EXPECT_GE(g_allocations.load(), 1);
}

}  // namespace
}  // namespace echolab
