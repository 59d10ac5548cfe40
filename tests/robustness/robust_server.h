#pragma once
// What the robustness tests (issue #5, part A) share: echolab-server started with a fault
// environment (resource limits, another user, an LD_PRELOAD shim), its orderly stop checked,
// /proc figures of the whole server tree (RSS, CPU time, threads, live children), and the
// <case>.json results every measuring test writes for results/robustness.json.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/echo_server.h"
#include "tests/support/engine_cases.h"
#include "tests/support/proc_fs.h"
#include "tests/support/process.h"
#include "tests/support/socket_client.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

// The server under test was built with AddressSanitizer (the test binary comes from the same
// preset). Its runtime holds freed memory in a quarantine and opens descriptors of its own
// at start-up, so exact RSS-growth and exact descriptor-limit cases mean nothing there.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kServerUnderAsan = true;
#else
inline constexpr bool kServerUnderAsan = false;
#endif


using std::chrono::milliseconds;

struct ServerLaunch {
  std::string engine;
  std::vector<std::string> flags;    // besides --engine, --listen and --stats-json
  std::string listen = "127.0.0.1:0";
  SpawnOptions spawn;                // limits, user, environment of the server only
  bool stats_dir_for_anyone = false; // chmod 0777 the temp dir: a server run as nobody
};

// The usual launch: `engine` on a free loopback port with `flags`.
[[nodiscard]] ServerLaunch launch_of(std::string engine, std::vector<std::string> flags = {});

struct StopReport {
  std::optional<ExitStatus> status;   // nullopt: no exit within the deadline
  nlohmann::json stats;               // null when unreadable
  std::vector<ProcStat> leftovers;    // descendants still present (Z: never reaped)
  std::size_t children_seen = 0;
};

// echolab-server running under test. Its descendants are tracked from the start (children
// of fork live only as long as their connection); the destructor kills what is left.
class ServerUnderTest {
 public:
  explicit ServerUnderTest(const ServerLaunch& launch);

  [[nodiscard]] pid_t pid() const { return server_->pid(); }
  [[nodiscard]] SocketAddress address() const { return server_->address(); }
  [[nodiscard]] EchoServerProcess& server() { return *server_; }
  [[nodiscard]] bool running() { return !server_->process().reaped() && !exited_now(); }
  [[nodiscard]] std::string describe() { return server_->describe(); }
  [[nodiscard]] const TempDir& dir() const { return dir_; }

  // SIGTERM, bounded wait for the exit, then the stats file and the leftover processes.
  StopReport stop(milliseconds deadline = milliseconds(10'000));

 private:
  bool exited_now();

  TempDir dir_;
  std::string stats_path_;
  std::optional<EchoServerProcess> server_;
  std::optional<DescendantTracker> tracker_;  // declared after server_: destroyed first
};

// A counter of the server's stats JSON, or 0 (with a gtest failure) when missing.
[[nodiscard]] std::uint64_t stats_counter(const nlohmann::json& stats, std::string_view name);

// /proc/PID/status fields in KiB (VmRSS, VmHWM) or a count (Threads); nullopt if gone.
[[nodiscard]] std::optional<std::uint64_t> proc_status_field(pid_t pid, std::string_view field);
// utime + stime of the process (all its threads), in clock ticks; 0 when gone.
[[nodiscard]] std::uint64_t cpu_ticks(pid_t pid);
// The process and its living descendants (zombies excluded).
[[nodiscard]] std::vector<pid_t> live_tree(pid_t root);
// Living (non-zombie) direct children of `parent`.
[[nodiscard]] int live_children(pid_t parent);
// Tasks (threads) on the machine whose real uid is `uid`: what RLIMIT_NPROC counts.
[[nodiscard]] int tasks_of_user(uid_t uid);

// Samples VmHWM of every process of the server tree until stopped: a fork child that
// allocated for a bogus frame would be gone before a look at the end.
class PeakRssSampler {
 public:
  explicit PeakRssSampler(pid_t root, milliseconds interval = milliseconds(5));
  ~PeakRssSampler();
  PeakRssSampler(const PeakRssSampler&) = delete;
  PeakRssSampler& operator=(const PeakRssSampler&) = delete;

  // Largest VmHWM (KiB) of any process of the tree seen so far.
  [[nodiscard]] std::uint64_t peak_kib() const { return peak_kib_.load(); }
  void stop();

 private:
  pid_t root_;
  std::atomic<std::uint64_t> peak_kib_{0};
  std::atomic<bool> stopping_{false};
  std::thread sampler_;
};

// Writes `result` (which must hold "case" and "engine") to $ECHOLAB_ROBUSTNESS_OUT/<case>.json
// (the directory is created). Returns the path written, or empty (and prints why) if the
// directory is unusable: results never decide whether a test passes.
std::string write_case_result(const nlohmann::json& result);

// "<test>_<engine>" with the engine name made file-safe: the case name of one engine's run.
[[nodiscard]] std::string case_name(std::string_view test, std::string_view engine);

// Raises this process's own RLIMIT_NOFILE soft limit to at least `wanted` (up to the hard
// limit, which root may raise). Returns the soft limit now in force.
rlim_t raise_own_fd_limit(rlim_t wanted);

}  // namespace echolab::test
