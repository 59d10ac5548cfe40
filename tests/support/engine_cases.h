#pragma once
// The test matrix of echolab-server: engines come from the server's own table
// (echolab::engines()), so a new engine is tested without touching the tests; listeners are
// the transports and address families each engine kind must serve. What a test expects of
// an engine comes from its row's traits (concurrency, cap_option, descriptors...), never
// from its name: a new engine with the same traits is expected to behave the same.
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "servers/engine.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {

enum class Listen { tcp_v4, tcp_v6, unix_stream, udp_v4, udp_v6, unix_dgram };

inline const std::vector<Listen> kStreamListens = {Listen::tcp_v4, Listen::tcp_v6,
                                                   Listen::unix_stream};
inline const std::vector<Listen> kDatagramListens = {Listen::udp_v4, Listen::udp_v6,
                                                     Listen::unix_dgram};

[[nodiscard]] std::string_view name_of(Listen listen);  // "tcp_v4" (test names)
// How gtest prints a Listen in a failing case's parameters (instead of its raw bytes).
inline void PrintTo(Listen listen, std::ostream* out) { *out << name_of(listen); }
[[nodiscard]] std::string_view transport_of(Listen listen);  // "tcp" (--transport)
[[nodiscard]] int socket_type_of(Listen listen);             // SOCK_STREAM or SOCK_DGRAM
// --listen and --transport for a server on a free loopback port (or a socket file in
// `dir`), or on `address` if given.
[[nodiscard]] std::vector<std::string> listen_flags(Listen listen, const TempDir& dir,
                                                    std::string_view address = {});

// Names of the engines in echolab::engines() that serve `kind`, in table order.
[[nodiscard]] std::vector<std::string> engine_names(Serves kind);
// Names of the engines whose row satisfies `wanted`, in table order.
[[nodiscard]] std::vector<std::string> engine_names(const std::function<bool(const EngineInfo&)>& wanted);
// The row of `engine`; throws std::invalid_argument if the table has none.
[[nodiscard]] const EngineInfo& engine_info(std::string_view engine);
// The first available engine of the table whose row satisfies `wanted`; throws
// std::runtime_error naming `what` if there is none.
[[nodiscard]] const EngineInfo& first_engine(const std::function<bool(const EngineInfo&)>& wanted,
                                             std::string_view what);

// Traits read off a row, named for what the tests expect of them.
// Serves one client at a time: a second client waits until the first leaves.
[[nodiscard]] inline bool one_at_a_time(const EngineInfo& engine) {
  return engine.concurrency == Concurrency::one_at_a_time;
}
// Forks a process per connection: a connect/close cycle costs a fork, an exit and a reap.
[[nodiscard]] inline bool forks_per_connection(const EngineInfo& engine) {
  return engine.concurrency == Concurrency::per_connection && engine.connections_in_children;
}
// Accepts in pre-forked worker processes rather than in the server process itself.
[[nodiscard]] inline bool accepts_in_children(const EngineInfo& engine) {
  return engine.concurrency == Concurrency::pool && engine.connections_in_children;
}
// `cap_option value` if the engine has a capping option, else no flags.
[[nodiscard]] std::vector<std::string> cap_flags(const EngineInfo& engine, int value);
// Why a case cannot run here (engine unavailable, no IPv6 loopback), or empty.
[[nodiscard]] std::string skip_reason(std::string_view engine, Listen listen);
[[nodiscard]] std::string skip_reason(std::string_view engine);

// A gtest-safe name part: "iterative-udp" -> "iterative_udp".
[[nodiscard]] std::string test_name_part(std::string_view text);

// $ECHOLAB_SERVER_BIN / $ECHOLAB_LOADGEN_BIN if set (another preset's build, see
// tests/robustness/run_in_preset.sh), else this build's binaries.
[[nodiscard]] std::string server_binary();
[[nodiscard]] std::string loadgen_binary();

}  // namespace echolab::test
