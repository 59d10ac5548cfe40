#pragma once
// What the load generator's tests start echolab-loadgen (tests/support/loadgen_runner.h)
// against: echolab-server (through EchoServerProcess), socat, or an echo server of their own.
// Every wait has a deadline and every process started here is killed and reaped by its
// owner's destructor.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fd.h"
#include "tests/support/echo_server.h"
#include "tests/support/engine_cases.h"
#include "tests/support/loadgen_runner.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

// A file of the source tree, by its path from the root.
[[nodiscard]] std::string source_path(const std::string& relative);

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

// A TCP listener on 127.0.0.1 that completes handshakes (the kernel's backlog) but never
// accepts or reads: a target that has stopped answering, and cheap to point thousands of
// connections at.
class SilentListener {
 public:
  SilentListener();
  [[nodiscard]] std::string address() const;

 private:
  Fd fd_;
};

}  // namespace echolab::test
