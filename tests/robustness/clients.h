#pragma once
// Client behaviours the robustness tests share: bytes sent whole, byte by byte or split at
// random; a well-behaved client whose echo round-trips prove the server still serves while
// bad clients come and go (reconnecting for each round on the iterative engine, which serves
// one client at a time); and the expectation that the server closes a connection.
#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {

using std::chrono::milliseconds;

enum class SendMode { whole, byte_by_byte, random_split };
inline constexpr SendMode kSendModes[] = {SendMode::whole, SendMode::byte_by_byte,
                                          SendMode::random_split};
[[nodiscard]] std::string_view name_of(SendMode mode);

// Sends `bytes` the way `mode` says. Stops at the first failure (the server may close a
// connection it rejected before taking everything) and returns it.
IoResult send_in_mode(int fd, std::span<const std::byte> bytes, SendMode mode, FastRandom& random);

[[nodiscard]] std::vector<std::byte> random_bytes(FastRandom& random, std::size_t size);

// The client that must keep being served. On `one_at_a_time` engines it disconnects after
// each round, so that the next bad client can be served at all.
class GoodClient {
 public:
  GoodClient(SocketAddress address, bool one_at_a_time, FastRandom& random);

  // One round: a few frames of assorted sizes up to `max_payload`, checked byte for byte.
  // Returns an empty string on success, else what went wrong.
  std::string round(std::size_t max_payload);
  [[nodiscard]] int rounds() const { return rounds_; }
  [[nodiscard]] int connections() const { return connections_; }
  void disconnect() { fd_.reset(); }

 private:
  SocketAddress address_;
  bool one_at_a_time_;
  FastRandom* random_;
  std::optional<Fd> fd_;
  std::vector<std::byte> scratch_;
  int rounds_ = 0;
  int connections_ = 0;
};

// Reads until the server closes the connection (EOF or reset) or `timeout` passes.
// Collects what arrived meanwhile in `received` if given.
IoResult read_until_closed(int fd, milliseconds timeout, std::vector<std::byte>* received = nullptr);

}  // namespace echolab::test
