// Micro-benchmarks of the latency histogram: record() sits on the load generator's per-response
// path, so its cost must stay negligible next to a syscall; merge/percentile run per report.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "loadgen/histogram.h"

namespace {

// Pre-generated latencies (log-normal around 100 µs, long tail), so the benchmark measures
// record() and not the random number generator. Power-of-two size: cheap wrap-around.
constexpr std::size_t kValueCount = 1 << 16;

const std::vector<std::int64_t>& latencies() {
  static const std::vector<std::int64_t> values = [] {
    std::mt19937_64 rng(42);
    std::lognormal_distribution<double> dist(std::log(100'000.0), 1.0);
    std::vector<std::int64_t> v(kValueCount);
    for (auto& x : v)
      x = std::clamp<std::int64_t>(static_cast<std::int64_t>(dist(rng)), 1'000, 60'000'000'000);
    return v;
  }();
  return values;
}

echolab::Histogram filled_histogram() {
  echolab::Histogram h;
  for (auto v : latencies()) h.record(v);
  return h;
}

void BM_Record(benchmark::State& state) {
  const auto& values = latencies();
  echolab::Histogram h;
  std::size_t i = 0;
  for (auto _ : state) {
    h.record(values[i]);
    i = (i + 1) & (kValueCount - 1);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

void BM_Merge(benchmark::State& state) {
  const echolab::Histogram source = filled_histogram();
  echolab::Histogram target;
  for (auto _ : state) {
    target.merge(source);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(target.count());
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(source.counts_size() * sizeof(std::uint64_t)));
}
BENCHMARK(BM_Merge);

// Argument: percentile * 1000 (50.0, 99.0, 99.9, 100.0).
void BM_ValueAtPercentile(benchmark::State& state) {
  const echolab::Histogram h = filled_histogram();
  const double percentile = static_cast<double>(state.range(0)) / 1000.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(h.value_at_percentile(percentile));
  }
}
BENCHMARK(BM_ValueAtPercentile)->Arg(50'000)->Arg(99'000)->Arg(99'900)->Arg(100'000);

}  // namespace

BENCHMARK_MAIN();
