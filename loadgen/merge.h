#pragma once
// Merging results of one load spread over several generators (processes or hosts) that
// ran the same configuration at the same time: counts and rates add, histograms merge
// bucket by bucket (exactly: never by averaging percentiles), and the merged result is
// valid only if every part was.
#include <string>
#include <vector>

#include "loadgen/result.h"

namespace echolab {

struct MergeInput {
  std::string name;  // where it came from (a file, a rank), for messages and the "sources" list
  RunResult result;
};

// One input or more: a single one comes back with its "sources" entry and its invalid
// reasons prefixed with its name, as in any merge. Throws UsageError (one line) when the
// inputs do not belong together: a configuration that differs (other than the generator's
// own threads, CPUs and seed), or measurement windows that do not overlap, unless
// allow_disjoint.
[[nodiscard]] RunResult merge_results(const std::vector<MergeInput>& inputs, bool allow_disjoint);

}  // namespace echolab
