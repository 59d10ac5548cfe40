#pragma once
// The test matrix of echolab-server: engines come from the server's own table
// (echolab::engines()), so a new engine is tested without touching the tests; listeners are
// the transports and address families each engine kind must serve.
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

// Names of the engines in echolab::engines() that serve `kind`.
[[nodiscard]] std::vector<std::string> engine_names(Serves kind);
// Why a case cannot run here (engine unavailable, no IPv6 loopback), or empty.
[[nodiscard]] std::string skip_reason(std::string_view engine, Listen listen);
[[nodiscard]] std::string skip_reason(std::string_view engine);

// A gtest-safe name part: "iterative-udp" -> "iterative_udp".
[[nodiscard]] std::string test_name_part(std::string_view text);

[[nodiscard]] inline std::string server_binary() { return ECHOLAB_SERVER_BIN; }

}  // namespace echolab::test
