#pragma once
// Running echolab-loadgen as a real process in tests, against echolab-server (through the
// test_support library's EchoServerProcess), socat, or an echo server of the test's own.
// Every wait has a deadline and every process started here is killed and reaped by its
// owner's destructor.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/echo_server.h"
#include "tests/support/engine_cases.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

// Longer than any run a test asks for (whose own hard limit is a few seconds).
inline constexpr milliseconds kLoadgenDeadline{60'000};

[[nodiscard]] std::string source_path(const std::string& relative);

struct LoadgenOutcome {
  ExitStatus status;
  std::string out;
  std::string err;
  nlohmann::json json;  // the --json result, null if none was written

  // For failure messages: the command, exit status, stderr and stdout.
  [[nodiscard]] std::string describe() const;
};

// Runs `echolab-loadgen args...`. Unless args already hold --json, a --json file in `dir`
// is added and read back. Throws if the process outlives `deadline`.
// `options`: resource limits for the child, say.
[[nodiscard]] LoadgenOutcome run_loadgen(const TempDir& dir, std::vector<std::string> args,
                                         milliseconds deadline = kLoadgenDeadline,
                                         const SpawnOptions& options = {});

// A short run: 0.1 s warm-up, `duration` measured, a 1 s timeout, no summary, no status line.
[[nodiscard]] std::vector<std::string> quick_flags(const std::string& duration = "0.3s");

// echolab-server --engine E --listen ADDR --transport T --protocol P (ready line awaited).
[[nodiscard]] EchoServerProcess start_echolab_server(const std::string& engine,
                                                     const std::string& transport,
                                                     const std::string& protocol,
                                                     const std::string& listen);

// socat as an RFC 862 echo server (PIPE). `target` is what --target takes.
struct SocatEcho {
  std::unique_ptr<Process> process;
  std::string target;
};
// nullopt if socat is not installed. transport: tcp, udp or unix-stream; `dir` holds the
// unix socket.
[[nodiscard]] std::optional<SocatEcho> start_socat_echo(const std::string& transport,
                                                        const TempDir& dir);

}  // namespace echolab::test
