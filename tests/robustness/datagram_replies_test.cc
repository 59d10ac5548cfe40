// Datagram engines facing clients they cannot answer, on every datagram engine of the
// registry: a bound client that floods and never reads (a unix datagram queue holds about
// ten, then refuses) must cost only its own replies, counted in replies_dropped, while other
// clients are served and SIGTERM stops the server at once; an unbound unix client's
// datagrams (no address to reply to) are dropped, never counted as messages; and a socket
// whose read side is shut with no stop pending ends the loop instead of spinning on it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/datagram.h"
#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kIoTimeout{2'000};
constexpr int kFloodDatagrams = 40;  // several times what a unix datagram queue holds
constexpr int kGoodExchanges = 20;
// Enough resends to ride out loopback loss, few enough that a blocked server fails the test
// in seconds rather than minutes.
const ResendPolicy kPolicy{milliseconds(100), milliseconds(800), 6};

std::vector<std::byte> numbered(std::uint32_t number, std::size_t size) {
  std::vector<std::byte> datagram(size, std::byte{0x5a});
  write_be32(number, datagram.data());
  return datagram;
}

// A client that sends with sendto from a bound, unconnected socket, as the adversary did:
// the kernel then holds the server to the client's queue limit (a client connected to the
// server would not be, and would only pin the server's send buffer).
Fd bound_non_reader(const SocketAddress& server) {
  if (server.family() != AF_UNIX) {
    return connect_socket(server, SOCK_DGRAM, kIoTimeout);
  }
  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const sa_family_t family = AF_UNIX;  // bind to an abstract name the kernel picks
  if (!fd || ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&family), sizeof(family)) != 0) {
    throw std::system_error(errno, std::generic_category(), "non-reader socket");
  }
  return fd;
}

// Sends without waiting: a full server queue only loses datagrams of the flood.
void flood(int fd, const SocketAddress& server, int count) {
  for (int i = 0; i < count; ++i) {
    const auto datagram = numbered(0xffff0000u + static_cast<std::uint32_t>(i), 100);
    [[maybe_unused]] const ssize_t n =
        ::sendto(fd, datagram.data(), datagram.size(), MSG_DONTWAIT, server.get(), server.length);
  }
}

// Raw-protocol exchanges; returns the datagrams sent, resends included ("" in *error if all
// were answered).
int good_client_rounds(const SocketAddress& address, std::uint32_t first, std::string* error) {
  auto fd = connect_socket(address, SOCK_DGRAM, kIoTimeout);
  std::vector<std::byte> scratch;
  int sent = 0;
  for (int i = 0; i < kGoodExchanges; ++i) {
    const auto request = numbered(first + static_cast<std::uint32_t>(i), 64);
    const auto result = exchange_datagram(fd.get(), request, 4, kPolicy, scratch);
    sent += result.attempts;
    if (!result.ok) {
      *error = "exchange " + std::to_string(i) + ": " + result.error;
      return sent;
    }
  }
  return sent;
}

using Case = std::tuple<std::string, Listen>;

class DatagramRepliesTest : public testing::TestWithParam<Case> {};

TEST_P(DatagramRepliesTest, NonReaderCostsOnlyItsOwnReplies) {
  const auto& [engine, listen] = GetParam();
  if (const auto reason = skip_reason(engine, listen); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  ServerUnderTest running(engine, listen, {"--protocol", "raw", "--workers", "2"});
  const auto address = running.address();
  auto non_reader = bound_non_reader(address);
  flood(non_reader.get(), address, kFloodDatagrams);
  std::string error;
  good_client_rounds(address, 0, &error);
  EXPECT_EQ(error, "") << "a client was not served while another one does not read";
  flood(non_reader.get(), address, kFloodDatagrams);
  error.clear();
  good_client_rounds(address, 1000, &error);
  EXPECT_EQ(error, "") << "after a second flood";
  // The non-reader is still there, its queue full: the stop must not wait for it.
  const auto start = Clock::now();
  const auto stats = running.stop_and_check();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_LT(took, kDrainTime) << "a datagram server owes nothing once stopped; it took "
                              << took.count() << " ms";
  if (stats.is_null()) {
    return;
  }
  // UDP on loopback drops at the full receiver without telling the sender; a unix datagram
  // socket refuses the send, which the server must count.
  if (listen == Listen::unix_dgram) {
    EXPECT_GT(stats_counter(stats, "replies_dropped"), 0u);
  }
  EXPECT_EQ(stats_counter(stats, "io_errors"), 0u);
}

// Only a unix datagram client can send without an address.
class UnboundClientTest : public testing::TestWithParam<std::string> {};

TEST_P(UnboundClientTest, UnboundUnixClientIsDroppedNotCountedAsMessage) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::unix_dgram); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  constexpr int kUnbound = 3;
  ServerUnderTest running(engine, Listen::unix_dgram, {"--protocol", "raw"});
  const auto address = running.address();
  {
    Fd unbound(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(unbound.valid()) << std::strerror(errno);
    for (int i = 0; i < kUnbound; ++i) {
      const auto datagram = numbered(0xeeee0000u + static_cast<std::uint32_t>(i), 32);
      ASSERT_EQ(::sendto(unbound.get(), datagram.data(), datagram.size(), 0, address.get(),
                         address.length),
                static_cast<ssize_t>(datagram.size()))
          << std::strerror(errno);
    }
  }
  // Served after the unbound ones: the server's queue is first in, first out.
  std::string error;
  const int good = good_client_rounds(address, 0, &error);
  EXPECT_EQ(error, "");
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_EQ(stats_counter(stats, "messages"), static_cast<std::uint64_t>(good));
  EXPECT_EQ(stats_counter(stats, "datagrams_dropped"), static_cast<std::uint64_t>(kUnbound));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& engine : engine_names(Serves::datagrams)) {
    for (const Listen listen : {Listen::udp_v4, Listen::unix_dgram}) {
      cases.emplace_back(engine, listen);
    }
  }
  return cases;
}

std::string case_name(const testing::TestParamInfo<Case>& param_info) {
  const auto& [engine, listen] = param_info.param;
  return test_name_part(engine) + "_" + std::string(name_of(listen));
}

INSTANTIATE_TEST_SUITE_P(Engines, DatagramRepliesTest, testing::ValuesIn(all_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Engines, UnboundClientTest,
                         testing::ValuesIn(engine_names(Serves::datagrams)),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

// In a child process (the loop's stop state is process-wide): a bound socket whose read side
// is shut while no stop is pending makes recvfrom return 0 at once, forever. The loop must
// end (and fail the engine) rather than spin counting empty datagrams.
int serve_on_shut_socket(int family) {
  install_stop_handlers();
  Fd socket_fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (family == AF_UNIX) {
    auto* unix_address = reinterpret_cast<sockaddr_un*>(&storage);
    unix_address->sun_family = AF_UNIX;  // autobind: an abstract name
    length = sizeof(sa_family_t);
  } else {
    auto* inet = reinterpret_cast<sockaddr_in*>(&storage);
    inet->sin_family = AF_INET;
    inet->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    length = sizeof(sockaddr_in);
  }
  if (!socket_fd || ::bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    return 10;
  }
  ::shutdown(socket_fd.get(), SHUT_RD);  // ENOTCONN on an unconnected socket, yet it is shut
  ServerConfig config;
  config.protocol.protocol = Protocol::raw;
  auto stats = std::make_unique<ServerStats>();
  EngineContext context{config, socket_fd.get(), *stats, [] {}};
  serve_datagrams(context, 0);
  return engine_failed() ? 0 : 11;
}

class ShutReadSideTest : public testing::TestWithParam<int> {};

TEST_P(ShutReadSideTest, LoopEndsInsteadOfSpinning) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    ::_exit(serve_on_shut_socket(GetParam()));
  }
  int status = 0;
  pid_t reaped = 0;
  for (const auto deadline = Clock::now() + milliseconds(5'000);
       (reaped = ::waitpid(child, &status, WNOHANG)) == 0 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (reaped == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "the datagram loop was still running 5 s after its socket's read side was shut";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: no socket; 11: the loop ended without failing";
}

INSTANTIATE_TEST_SUITE_P(Families, ShutReadSideTest, testing::Values(AF_UNIX, AF_INET),
                         [](const auto& param_info) {
                           return std::string(param_info.param == AF_UNIX ? "unix" : "udp");
                         });

}  // namespace
}  // namespace echolab::test
