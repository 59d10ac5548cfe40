#pragma once
// RunningServer: one echolab-server under test, with what the contract promises about its
// life checked around whatever a test does with it: descriptors back to the start-up count
// once clients are gone, and on SIGTERM exit 0, no child process left (alive or zombie),
// nothing on stdout but the ready line, and a stats JSON of the documented shape.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/support/engine_cases.h"
#include "tests/support/echo_server.h"
#include "tests/support/proc_fs.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

class RunningServer {
 public:
  // Starts `--engine engine` on `listen` (at `listen_address` if given, see listen_flags)
  // with `extra` flags and --stats-json; throws (with the server's output) if it does not
  // get ready.
  RunningServer(std::string_view engine, Listen listen, std::vector<std::string> extra = {},
                std::string_view listen_address = {});

  [[nodiscard]] EchoServerProcess& server() { return *server_; }
  [[nodiscard]] SocketAddress address() const { return server_->address(); }
  [[nodiscard]] const TempDir& dir() const { return dir_; }

  // Waits (up to 3 s) for the server's descriptor count, and that of each child that was
  // already running at start-up, to settle back; EXPECTs it does. Call once every client
  // has closed.
  void expect_no_fd_leak();

  // SIGTERM, then EXPECTs the clean exit the contract promises. Returns the stats JSON, or
  // null after a failure that makes it meaningless.
  nlohmann::json stop_and_check();

 private:
  std::string engine_;
  Listen listen_;
  std::string protocol_;
  TempDir dir_;
  std::string stats_path_;
  std::optional<EchoServerProcess> server_;
  std::optional<DescendantTracker> tracker_;  // after server_: destroyed (and kills) first
  int baseline_fds_ = 0;
  std::vector<std::pair<ProcStat, int>> baseline_child_fds_;
};

// A counter from the stats JSON ("messages", "protocol_errors"...), ADD_FAILURE if absent.
[[nodiscard]] std::uint64_t counter(const nlohmann::json& stats, std::string_view name);

}  // namespace echolab::test
