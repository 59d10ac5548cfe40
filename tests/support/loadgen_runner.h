#pragma once
// echolab-loadgen as a real process in tests: run to completion, or started in the
// background while the test does something else to the server, and one outcome either way.
// Every wait has a deadline; a process started here is killed and reaped by its owner.
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

// Longer than any run a test asks for (whose own hard limit is a few seconds).
inline constexpr milliseconds kLoadgenDeadline{60'000};

struct LoadgenOutcome {
  ExitStatus status;
  std::string out;
  std::string err;
  // The --json result, null if none was written. The load generator exits non-zero for an
  // invalid run (its own CPU, send lag): the JSON still holds what was measured.
  nlohmann::json json;

  // For failure messages: the exit status, stderr and stdout.
  [[nodiscard]] std::string describe() const;
};

// echolab-loadgen started in the background, `[prefix...] echolab-loadgen args...` (prefix:
// `ip netns exec NS`, say). Unless args already hold --json, a --json file in `dir` is added
// and read back by finish(). `options`: resource limits for the child, say.
class LoadgenRun {
 public:
  LoadgenRun(const TempDir& dir, std::vector<std::string> args, const SpawnOptions& options = {},
             std::vector<std::string> prefix = {});

  // Waits for the exit and reads the result; throws std::runtime_error if the process
  // outlives `deadline`, or its result is not JSON.
  [[nodiscard]] LoadgenOutcome finish(milliseconds deadline = kLoadgenDeadline);
  // SIGSTOP and SIGCONT, say: a generator that stalls. False once it has been reaped.
  bool send_signal(int signal) { return process_.send_signal(signal); }

 private:
  std::string json_path_;
  Process process_;
};

// LoadgenRun(...).finish(deadline): a run to completion.
[[nodiscard]] LoadgenOutcome run_loadgen(const TempDir& dir, std::vector<std::string> args,
                                         milliseconds deadline = kLoadgenDeadline,
                                         const SpawnOptions& options = {},
                                         std::vector<std::string> prefix = {});

// A short run: 0.1 s warm-up, `duration` measured, a 1 s timeout, no summary, no status line.
[[nodiscard]] std::vector<std::string> quick_flags(const std::string& duration = "0.3s");

// Figures of a result, 0 when absent: result[section][key] as a count, and a corrected
// latency figure in µs ("p50_us", "max_us").
[[nodiscard]] std::uint64_t loadgen_count(const nlohmann::json& result, std::string_view section,
                                          std::string_view key);
[[nodiscard]] double loadgen_latency_us(const nlohmann::json& result, std::string_view key);

}  // namespace echolab::test
