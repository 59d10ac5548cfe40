#pragma once
// ServerUnderTest: one echolab-server run as a real process under test, whatever the test
// does to it (bad input, faults, resource limits, another user, an LD_PRELOAD shim, a network
// namespace). Its descendants are tracked from the start (children of fork live only as long
// as their connection) and its descriptors counted right after the ready line. Two ways to
// end it: stop() returns what the end looked like, as figures for a results file;
// stop_and_check() EXPECTs the contract's clean exit (exit 0 on SIGTERM, no process left
// behind, nothing on stdout but the ready line, a stats JSON of the documented shape).
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/echo_server.h"
#include "tests/support/engine_cases.h"
#include "tests/support/proc_fs.h"
#include "tests/support/process.h"
#include "tests/support/socket_client.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

using std::chrono::milliseconds;

// The server under test was built with AddressSanitizer (the test binary comes from the same
// preset). Its runtime holds freed memory in a quarantine and opens descriptors of its own
// at start-up, so exact RSS-growth and exact descriptor-limit cases mean nothing there.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kServerUnderAsan = true;
#else
inline constexpr bool kServerUnderAsan = false;
#endif

struct ServerLaunch {
  std::string engine;
  std::vector<std::string> flags;     // besides --engine, --listen, --transport, --stats-json
  // Where it listens: `on` a listener kind (listen_flags(); a unix socket goes in the
  // server's own directory), at `listen` if given; else `listen` (default 127.0.0.1:0) with
  // the transport of the engine's kind, tcp or udp.
  std::optional<Listen> on;
  std::string listen;
  SpawnOptions spawn;                 // limits, user, environment of the server only
  bool stats_dir_for_anyone = false;  // chmod 0777 the temp dir: a server run as nobody
  std::vector<std::string> prefix;    // run under a command: {"ip", "netns", "exec", "ns"}
};

// The usual launch: `engine` on a free loopback port with `flags`.
[[nodiscard]] ServerLaunch launch_of(std::string engine, std::vector<std::string> flags = {});

struct StopReport {
  std::optional<ExitStatus> status;  // nullopt: no exit within the deadline
  nlohmann::json stats;              // null when unreadable
  std::vector<ProcStat> leftovers;   // descendants still present (Z: never reaped)
  std::size_t children_seen = 0;     // descendants seen over the run (fork, prefork)
  int leftover_processes = 0;        // leftovers.size()
  int zombies = 0;                   // of those, never reaped (state Z)
  std::string leftovers_described;
};

class ServerUnderTest {
 public:
  // Starts the server and waits for its ready line; throws (with the server's output) if it
  // does not come.
  explicit ServerUnderTest(const ServerLaunch& launch);
  // `engine` on `listen` (at `listen_address` if given) with `extra` flags.
  ServerUnderTest(std::string_view engine, Listen listen, std::vector<std::string> extra = {},
                  std::string_view listen_address = {});

  [[nodiscard]] pid_t pid() const { return server_->pid(); }
  [[nodiscard]] SocketAddress address() const { return server_->address(); }
  [[nodiscard]] const ReadyLine& ready() const { return server_->ready(); }
  [[nodiscard]] EchoServerProcess& server() { return *server_; }
  [[nodiscard]] bool running() { return !server_->process().reaped() && !exited_now(); }
  [[nodiscard]] std::string describe() { return server_->describe(); }
  [[nodiscard]] const TempDir& dir() const { return dir_; }

  // Descriptors the server holds over its start-up count once they settle (up to
  // `settle`): 0 unless a descriptor leaked. Call once every client is gone.
  [[nodiscard]] int leaked_fds(milliseconds settle = milliseconds(3'000));
  // Waits (up to 3 s) for the server's descriptor count, and that of each child that was
  // already running at start-up, to settle back; EXPECTs it does. Call once every client
  // has closed.
  void expect_no_fd_leak();

  // SIGTERM, bounded wait for the exit, then the stats file and the leftover processes.
  StopReport stop(milliseconds deadline = milliseconds(10'000));
  // SIGTERM, then EXPECTs the clean exit the contract promises. Returns the stats JSON, or
  // null after a failure that makes it meaningless.
  nlohmann::json stop_and_check();

 private:
  bool exited_now();

  std::string engine_;
  std::string transport_;
  std::string protocol_;
  TempDir dir_;
  std::string stats_path_;
  std::optional<EchoServerProcess> server_;
  std::optional<DescendantTracker> tracker_;  // declared after server_: destroyed first
  int baseline_fds_ = 0;
  std::vector<std::pair<ProcStat, int>> baseline_child_fds_;
};

// A counter of the server's stats JSON ("messages", "protocol_errors"...), or 0 with a
// gtest failure when missing.
[[nodiscard]] std::uint64_t stats_counter(const nlohmann::json& stats, std::string_view name);

// Raises this process's own RLIMIT_NOFILE soft limit to at least `wanted` (up to the hard
// limit, which root may raise). Returns the soft limit now in force.
rlim_t raise_own_fd_limit(rlim_t wanted);

}  // namespace echolab::test
