#pragma once
// Endpoints as users write them ("127.0.0.1:7007", "[::]:0", "localhost:80", "unix:/tmp/e.sock"),
// resolved with getaddrinfo(AF_UNSPEC) and printed back with getnameinfo(NUMERICHOST|NUMERICSERV).
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace echolab {

enum class Transport { tcp, udp, unix_stream, unix_dgram };

[[nodiscard]] std::string_view to_string(Transport transport);
// "tcp", "udp", "unix-stream", "unix-dgram"; nullopt for anything else.
[[nodiscard]] std::optional<Transport> parse_transport(std::string_view text);
[[nodiscard]] bool is_stream(Transport transport);
[[nodiscard]] bool is_unix(Transport transport);
[[nodiscard]] int socket_type(Transport transport);  // SOCK_STREAM or SOCK_DGRAM

struct Endpoint {
  std::string host;       // as written, brackets removed; empty means "any" (servers only)
  std::string port;       // decimal digits, 0 to 65535
  std::string unix_path;  // set only for "unix:/path"

  [[nodiscard]] bool is_unix() const { return !unix_path.empty(); }
};

// Parses HOST:PORT, [V6ADDR]:PORT or unix:/path. PORT is decimal digits naming 0 to 65535:
// getaddrinfo would keep the low 16 bits of a larger number (99999 becomes 34463), and
// service names are refused because a benchmark should say which port it measured.
// Throws UsageError with a one-line reason.
[[nodiscard]] Endpoint parse_endpoint(std::string_view text);

// A socket address of any family, with its length, as returned by accept or recvfrom.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = sizeof(sockaddr_storage);

  [[nodiscard]] sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] int family() const { return storage.ss_family; }
};

// getaddrinfo for `endpoint`: every candidate address, in the resolver's order. For unix
// endpoints, one sockaddr_un. `passive` sets AI_PASSIVE (servers). Throws UsageError when
// the name does not resolve or a unix path is too long.
[[nodiscard]] std::vector<SocketAddress> resolve(const Endpoint& endpoint, Transport transport,
                                                 bool passive);

// `text` made safe to print on one line of a log or an error: control characters, DEL and
// bytes past ASCII become \xNN, so a peer's or a user's string cannot forge extra lines.
[[nodiscard]] std::string printable(std::string_view text);

// Numeric text for an address: "127.0.0.1:7007", "[::1]:7007", "[::ffff:127.0.0.1]:5",
// "unix:/path" ("unix:" for an unnamed unix peer). Unix paths go through printable().
[[nodiscard]] std::string format_address(const sockaddr* address, socklen_t length);
[[nodiscard]] std::string format_address(const SocketAddress& address);

// The address a socket is bound to (getsockname), formatted as above.
[[nodiscard]] std::string local_address(int fd);

}  // namespace echolab
