#pragma once
// What the part B robustness tests (slow clients, network namespaces) share: a server run
// whose end-of-run figures (exit, leftover processes, leaked descriptors, stats) are
// returned as numbers for the results JSON rather than only asserted, memory of the whole
// server tree (PSS, so a fork child's pages shared with its parent are not counted twice),
// echolab-loadgen runs, and the <case>.json writer of the results contract.
// Kept apart from part A's helpers on purpose: each part can change its own without
// breaking the other's build. The conventions (file names, keys) are the same.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/echo_server.h"
#include "tests/support/proc_fs.h"
#include "tests/support/process.h"
#include "tests/support/socket_client.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

using std::chrono::milliseconds;

// $ECHOLAB_SERVER_BIN / $ECHOLAB_LOADGEN_BIN if set (another preset's build), else this
// build's binaries.
[[nodiscard]] std::string partb_server_binary();
[[nodiscard]] std::string partb_loadgen_binary();

// How a server run ended, as figures: what results/robustness.json reports per case.
struct RunEnd {
  std::optional<ExitStatus> status;  // nullopt: no exit within the deadline (it was killed)
  nlohmann::json stats;              // the --stats-json file; null when unreadable
  int leftover_processes = 0;        // descendants still present after the exit
  int zombies = 0;                   // of those, never reaped (state Z)
  std::size_t children_seen = 0;     // descendants seen over the run (fork, prefork)
  std::string leftovers_described;
};

// echolab-server as a real process, with `prefix` (e.g. {"ip","netns","exec","ns"}) before
// the binary, its descendants tracked from the start, and its descriptor count recorded
// right after the ready line.
class ServerRun {
 public:
  ServerRun(std::string_view engine, std::vector<std::string> flags,
            std::string_view listen = "127.0.0.1:0", std::vector<std::string> prefix = {});

  [[nodiscard]] pid_t pid() const { return server_->pid(); }
  [[nodiscard]] SocketAddress address() const { return server_->address(); }
  [[nodiscard]] const ReadyLine& ready() const { return server_->ready(); }
  [[nodiscard]] std::string describe() { return server_->describe(); }

  // Descriptors the server holds over its start-up count once they settle (up to
  // `settle`): 0 unless a descriptor leaked. Call once every client is gone.
  [[nodiscard]] int leaked_fds(milliseconds settle = milliseconds(3'000));

  // SIGTERM, bounded wait, then the stats and the processes left behind.
  RunEnd stop(milliseconds deadline = milliseconds(10'000));

 private:
  TempDir dir_;
  std::string stats_path_;
  std::optional<EchoServerProcess> server_;
  std::optional<DescendantTracker> tracker_;  // after server_: destroyed (and kills) first
  pid_t server_pid_ = -1;  // the echolab-server itself (under `ip netns exec` too: it execs)
  int baseline_fds_ = 0;
};

// A counter of the stats JSON ("idle_timeouts"), 0 when absent.
[[nodiscard]] std::uint64_t stats_count(const nlohmann::json& stats, std::string_view name);

// Memory of a process tree from /proc/PID/smaps_rollup, in KiB. PSS splits a shared page
// among its users, so a forked child is charged only for what it made its own.
struct TreeMemory {
  std::uint64_t pss_kib = 0;
  std::uint64_t rss_kib = 0;
  int processes = 0;
};
[[nodiscard]] TreeMemory tree_memory(pid_t root);

// Samples tree_memory(root) from a background thread and keeps the peak PSS: a fork child
// lives only as long as its connection, so a look at the end would miss it.
class TreeMemorySampler {
 public:
  explicit TreeMemorySampler(pid_t root, milliseconds interval = milliseconds(20));
  ~TreeMemorySampler();
  TreeMemorySampler(const TreeMemorySampler&) = delete;
  TreeMemorySampler& operator=(const TreeMemorySampler&) = delete;

  [[nodiscard]] std::uint64_t peak_pss_kib() const { return peak_pss_kib_.load(); }
  [[nodiscard]] std::uint64_t peak_rss_kib() const { return peak_rss_kib_.load(); }
  void stop();

 private:
  pid_t root_;
  milliseconds interval_;
  std::atomic<std::uint64_t> peak_pss_kib_{0};
  std::atomic<std::uint64_t> peak_rss_kib_{0};
  std::atomic<bool> stopping_{false};
  std::thread sampler_;
};

// echolab-loadgen run to completion with `args` (plus --json to a temp file, --quiet,
// --no-status), optionally under `prefix`. The result JSON, or null with `error` set.
struct LoadgenOutcome {
  nlohmann::json result;
  std::string error;  // empty on success
  std::string output;  // stdout and stderr, for failure messages
};
[[nodiscard]] LoadgenOutcome run_loadgen(std::vector<std::string> args, milliseconds timeout,
                                         std::vector<std::string> prefix = {});

// echolab-loadgen started in the background (it runs while the test attacks the server).
class LoadgenRun {
 public:
  LoadgenRun(std::vector<std::string> args, std::vector<std::string> prefix = {});
  // Waits for the exit and reads the JSON.
  [[nodiscard]] LoadgenOutcome finish(milliseconds timeout);

 private:
  TempDir dir_;
  std::string json_path_;
  std::optional<Process> process_;
};

// Figures of one loadgen result: latency in µs and counts.
[[nodiscard]] std::uint64_t loadgen_count(const nlohmann::json& result, std::string_view section,
                                          std::string_view key);
[[nodiscard]] double loadgen_latency_us(const nlohmann::json& result, std::string_view key);

// "<test>_<engine>", file-safe: the case name of one engine's run (as part A names them).
[[nodiscard]] std::string partb_case_name(std::string_view test, std::string_view engine);

// Writes `result` (holding "case" and "engine") to $ECHOLAB_ROBUSTNESS_OUT/<case>.json
// (default: the build's robustness/ directory). Returns the path, or empty when the
// directory is unusable: results never decide whether a test passes.
std::string write_partb_result(const nlohmann::json& result);

}  // namespace echolab::test
