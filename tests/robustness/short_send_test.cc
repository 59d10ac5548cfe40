// Short sends through real small socket buffers, with no shim: the server's sockets get a
// small SO_SNDBUF (--sndbuf) and the client a small SO_RCVBUF, and the client sends many
// frames without reading, so that the server's sends find room for only part of what it
// owes, again and again. Then the client reads everything: every byte must come back, in
// order. It covers what the LD_PRELOAD shim of short_io_test cannot see (an engine whose
// socket I/O is not libc's: io_uring), and every other stream engine of the registry too.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/engine_cases.h"
#include "tests/support/payload.h"
#include "tests/support/server_under_test.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr int kSmallBuffer = 4096;  // bytes; the kernel doubles it, and keeps a minimum
constexpr milliseconds kIoTimeout{10'000};
// What the client sends before it reads: several times what the small buffers hold, so the
// server must send in many short pieces; yet far under what a blocking engine can take in
// while it waits to send (its socket's receive buffer), so that neither side waits forever.
constexpr std::size_t kFrames = 160;
constexpr std::size_t kMaxPayload = 1024;

using Case = std::tuple<std::string, Listen>;

// A client whose receive buffer is small from the start (set before connect, so TCP
// advertises a small window from its first segment).
Fd connect_small_reader(const SocketAddress& address) {
  Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    throw std::system_error(errno, std::system_category(), "socket");
  }
  const int size = kSmallBuffer;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0) {
    throw std::system_error(errno, std::system_category(), "setsockopt(SO_RCVBUF)");
  }
  if (::connect(fd.get(), address.get(), address.length) != 0) {
    throw std::system_error(errno, std::system_category(), "connect");
  }
  set_io_timeouts(fd.get(), kIoTimeout);
  return fd;
}

class ShortSendTest : public testing::TestWithParam<Case> {};

TEST_P(ShortSendTest, EveryByteComesBackThroughSmallSocketBuffers) {
  const auto& [engine, listen] = GetParam();
  if (const auto reason = skip_reason(engine, listen); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const std::uint64_t seed = test_seed();
  SCOPED_TRACE("ECHOLAB_TEST_SEED=" + std::to_string(seed));
  FastRandom random(seed);
  ServerUnderTest server(engine, listen, {"--sndbuf", std::to_string(kSmallBuffer)});
  Fd fd = connect_small_reader(server.address());

  std::vector<std::byte> sent;
  for (const std::size_t size : plan_message_sizes(random, kFrames, 1, kMaxPayload, {0, 1, kMaxPayload})) {
    std::vector<std::byte> frame;
    append_frame(frame, random_bytes(random, size));
    const IoResult result = send_all(fd.get(), frame);
    ASSERT_TRUE(result.ok()) << "frame " << sent.size() << ": " << result.describe() << ": " << server.describe();
    sent.insert(sent.end(), frame.begin(), frame.end());
  }
  // Let the server fill both small buffers and find no room for the rest before reading.
  std::this_thread::sleep_for(milliseconds(200));
  std::vector<std::byte> received(sent.size());
  const IoResult read = receive_exact(fd.get(), received);
  ASSERT_TRUE(read.ok()) << read.describe() << " of " << sent.size() << " bytes: " << server.describe();
  std::size_t first_difference = 0;
  while (first_difference < sent.size() && sent[first_difference] == received[first_difference]) {
    ++first_difference;
  }
  EXPECT_EQ(first_difference, sent.size()) << "the echo differs from byte " << first_difference;
  fd.reset();

  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "messages"), kFrames);
  EXPECT_EQ(stats_counter(stats, "bytes_in"), sent.size());
  EXPECT_EQ(stats_counter(stats, "bytes_out"), sent.size());
  write_case_result({{"case", case_name("short_send_" + std::string(name_of(listen)), engine)},
                     {"test", "short_send"},
                     {"engine", engine},
                     {"listen", name_of(listen)},
                     {"frames_echoed", kFrames},
                     {"bytes_echoed", sent.size()},
                     {"bytes_lost", sent.size() - first_difference},
                     {"socket_buffer_bytes", kSmallBuffer},
                     {"seed", seed}});
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const std::string& engine : engine_names(Serves::streams)) {
    for (const Listen listen : {Listen::tcp_v4, Listen::unix_stream}) {
      cases.emplace_back(engine, listen);
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Engines, ShortSendTest, testing::ValuesIn(all_cases()),
                         [](const testing::TestParamInfo<Case>& param_info) {
                           return test_name_part(std::get<0>(param_info.param)) + "_" +
                                  std::string(name_of(std::get<1>(param_info.param)));
                         });

}  // namespace
}  // namespace echolab::test
