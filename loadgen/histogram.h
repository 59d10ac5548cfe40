#pragma once
// Latency histogram of the load generator: an HdrHistogram-style log-linear histogram.
//
// Layout (same scheme as HdrHistogram). Values are split into "buckets" that each cover a
// power-of-two range; every bucket is divided into `sub_bucket_count()/2` equal-width
// sub-buckets (the first bucket into `sub_bucket_count()`), so the bucket width grows with the
// value and the *relative* resolution stays constant. With `significant_digits = d`,
// sub_bucket_count = 2^ceil(log2(2 * 10^d)) (2048 for d = 3), i.e. half_count = 1024 >= 10^d
// sub-buckets per doubling. All counts live in one flat array sized at construction, so
// record() is a couple of shifts, a count-leading-zeros and an add — it never allocates.
//
// Difference from HdrHistogram: here `lowest` is the lowest *trackable* value (smaller values
// are counted in below_range()), not the resolution unit. The unit (the width of the finest
// sub-bucket) is chosen as the largest power of two 2^u with 2^u <= lowest / half_count (or 1
// if lowest < half_count), so the relative guarantee below also holds right at `lowest` (for
// the default lowest = 1 µs in ns the unit is 1 ns: values below 2048 ns are exact).
//
// Precision guarantee (exact): every in-range value v (lowest <= v <= highest) falls in a
// bucket [lo, hi] that is either 1 wide (the value is exact) or at most v / half_count wide;
// either way hi - lo < v / half_count = v * 2^-10 < v * 10^-3 for d = 3 (in general
// hi - lo < v / half_count <= v * 10^-d). Consequently:
//  * value_at_percentile(p), p > 0, returns r with x <= r <= x + (hi - lo) < x * (1 + 10^-d),
//    where x is the exact sample at rank max(1, ceil(p/100 * count())) in sorted order;
//  * value_at_percentile(0) returns the lowest-equivalent value of min():
//    min() * (1 - 10^-d) < r <= min() (HdrHistogram semantics); min()/max() are exact;
//  * mean() is computed from bucket mid-points (as HdrHistogram): |error| <= mean_exact / (2 *
//    half_count); |stddev() - stddev_exact| <= sqrt(mean of v^2) / (2 * half_count).
// Percentile results may exceed highest() by less than one bucket width (highest-equivalent).
//
// Coordinated omission: this class just records what it is given. A closed-loop client that
// measures from the *actual* send time hides server stalls (it stops sending while stalled, so
// the stall is recorded once instead of for every request that should have been sent). The
// echolab load generator avoids that by sending on a fixed schedule and recording
// `completion_time - intended_send_time`; do not "correct" the data again here.
//
// Thread safety: none (plain counters, no atomics, to keep record() at a few ns). Use one
// Histogram per thread/connection and merge() them after the run; merging is exact.
// Copyable and movable (a copy allocates the counts array, ~216 KiB for the default layout);
// a moved-from Histogram may only be assigned to or destroyed.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace echolab {

class Histogram {
 public:
  // Values are integers in a caller-chosen unit (the load generator uses nanoseconds):
  // default range 1 µs .. 60 s in ns, 3 significant digits.
  // Throws std::invalid_argument unless 1 <= lowest, 2 * lowest <= highest and
  // 0 <= significant_digits <= 5.
  explicit Histogram(std::int64_t lowest = 1'000, std::int64_t highest = 60'000'000'000,
                     int significant_digits = 3);

  // O(1), never allocates. Values outside [lowest, highest] are counted in below_range() /
  // above_range() — not dropped silently, but not part of count(), min/max or percentiles.
  void record(std::int64_t value) noexcept { record_n(value, 1); }
  // Records `value` n times (n == 0 is a no-op).
  void record_n(std::int64_t value, std::uint64_t n) noexcept;

  // Exact (bucket-wise sum). Throws std::invalid_argument if lowest/highest/digits differ.
  void merge(const Histogram& other);
  // Clears all counts; keeps the layout and the storage (no allocation).
  void reset() noexcept;

  std::uint64_t count() const noexcept { return total_; }  // recorded in range
  std::uint64_t below_range() const noexcept { return below_; }
  std::uint64_t above_range() const noexcept { return above_; }
  bool empty() const noexcept { return total_ == 0; }
  // Exact min/max of the in-range values (0 when empty).
  std::int64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  std::int64_t max() const noexcept { return total_ == 0 ? 0 : max_; }
  double mean() const noexcept;    // from bucket mid-points, see the guarantee above; 0 if empty
  double stddev() const noexcept;  // population std deviation, from bucket mid-points

  // percentile in [0,100] (clamped). HdrHistogram semantics: the highest-equivalent value of
  // the bucket holding the value of rank max(1, ceil(p/100 * count())); for p == 0 the
  // lowest-equivalent value of that bucket. 0 if empty. O(number of buckets) (~27k for the
  // default layout): call it when reporting, not per request.
  std::int64_t value_at_percentile(double percentile) const noexcept;

  std::int64_t lowest() const noexcept { return lowest_; }
  std::int64_t highest() const noexcept { return highest_; }
  int significant_digits() const noexcept { return digits_; }

  // Compact, lossless JSON:
  //   {"format":"echolab.histogram","version":1,"lowest":..,"highest":..,
  //    "significant_digits":..,"count":..,"below_range":..,"above_range":..,"min":..,"max":..,
  //    "runs":[[first_index,c0,c1,...],...]}
  // `runs` are run-length-encoded stretches of the counts array (only short zero gaps are kept
  // inside a run); indices refer to the layout given by lowest/highest/significant_digits.
  nlohmann::json to_json() const;
  // Inverse of to_json(). Throws std::invalid_argument with a message naming the bad field on
  // malformed or inconsistent input (bad layout, index out of range, overlapping runs, count or
  // min/max not matching the buckets, ...).
  static Histogram from_json(const nlohmann::json& j);

  // HdrHistogram's .hgrm percentile-distribution text format, formatted exactly like
  // HdrHistogram's outputPercentileDistribution(out, 5, value_scale) (same widths, precision =
  // significant_digits, same tick rule; the values are this histogram's buckets): header line
  // "       Value     Percentile TotalCount 1/(1-Percentile)", one row per percentile tick
  // (ticks_per_half_distance = 5), the final "1.000000000000" row, and the
  // "#[Mean = ..]", "#[Max = ..]", "#[Buckets = ..]" footer. Values (including Mean,
  // StdDeviation, Max) are divided by value_scale (1000.0: ns -> µs). As in HdrHistogram, the
  // row values and the footer Max are highest-equivalent values; Total count is count().
  // Locale-independent ('.' decimal point). Throws std::invalid_argument if value_scale <= 0.
  void write_hgrm(std::ostream& out, double value_scale = 1000.0) const;

  // For plots: (percentile in [0,100], value) at the same ticks as write_hgrm (the hgrm file
  // prints percentile/100). Empty if the histogram is empty. Throws std::invalid_argument if
  // ticks_per_half_distance < 1.
  std::vector<std::pair<double, std::int64_t>> percentile_spectrum(
      int ticks_per_half_distance = 5) const;

  // --- Layout introspection (tests, tools). ---
  int bucket_count() const noexcept { return bucket_count_; }
  int sub_bucket_count() const noexcept { return sub_bucket_count_; }
  std::size_t counts_size() const noexcept { return counts_.size(); }
  std::uint64_t count_at_index(std::size_t index) const noexcept { return counts_[index]; }
  // The lowest value that lands at `index` (< counts_size()): what to record to put counts
  // read from elsewhere (an HdrHistogram log) back at the same index.
  std::int64_t value_at_index(std::size_t index) const noexcept { return value_from_index(index); }
  // Equivalence range of `value` (any non-negative value, also out of [lowest, highest]).
  std::int64_t lowest_equivalent_value(std::int64_t value) const noexcept;
  std::int64_t highest_equivalent_value(std::int64_t value) const noexcept;
  bool same_layout(const Histogram& other) const noexcept;
  // Same layout, counts, below/above and min/max.
  friend bool operator==(const Histogram& a, const Histogram& b) noexcept;

 private:
  struct Row {  // one line of the percentile iteration (shared by hgrm and spectrum)
    std::int64_t value;
    double percentile;  // 0..100
    std::uint64_t total_count;
  };
  std::vector<Row> percentile_rows(int ticks_per_half_distance) const;

  std::size_t index_of(std::int64_t value) const noexcept;
  std::int64_t value_from_index(std::size_t index) const noexcept;
  std::int64_t bucket_width_at_index(std::size_t index) const noexcept;

  std::int64_t lowest_;
  std::int64_t highest_;
  int digits_;
  int unit_magnitude_;             // log2 of the finest sub-bucket width
  int sub_bucket_half_magnitude_;  // log2(sub_bucket_count_ / 2)
  int sub_bucket_count_;
  int bucket_count_;
  int leading_zero_base_;          // 64 - unit_magnitude_ - log2(sub_bucket_count_)
  std::uint64_t sub_bucket_mask_;  // (sub_bucket_count_ - 1) << unit_magnitude_

  std::vector<std::uint64_t> counts_;  // sized once in the constructor; never resized
  std::uint64_t total_ = 0;
  std::uint64_t below_ = 0;
  std::uint64_t above_ = 0;
  std::int64_t min_ = std::numeric_limits<std::int64_t>::max();  // valid only when total_ > 0
  std::int64_t max_ = 0;
};

// --- Hot path, inline so the load generator's per-response record() is a few instructions. ---

inline std::size_t Histogram::index_of(std::int64_t value) const noexcept {
  const auto v = static_cast<std::uint64_t>(value);
  // Bucket = how many doublings above the first bucket; OR-ing the mask pins small values
  // into bucket 0 without a branch.
  const int bucket = leading_zero_base_ - std::countl_zero(v | sub_bucket_mask_);
  const auto sub_bucket = static_cast<std::int64_t>(v >> (bucket + unit_magnitude_));
  // Buckets > 0 only use their upper half of sub-buckets (the lower half overlaps the
  // previous bucket), hence the half-count offset.
  return static_cast<std::size_t>(
      (static_cast<std::int64_t>(bucket + 1) << sub_bucket_half_magnitude_) + sub_bucket -
      (std::int64_t{1} << sub_bucket_half_magnitude_));
}

inline void Histogram::record_n(std::int64_t value, std::uint64_t n) noexcept {
  if (value < lowest_) {
    below_ += n;
    return;
  }
  if (value > highest_) {
    above_ += n;
    return;
  }
  if (n == 0) return;
  counts_[index_of(value)] += n;
  total_ += n;
  if (value < min_) min_ = value;
  if (value > max_) max_ = value;
}

}  // namespace echolab
