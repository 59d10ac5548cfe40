#pragma once
// EchoServerProcess: echolab-server started as a real process, with its contract's start-up
// handshake (one "echolab-server listening <transport> <address>" line on stdout) and its
// graceful stop (SIGTERM, exit 0) wrapped with deadlines.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/socket_client.h"

namespace echolab::test {

struct ReadyLine {
  std::string transport;  // "tcp", "udp", "unix-stream", "unix-dgram"
  std::string address;    // "127.0.0.1:41234", "[::1]:41234", "unix:/tmp/x.sock"
};

// Parses exactly "echolab-server listening <transport> <address>" (no trailing newline).
[[nodiscard]] std::optional<ReadyLine> parse_ready_line(std::string_view line);

class EchoServerProcess {
 public:
  // Starts `binary args...` and waits for the ready line. Throws std::runtime_error, with
  // everything the server printed, if it does not come within `ready_timeout` or is
  // malformed.
  EchoServerProcess(std::string binary, std::vector<std::string> args,
                    milliseconds ready_timeout = milliseconds(15'000),
                    const SpawnOptions& options = {});

  [[nodiscard]] Process& process() { return process_; }
  [[nodiscard]] pid_t pid() const { return process_.pid(); }
  [[nodiscard]] const ReadyLine& ready() const { return ready_; }
  [[nodiscard]] SocketAddress address() const { return parse_socket_address(ready_.address); }
  // The port of an inet listener, from the ready line.
  [[nodiscard]] int port() const;

  // SIGTERM, then waits for the exit; nullopt if it did not come within `timeout`.
  [[nodiscard]] std::optional<ExitStatus> terminate(milliseconds timeout);

  // A one-paragraph account for failure messages: command line, stdout, stderr.
  [[nodiscard]] std::string describe();

 private:
  Process process_;
  ReadyLine ready_;
};

// Parses a JSON file; throws std::runtime_error naming the file if unreadable or invalid.
[[nodiscard]] nlohmann::json read_json_file(const std::string& path);

}  // namespace echolab::test
