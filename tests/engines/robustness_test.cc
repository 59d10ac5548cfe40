// Protocol violations (an over-size frame, a garbage stream) must close only the offending
// connection and be counted, and a client that vanishes mid-frame must not matter: a
// well-behaved client is echoed before, between and after them, on every stream engine.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/proc_fs.h"
#include "tests/support/socket_client.h"
#include "tests/support/engine_test.h"

namespace echolab::test {
namespace {

using std::chrono::milliseconds;

constexpr std::uint32_t kMaxFrame = 1024;
constexpr milliseconds kIoTimeout{10'000};
constexpr milliseconds kCloseDeadline{5'000};

std::vector<std::byte> random_payload(FastRandom& random, std::size_t size) {
  std::vector<std::byte> payload(size);
  random.fill(payload);
  return payload;
}

// Frames of the edge sizes one at a time, a burst of frames in one write, and one frame
// dribbled a byte per write (so the server must reassemble it across many reads).
std::string exercise_good_client(int fd, FastRandom& random) {
  std::vector<std::byte> scratch;
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{kMaxFrame}}) {
    if (auto error = check_echo(fd, make_frame(random_payload(random, size)), scratch);
        !error.empty()) {
      return std::to_string(size) + "-byte frame: " + error;
    }
  }
  std::vector<std::byte> burst;
  for (int i = 0; i < 8; ++i) {
    append_frame(burst, random_payload(random, random.below(kMaxFrame + 1)));
  }
  if (auto error = check_echo(fd, burst, scratch); !error.empty()) {
    return "burst of 8 frames: " + error;
  }
  const auto dribbled = make_frame(random_payload(random, 300));
  for (const auto byte : dribbled) {
    if (const auto sent = send_all(fd, std::span(&byte, 1)); !sent.ok()) {
      return "dribbled frame: send: " + sent.describe();
    }
  }
  scratch.resize(dribbled.size());
  if (const auto got = receive_exact(fd, scratch); !got.ok()) {
    return "dribbled frame: receive: " + got.describe();
  }
  return scratch == dribbled ? "" : "dribbled frame: echo differs";
}

// Sends `bytes` (the server may reset the connection before taking them all) and expects
// the server to close the connection.
testing::AssertionResult server_closes_after(const SocketAddress& address,
                                             std::span<const std::byte> bytes) {
  auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
  [[maybe_unused]] const auto sent = send_all(fd.get(), bytes);
  const auto end = wait_for_peer_close(fd.get(), kCloseDeadline);
  if (end.outcome == IoOutcome::closed || end.outcome == IoOutcome::reset) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << "connection not closed by the server: " << end.describe();
}

class RobustnessTest : public EngineTest {};

TEST_P(RobustnessTest, ProtocolErrorsCloseOnlyTheOffendingConnection) {
  const auto& engine = this->engine();
  FastRandom& random = this->random();
  ServerUnderTest running(engine, Listen::tcp_v4, {"--max-frame", std::to_string(kMaxFrame)});
  const auto address = running.address();
  // The iterative engine serves one client at a time: the good client must leave before a
  // bad one can be served, so it reconnects for each round instead of staying connected.
  const bool one_client_at_a_time = one_at_a_time(engine_info(engine));
  std::optional<Fd> good;
  const auto good_client_is_echoed = [&](const char* when) {
    if (!good) {
      good = connect_socket(address, SOCK_STREAM, kIoTimeout);
    }
    EXPECT_EQ(exercise_good_client(good->get(), random), "") << when;
    if (one_client_at_a_time) {
      good.reset();
    }
  };

  good_client_is_echoed("before any bad client");

  std::vector<std::byte> oversize(4);
  write_be32(kMaxFrame + 1, oversize.data());
  const auto filler = random_payload(random, 100);
  oversize.insert(oversize.end(), filler.begin(), filler.end());
  EXPECT_TRUE(server_closes_after(address, oversize)) << "frame of max-frame + 1 bytes";
  good_client_is_echoed("after an over-size frame");

  const std::string request = "GET / HTTP/1.1\r\nHost: echolab\r\n\r\n";
  auto garbage = random_payload(random, 4096);
  std::memcpy(garbage.data(), request.data(), request.size());
  EXPECT_TRUE(server_closes_after(address, garbage)) << "an HTTP request and random bytes";
  good_client_is_echoed("after a garbage stream");

  {
    auto abrupt = connect_socket(address, SOCK_STREAM, kIoTimeout);
    auto half_frame = make_frame(random_payload(random, 1000));
    half_frame.resize(500);
    [[maybe_unused]] const auto sent = send_all(abrupt.get(), half_frame);
    close_with_reset(abrupt);
  }
  good_client_is_echoed("after a client reset mid-frame");
  good.reset();
  // A new client is still accepted and served.
  {
    auto fresh = connect_socket(address, SOCK_STREAM, kIoTimeout);
    EXPECT_EQ(exercise_good_client(fresh.get(), random), "") << "a new client at the end";
  }
  // Every connection is accepted before the stop, so that the count below is exact. One
  // accept queue is first in, first out, but an engine with a listener per loop
  // (SO_REUSEPORT) has a queue each, and serving the last client empties only its own.
  EXPECT_EQ(wait_for_empty_accept_queues(address_port(address), kIoTimeout), 0);
  const std::uint64_t connections = one_client_at_a_time ? 8 : 5;

  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 2u) << "one per bad connection";
  EXPECT_EQ(stats_counter(stats, "connections_accepted"), connections);
}

// --verbose logs one line per accepted connection, even one its client reset before the
// server got to accept it (accept(2) still returns it on Linux, but getpeername(2) on it
// fails with ENOTCONN). The iterative engine, kept busy by a first client, is sure to meet
// such connections; the others usually do, by racing the resets.
TEST_P(RobustnessTest, VerboseLogsEveryAcceptedConnectionEvenIfResetAtOnce) {
  const auto& engine = this->engine();
  FastRandom& random = this->random();
  ServerUnderTest running(engine, Listen::tcp_v4, {"--verbose"});
  const auto address = running.address();
  constexpr int kAbruptClients = 10;
  {
    auto busy = connect_socket(address, SOCK_STREAM, kIoTimeout);
    EXPECT_EQ(exercise_good_client(busy.get(), random), "");
    for (int i = 0; i < kAbruptClients; ++i) {
      auto abrupt = connect_socket(address, SOCK_STREAM, kIoTimeout);
      close_with_reset(abrupt);
    }
  }
  {
    auto last = connect_socket(address, SOCK_STREAM, kIoTimeout);
    EXPECT_EQ(exercise_good_client(last.get(), random), "");
  }
  // Every reset connection accepted (and so logged) before the stop: with a listener per
  // loop, the last client being served says nothing of the other loops' queues.
  EXPECT_EQ(wait_for_empty_accept_queues(address_port(address), kIoTimeout), 0);
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  const auto err = running.server().process().stderr_text();
  std::uint64_t logged = 0;
  for (const auto& line : split_lines(err)) {
    logged += line.starts_with("echolab-server: accepted ") ? 1 : 0;
  }
  EXPECT_EQ(stats_counter(stats, "connections_accepted"), std::uint64_t{kAbruptClients} + 2);
  EXPECT_EQ(logged, stats_counter(stats, "connections_accepted")) << "stderr:\n" << err;
}

INSTANTIATE_TEST_SUITE_P(Engines, RobustnessTest, testing::ValuesIn(engine_names(Serves::streams)),
                         engine_case_name);

}  // namespace
}  // namespace echolab::test
