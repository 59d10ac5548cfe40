// A client that half-closes (shutdown(SHUT_WR) at end of input, as `nc -N` and socat do)
// and reads its echo more slowly than it sent: every stream engine must still send all it
// owes, then close the connection promptly; bytes_out must equal bytes_in. A stop during such
// a flush must still end within the drain deadline. Every stream engine of the registry, on
// TCP and unix stream sockets, raw and framed.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/stop.h"
#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kTotalBytes = 4 * 1024 * 1024;
constexpr std::size_t kFramePayload = 64 * 1024;
constexpr milliseconds kIoTimeout{10'000};
constexpr milliseconds kCloseDeadline{5'000};
// The reader takes this much per read and then sleeps: ~8 MB/s, far slower than any engine
// echoes on loopback, so the server always owes more than the socket buffers hold.
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr milliseconds kReadPause{2};

// What the client sends: raw bytes, or 64 KiB frames, ~4 MiB either way.
std::vector<std::byte> make_input(FastRandom& random, bool framed) {
  std::vector<std::byte> input;
  std::vector<std::byte> payload(framed ? kFramePayload : kTotalBytes);
  while (input.size() < kTotalBytes) {
    random.fill(payload);
    if (framed) {
      append_frame(input, payload);
    } else {
      input.insert(input.end(), payload.begin(), payload.end());
    }
  }
  return input;
}

using Case = std::tuple<std::string, Listen, std::string>;  // engine, listen, protocol

class HalfCloseTest : public testing::TestWithParam<Case> {};

TEST_P(HalfCloseTest, EverythingOwedIsSentThenTheConnectionCloses) {
  const auto& [engine, listen, protocol] = GetParam();
  if (const auto reason = skip_reason(engine, listen); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  FastRandom random(test_seed());
  const auto input = make_input(random, protocol == "framed");
  ServerUnderTest running(engine, listen, {"--protocol", protocol});
  {
    auto fd = connect_socket(running.address(), SOCK_STREAM, kIoTimeout);
    IoResult sent;
    std::jthread writer([&] {
      sent = send_all(fd.get(), input);
      ::shutdown(fd.get(), SHUT_WR);  // end of input, as nc -N does
    });
    std::vector<std::byte> echo;
    echo.reserve(input.size());
    std::vector<std::byte> chunk(kReadChunk);
    std::string ended;
    while (echo.size() < input.size()) {
      const ssize_t n = ::recv(fd.get(), chunk.data(), chunk.size(), 0);
      if (n <= 0) {
        ended = n == 0 ? "the server closed" : std::string("recv: ") + std::strerror(errno);
        break;
      }
      echo.insert(echo.end(), chunk.begin(), chunk.begin() + n);
      std::this_thread::sleep_for(kReadPause);
    }
    writer.join();
    ASSERT_TRUE(sent.ok()) << "send: " << sent.describe();
    ASSERT_EQ(echo.size(), input.size())
        << ended << " after " << echo.size() << " of " << input.size() << " echo bytes";
    EXPECT_TRUE(echo == input) << "the echo differs from what was sent";
    // Flushed: the server has nothing left to say and must close, not hold the descriptor.
    const auto end = wait_for_peer_close(fd.get(), kCloseDeadline);
    EXPECT_EQ(end.outcome, IoOutcome::closed) << "after the full echo: " << end.describe();
  }
  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_EQ(stats_counter(stats, "bytes_in"), input.size());
  EXPECT_EQ(stats_counter(stats, "bytes_out"), stats_counter(stats, "bytes_in"));
  EXPECT_EQ(stats_counter(stats, "io_errors"), 0u);
}

// The client half-closes and never reads: the server owes an echo it cannot deliver. A
// SIGTERM then must still end the server within the drain deadline, with exit 0.
class HalfCloseStopTest : public testing::TestWithParam<std::string> {};

TEST_P(HalfCloseStopTest, StopDuringTheFlushKeepsTheDrainDeadline) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::unix_stream); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  FastRandom random(test_seed());
  const auto input = make_input(random, /*framed=*/false);
  ServerUnderTest running(engine, Listen::unix_stream, {"--protocol", "raw"});
  auto fd = connect_socket(running.address(), SOCK_STREAM, kIoTimeout);
  // Non-blocking: take what the buffers accept (the server stops reading at its output cap).
  std::size_t offered = 0;
  while (offered < input.size()) {
    const ssize_t n = ::send(fd.get(), input.data() + offered, input.size() - offered,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    offered += static_cast<std::size_t>(n);
  }
  ASSERT_GT(offered, 0u);
  ::shutdown(fd.get(), SHUT_WR);
  std::this_thread::sleep_for(milliseconds(300));  // the server reads what it can meanwhile
  const auto start = Clock::now();
  [[maybe_unused]] const auto stats = running.stop_and_check();  // exit 0, nothing left over
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  // The drain deadline plus room for a slow machine: a server flushing without a bound
  // would wait for a reader that never comes.
  EXPECT_LT(took, kDrainTime + milliseconds(4'000)) << "the stop took " << took.count() << " ms";
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& engine : engine_names(Serves::streams)) {
    for (const Listen listen : {Listen::tcp_v4, Listen::unix_stream}) {
      for (const char* protocol : {"raw", "framed"}) {
        cases.emplace_back(engine, listen, protocol);
      }
    }
  }
  return cases;
}

std::string case_name(const testing::TestParamInfo<Case>& param_info) {
  const auto& [engine, listen, protocol] = param_info.param;
  return test_name_part(engine) + "_" + std::string(name_of(listen)) + "_" + protocol;
}

INSTANTIATE_TEST_SUITE_P(Engines, HalfCloseTest, testing::ValuesIn(all_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Engines, HalfCloseStopTest,
                         testing::ValuesIn(engine_names(Serves::streams)),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

}  // namespace
}  // namespace echolab::test
