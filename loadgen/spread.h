#pragma once
// One load spread over several generators that start together (echolab-loadgen-mpi runs one
// generator per MPI rank): how the total --connections, --rate and --messages are shared
// out, and how the generators' results become one. The merge is loadgen/merge.h's, exact:
// histogram counts add bucket by bucket, never percentiles averaged. No MPI in here, so
// that all of it is tested without it.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/config.h"
#include "loadgen/result.h"

namespace echolab {

// Part `index` of `total` split into `parts` as evenly as whole numbers go, the remainder
// to the lowest indexes: 10 into 4 is 3, 3, 2, 2.
[[nodiscard]] constexpr std::uint64_t even_share(std::uint64_t total, std::uint64_t index, std::uint64_t parts) {
  return total / parts + (index < total % parts ? 1 : 0);
}

// The configuration generator `rank` of `ranks` runs: its even share of the connections and
// of --messages; the rate follows the connections, so that every connection paces the same
// msgs/s, as the threads of one generator do. Throws UsageError (one line) when a generator
// would get no connection or no message, fewer connections than --threads, or a rate below
// what the pacer can schedule.
[[nodiscard]] LoadConfig generator_share(const LoadConfig& total, int rank, int ranks);

// "10 connections, 1000 msgs/s over 4 generators: ranks 0-1 3 connections, 300 msgs/s
// each; ranks 2-3 2 connections, 200 msgs/s each". Throws as generator_share.
[[nodiscard]] std::string describe_shares(const LoadConfig& total, int ranks);

struct GeneratorResult {
  int rank = 0;
  std::string host;
  // The generator's own run (its start_late_s set), with `config` the whole load's as this
  // generator parsed it: the merge then refuses generators started with other options.
  RunResult result;
};

// The results of all `parts.size()` generators as one: merge_results(), plus "generators":
// the split, each generator's rate, latency, errors, CPU and start lateness, and the start
// skew (the latest generator's lateness). A skew past max_start_skew, like any generator's
// own invalid run, makes the whole invalid with the reason. Throws UsageError when the parts
// do not belong together (loadgen/merge.h), std::invalid_argument when one lacks its
// start lateness or the ranks are not 0..n-1.
[[nodiscard]] RunResult merge_generators(std::vector<GeneratorResult> parts, const LoadConfig& total,
                                         std::chrono::nanoseconds max_start_skew);

}  // namespace echolab
