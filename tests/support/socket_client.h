#pragma once
// Blocking client sockets for tests. Every operation is bounded: stream sockets carry
// SO_RCVTIMEO/SO_SNDTIMEO, datagram exchanges poll with a deadline, so a server that stops
// answering makes a test fail, never hang.
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/fd.h"

namespace echolab::test {

using std::chrono::milliseconds;

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] int family() const { return storage.ss_family; }
};

// Parses an address as the server prints it: "127.0.0.1:41234", "[::1]:41234",
// "unix:/tmp/x.sock". Throws std::invalid_argument.
[[nodiscard]] SocketAddress parse_socket_address(std::string_view text);
// The port of a bound inet socket (getsockname), 0 for other families.
[[nodiscard]] int local_port(int fd);
// The port of an inet address, 0 for other families.
[[nodiscard]] int address_port(const SocketAddress& address);
// False where the kernel has no IPv6 loopback (some containers): callers skip such cases.
[[nodiscard]] bool ipv6_loopback_available();

// A connected client socket (SOCK_CLOEXEC, TCP_NODELAY for TCP) whose sends and receives
// time out after `io_timeout`. A unix datagram socket is first autobound to an abstract
// name, or the server could not address its replies. Throws std::system_error.
[[nodiscard]] Fd connect_socket(const SocketAddress& address, int type,
                                      milliseconds io_timeout);
void set_io_timeouts(int fd, milliseconds timeout);

enum class IoOutcome { ok, closed, timeout, reset, error };

struct IoResult {
  IoOutcome outcome = IoOutcome::ok;
  std::size_t bytes = 0;  // transferred before the outcome
  int error = 0;          // errno for `error` and `reset`

  [[nodiscard]] bool ok() const { return outcome == IoOutcome::ok; }
  [[nodiscard]] std::string describe() const;  // "ok", "timed out after 12 bytes", ...
};

[[nodiscard]] IoResult send_all(int fd, std::span<const std::byte> data);
[[nodiscard]] IoResult receive_exact(int fd, std::span<std::byte> buffer);
// Reads and discards until the peer closes (recv returns 0 or ECONNRESET) or `timeout`
// passes (outcome timeout): how a test sees the server drop a connection.
[[nodiscard]] IoResult wait_for_peer_close(int fd, milliseconds timeout);
// Closes with an RST instead of a FIN (SO_LINGER 0): an abrupt client.
void close_with_reset(Fd& fd);

// The framed protocol: a 4-byte big-endian length, then the payload.
void append_frame(std::vector<std::byte>& out, std::span<const std::byte> payload);
[[nodiscard]] std::vector<std::byte> make_frame(std::span<const std::byte> payload);
[[nodiscard]] std::uint32_t read_be32(const std::byte* in);
void write_be32(std::uint32_t value, std::byte* out);

// Sends `frames` (one or more encoded frames, in one write) and checks that exactly the same
// bytes come back. Returns an empty string on success, else what went wrong.
[[nodiscard]] std::string check_echo(int fd, std::span<const std::byte> frames,
                                     std::vector<std::byte>& scratch);

// Datagram ping with resend: loopback UDP does drop under load, and a unix datagram
// sender can time out on a full queue, so a lost request or echo is sent again.
struct ResendPolicy {
  milliseconds first_timeout{100};
  milliseconds max_timeout{1'600};  // the wait doubles after each loss up to this
  int max_attempts = 12;
};

struct ExchangeResult {
  bool ok = false;
  int attempts = 0;       // sends of this request
  int stale_replies = 0;  // echoes of earlier requests skipped (duplicates after a resend)
  std::string error;
};

// Sends `request` until its echo arrives. The first `id_bytes` bytes identify a request
// (say a frame prefix and a sequence number): a reply that starts with them is its echo and
// must equal it byte for byte; any other reply is a late echo of an earlier request and is
// skipped. `scratch` is reused as the receive buffer.
[[nodiscard]] ExchangeResult exchange_datagram(int fd, std::span<const std::byte> request,
                                               std::size_t id_bytes, const ResendPolicy& policy,
                                               std::vector<std::byte>& scratch);

}  // namespace echolab::test
