#include "loadgen/histogram.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace echolab {

namespace {

constexpr int kMaxSignificantDigits = 5;  // beyond that the counts array gets unreasonably big
constexpr std::string_view kJsonFormat = "echolab.histogram";
constexpr int kJsonVersion = 1;
// A zero costs two characters ("0,") inside a run, a new run about nine ("],[12345,"), so
// short zero gaps are cheaper to keep inside a run.
constexpr std::size_t kMaxZeroGapInRun = 3;

int floor_log2(std::uint64_t v) { return 63 - std::countl_zero(v); }
int ceil_log2(std::uint64_t v) { return v <= 1 ? 0 : 64 - std::countl_zero(v - 1); }

// Locale-independent fixed-point formatting, right-aligned in `width` like printf("%*.*f"):
// the .hgrm must use '.' whatever locale the embedding program has set.
std::string fixed(double v, int precision, int width) {
  std::array<char, 128> buf{};
  auto [end, ec] =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, precision);
  std::string s = ec == std::errc{} ? std::string(buf.data(), end) : std::string("inf");
  if (static_cast<int>(s.size()) < width)
    s.insert(0, static_cast<std::size_t>(width) - s.size(), ' ');
  return s;
}

std::string right(std::uint64_t v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width)
    s.insert(0, static_cast<std::size_t>(width) - s.size(), ' ');
  return s;
}

[[noreturn]] void bad_json(const std::string& what) {
  throw std::invalid_argument("Histogram::from_json: " + what);
}

const nlohmann::json& field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) bad_json(std::string("missing field \"") + key + "\"");
  return *it;
}

std::uint64_t as_u64(const nlohmann::json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  bad_json(what + " must be a non-negative integer, got " + v.dump());
}

std::int64_t as_i64(const nlohmann::json& v, const std::string& what) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      bad_json(what + " is out of the int64 range: " + v.dump());
    }
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  bad_json(what + " must be an integer, got " + v.dump());
}

std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, const char* what) {
  if (b > std::numeric_limits<std::uint64_t>::max() - a) {
    bad_json(std::string(what) + " overflows 64 bits");
  }
  return a + b;
}

}  // namespace

Histogram::Histogram(std::int64_t lowest, std::int64_t highest, int significant_digits)
    : lowest_(lowest), highest_(highest), digits_(significant_digits) {
  if (lowest < 1) {
    throw std::invalid_argument("Histogram: lowest must be >= 1, got " + std::to_string(lowest));
  }
  if (highest / 2 < lowest) {
    throw std::invalid_argument("Histogram: highest must be >= 2 * lowest, got lowest=" +
                                std::to_string(lowest) + " highest=" + std::to_string(highest));
  }
  if (significant_digits < 0 || significant_digits > kMaxSignificantDigits) {
    throw std::invalid_argument("Histogram: significant_digits must be in [0, 5], got " +
                                std::to_string(significant_digits));
  }
  // Enough sub-buckets that one unit of resolution is 10^-d of the smallest value in any
  // bucket but the first: 2 * 10^d sub-buckets, rounded up to a power of two.
  std::uint64_t single_unit_range = 2;
  for (int i = 0; i < significant_digits; ++i) single_unit_range *= 10;
  const int sub_bucket_count_magnitude = ceil_log2(single_unit_range);
  sub_bucket_half_magnitude_ = sub_bucket_count_magnitude - 1;
  sub_bucket_count_ = 1 << sub_bucket_count_magnitude;
  // Largest unit keeping 2^u <= lowest / half_count, so even the first (linear) bucket meets
  // the relative precision for every value >= lowest. Saves the buckets below it.
  unit_magnitude_ =
      std::max(0, floor_log2(static_cast<std::uint64_t>(lowest)) - sub_bucket_half_magnitude_);
  leading_zero_base_ = 64 - unit_magnitude_ - sub_bucket_count_magnitude;
  sub_bucket_mask_ = (static_cast<std::uint64_t>(sub_bucket_count_) - 1) << unit_magnitude_;

  // Buckets needed so that `highest` has an index: each bucket doubles the covered range.
  std::uint64_t smallest_untrackable = static_cast<std::uint64_t>(sub_bucket_count_)
                                       << unit_magnitude_;
  int buckets = 1;
  while (smallest_untrackable <= static_cast<std::uint64_t>(highest)) {
    smallest_untrackable <<= 1;
    ++buckets;
  }
  bucket_count_ = buckets;
  counts_.assign(
      static_cast<std::size_t>(bucket_count_ + 1) * static_cast<std::size_t>(sub_bucket_count_ / 2),
      0);
}

std::int64_t Histogram::value_from_index(std::size_t index) const noexcept {
  const auto half_count = static_cast<std::int64_t>(sub_bucket_count_ / 2);
  auto bucket = static_cast<int>(index >> sub_bucket_half_magnitude_) - 1;
  auto sub_bucket =
      static_cast<std::int64_t>(index & static_cast<std::size_t>(half_count - 1)) + half_count;
  if (bucket < 0) {  // the first bucket uses all its sub-buckets, from 0
    sub_bucket -= half_count;
    bucket = 0;
  }
  return sub_bucket << (bucket + unit_magnitude_);
}

std::int64_t Histogram::bucket_width_at_index(std::size_t index) const noexcept {
  const int bucket = std::max(0, static_cast<int>(index >> sub_bucket_half_magnitude_) - 1);
  return std::int64_t{1} << (bucket + unit_magnitude_);
}

std::int64_t Histogram::lowest_equivalent_value(std::int64_t value) const noexcept {
  return value_from_index(index_of(std::max<std::int64_t>(value, 0)));
}

std::int64_t Histogram::highest_equivalent_value(std::int64_t value) const noexcept {
  const std::size_t index = index_of(std::max<std::int64_t>(value, 0));
  // width - 1 first: lowest + width may be 2^63 for the topmost bucket.
  return value_from_index(index) + (bucket_width_at_index(index) - 1);
}

bool Histogram::same_layout(const Histogram& other) const noexcept {
  return lowest_ == other.lowest_ && highest_ == other.highest_ && digits_ == other.digits_;
}

bool operator==(const Histogram& a, const Histogram& b) noexcept {
  return a.same_layout(b) && a.total_ == b.total_ && a.below_ == b.below_ && a.above_ == b.above_ &&
         a.min() == b.min() && a.max() == b.max() && a.counts_ == b.counts_;
}

void Histogram::merge(const Histogram& other) {
  if (!same_layout(other)) {
    throw std::invalid_argument(
        "Histogram::merge: layouts differ (lowest/highest/significant_digits " +
        std::to_string(lowest_) + "/" + std::to_string(highest_) + "/" + std::to_string(digits_) +
        " vs " + std::to_string(other.lowest_) + "/" + std::to_string(other.highest_) + "/" +
        std::to_string(other.digits_) + ")");
  }
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  below_ += other.below_;
  above_ += other.above_;
  if (other.total_ > 0) {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  total_ += other.total_;
}

void Histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = below_ = above_ = 0;
  min_ = std::numeric_limits<std::int64_t>::max();
  max_ = 0;
}

double Histogram::mean() const noexcept {
  if (total_ == 0) return 0.0;
  double sum = 0.0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    const double mid = static_cast<double>(value_from_index(i) + bucket_width_at_index(i) / 2);
    sum += mid * static_cast<double>(counts_[i]);
  }
  return sum / static_cast<double>(total_);
}

double Histogram::stddev() const noexcept {
  if (total_ == 0) return 0.0;
  const double m = mean();
  double sum_sq = 0.0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    const double dev = static_cast<double>(value_from_index(i) + bucket_width_at_index(i) / 2) - m;
    sum_sq += dev * dev * static_cast<double>(counts_[i]);
  }
  return std::sqrt(sum_sq / static_cast<double>(total_));
}

std::int64_t Histogram::value_at_percentile(double percentile) const noexcept {
  if (total_ == 0) return 0;
  if (std::isnan(percentile)) percentile = 0.0;
  // Nudging down by one ulp keeps e.g. 99.9% of 1000 at rank 999 although 0.999 * 1000
  // evaluates to 999.0000000000001 (same trick as HdrHistogram).
  const double requested =
      std::clamp(std::nextafter(percentile, -std::numeric_limits<double>::infinity()), 0.0, 100.0);
  const double fp_rank = requested / 100.0 * static_cast<double>(total_);
  std::uint64_t rank = fp_rank >= static_cast<double>(total_)
                           ? total_
                           : static_cast<std::uint64_t>(std::ceil(fp_rank));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i];
    if (cumulative >= rank) {
      const std::int64_t low = value_from_index(i);
      return percentile <= 0.0 ? low : low + (bucket_width_at_index(i) - 1);
    }
  }
  return 0;  // unreachable while total_ matches the counts
}

std::vector<Histogram::Row> Histogram::percentile_rows(int ticks_per_half_distance) const {
  if (ticks_per_half_distance < 1) {
    throw std::invalid_argument("Histogram: ticks_per_half_distance must be >= 1, got " +
                                std::to_string(ticks_per_half_distance));
  }
  std::vector<Row> rows;
  if (total_ == 0) return rows;
  // HdrHistogram's percentile iteration: a fixed number of ticks in each half of the remaining
  // distance to 100% (0..50, 50..75, 75..87.5, ...), so the tail gets ever finer steps; one row
  // per tick level reached, at the highest-equivalent value of the bucket that reaches it.
  const auto next_level = [ticks_per_half_distance](double level) {
    if (!(level < 100.0)) return std::numeric_limits<double>::infinity();
    const double halvings = std::floor(std::log(100.0 / (100.0 - level)) / std::log(2.0)) + 1.0;
    const double ticks = static_cast<double>(ticks_per_half_distance) * std::exp2(halvings);
    return level + 100.0 / ticks;
  };
  double level = 0.0;
  std::uint64_t cumulative = 0;
  const auto total = static_cast<double>(total_);
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] == 0) continue;
    cumulative += counts_[i];
    const std::int64_t value = value_from_index(i) + (bucket_width_at_index(i) - 1);
    const double reached = 100.0 * static_cast<double>(cumulative) / total;
    if (cumulative == total_) {
      // Last bucket: one row for the pending tick, then the closing 100% row (exactly what
      // HdrHistogram prints, including the repeated value).
      if (reached >= level) rows.push_back({value, level, cumulative});
      rows.push_back({value, 100.0, cumulative});
      break;
    }
    while (reached >= level) {
      rows.push_back({value, level, cumulative});
      level = next_level(level);
    }
  }
  return rows;
}

std::vector<std::pair<double, std::int64_t>> Histogram::percentile_spectrum(
    int ticks_per_half_distance) const {
  std::vector<std::pair<double, std::int64_t>> out;
  for (const Row& row : percentile_rows(ticks_per_half_distance)) {
    out.emplace_back(row.percentile, row.value);
  }
  return out;
}

void Histogram::write_hgrm(std::ostream& out, double value_scale) const {
  if (!(value_scale > 0.0)) {
    throw std::invalid_argument("Histogram::write_hgrm: value_scale must be > 0");
  }
  constexpr int kTicksPerHalfDistance = 5;  // what every HdrHistogram tool prints by default
  const int precision = digits_;
  // Header: printf("%12s %14s %10s %14s\n\n", ...), as HdrHistogram.
  std::string text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n";
  for (const Row& row : percentile_rows(kTicksPerHalfDistance)) {
    const double fraction = row.percentile / 100.0;
    text += fixed(static_cast<double>(row.value) / value_scale, precision, 12);
    text += ' ';
    text += fixed(fraction, 12, 2);
    text += ' ';
    text += right(row.total_count, 10);
    if (row.percentile != 100.0) {  // the 100% row has no 1/(1-p) column (it would be inf)
      text += ' ';
      text += fixed(1.0 / (1.0 - fraction), 2, 14);
    }
    text += '\n';
  }
  const double max_value =
      total_ == 0 ? 0.0 : static_cast<double>(highest_equivalent_value(max_)) / value_scale;
  text += "#[Mean    = " + fixed(mean() / value_scale, precision, 12) +
          ", StdDeviation   = " + fixed(stddev() / value_scale, precision, 12) + "]\n";
  text += "#[Max     = " + fixed(max_value, precision, 12) +
          ", Total count    = " + right(total_, 12) + "]\n";
  text += "#[Buckets = " + right(static_cast<std::uint64_t>(bucket_count_), 12) +
          ", SubBuckets     = " + right(static_cast<std::uint64_t>(sub_bucket_count_), 12) + "]\n";
  out << text;
}

nlohmann::json Histogram::to_json() const {
  nlohmann::json runs = nlohmann::json::array();
  const std::size_t n = counts_.size();
  std::size_t i = 0;
  while (i < n) {
    if (counts_[i] == 0) {
      ++i;
      continue;
    }
    // Extend the run over zero gaps of at most kMaxZeroGapInRun, ending on a non-zero count.
    std::size_t last_nonzero = i;
    for (std::size_t j = i + 1; j < n && j - last_nonzero <= kMaxZeroGapInRun + 1; ++j) {
      if (counts_[j] != 0) last_nonzero = j;
    }
    nlohmann::json run = nlohmann::json::array();
    run.push_back(i);
    for (std::size_t j = i; j <= last_nonzero; ++j) run.push_back(counts_[j]);
    runs.push_back(std::move(run));
    i = last_nonzero + 1;
  }
  return nlohmann::json{
      {"format", kJsonFormat}, {"version", kJsonVersion},       {"lowest", lowest_},
      {"highest", highest_},   {"significant_digits", digits_}, {"count", total_},
      {"below_range", below_}, {"above_range", above_},         {"min", min()},
      {"max", max()},          {"runs", std::move(runs)}};
}

Histogram Histogram::from_json(const nlohmann::json& j) {
  if (!j.is_object()) bad_json("expected a JSON object, got " + std::string(j.type_name()));
  const auto& format = field(j, "format");
  if (!format.is_string() || format.get<std::string>() != kJsonFormat) {
    bad_json("\"format\" must be \"" + std::string(kJsonFormat) + "\", got " + format.dump());
  }
  if (as_i64(field(j, "version"), "\"version\"") != kJsonVersion) {
    bad_json("unsupported \"version\" " + field(j, "version").dump());
  }
  const std::int64_t lowest = as_i64(field(j, "lowest"), "\"lowest\"");
  const std::int64_t highest = as_i64(field(j, "highest"), "\"highest\"");
  const std::int64_t digits = as_i64(field(j, "significant_digits"), "\"significant_digits\"");
  if (digits < 0 || digits > kMaxSignificantDigits) {
    bad_json("\"significant_digits\" must be in [0, 5], got " + std::to_string(digits));
  }
  Histogram h = [&] {
    try {
      return Histogram(lowest, highest, static_cast<int>(digits));
    } catch (const std::invalid_argument& e) {
      bad_json(std::string("bad layout: ") + e.what());
    }
  }();

  const auto& runs = field(j, "runs");
  if (!runs.is_array()) bad_json("\"runs\" must be an array");
  const std::size_t n = h.counts_.size();
  std::size_t next_free = 0;  // runs must be ascending and non-overlapping
  std::uint64_t total = 0;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const auto& run = runs[r];
    const std::string where = "runs[" + std::to_string(r) + "]";
    if (!run.is_array() || run.size() < 2) {
      bad_json(where + " must be an array [first_index, count, ...]");
    }
    const std::uint64_t start = as_u64(run[0], where + " index");
    if (start < next_free || start >= n || run.size() - 1 > n - start) {
      bad_json(where + " covers indices out of range or overlapping a previous run (index " +
               std::to_string(start) + ", " + std::to_string(run.size() - 1) +
               " counts, array size " + std::to_string(n) + ")");
    }
    for (std::size_t k = 1; k < run.size(); ++k) {
      const std::uint64_t c = as_u64(run[k], where + " count");
      h.counts_[start + k - 1] = c;
      total = checked_add(total, c, "sum of counts");
    }
    next_free = start + run.size() - 1;
  }

  const std::uint64_t count = as_u64(field(j, "count"), "\"count\"");
  if (count != total) {
    bad_json("\"count\" " + std::to_string(count) + " does not match the sum of the runs " +
             std::to_string(total));
  }
  h.total_ = total;
  h.below_ = as_u64(field(j, "below_range"), "\"below_range\"");
  h.above_ = as_u64(field(j, "above_range"), "\"above_range\"");
  const std::int64_t min = as_i64(field(j, "min"), "\"min\"");
  const std::int64_t max = as_i64(field(j, "max"), "\"max\"");
  if (total == 0) {
    if (min != 0 || max != 0) bad_json("\"min\"/\"max\" must be 0 when there are no counts");
    return h;
  }
  // min/max are kept exactly, so they must fall in the first/last non-empty bucket.
  if (min < lowest || max > highest || min > max) {
    bad_json("\"min\"/\"max\" (" + std::to_string(min) + ", " + std::to_string(max) +
             ") outside [lowest, highest] or min > max");
  }
  std::size_t first = 0;
  while (h.counts_[first] == 0) ++first;
  std::size_t last = n - 1;
  while (h.counts_[last] == 0) --last;
  if (h.index_of(min) != first || h.index_of(max) != last) {
    bad_json("\"min\"/\"max\" (" + std::to_string(min) + ", " + std::to_string(max) +
             ") do not lie in the first/last non-empty bucket");
  }
  h.min_ = min;
  h.max_ = max;
  return h;
}

}  // namespace echolab
