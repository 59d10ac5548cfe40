// Short reads and writes and EINTR everywhere. The server runs with
// io_shim preloaded (in its environment only), which makes every socket send and receive
// move 1..7 bytes and fails one call in four with EINTR; every engine must still echo
// byte-exact: random frames on streams, datagrams (which can only get the EINTR) whole.
// An engine whose row says its socket I/O does not go through libc (io_uring) is skipped:
// the shim cannot see it; short_send_test covers its short sends with real small buffers.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"
#include "tests/support/engine_test.h"

namespace echolab::test {
namespace {

constexpr milliseconds kIoTimeout{20'000};

ServerLaunch shimmed(const std::string& engine, const TempDir& dir, std::vector<std::string> flags) {
  ServerLaunch launch = launch_of(engine, std::move(flags));
  launch.spawn.environment = {"LD_PRELOAD=" ECHOLAB_IO_SHIM,
                              "ECHOLAB_SHIM_REPORT=" + dir.file("shim.json"),
                              // An ASan server must accept a library preloaded ahead of it.
                              "ASAN_OPTIONS=verify_asan_link_order=0"};
  return launch;
}

nlohmann::json shim_report(const TempDir& dir) {
  try {
    return read_json_file(dir.file("shim.json"));
  } catch (const std::exception& error) {
    ADD_FAILURE() << "the shim wrote no report (not loaded?): " << error.what();
    return nlohmann::json::object();
  }
}

void expect_clean_exit(ServerUnderTest& server, StopReport& report) {
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe() << ": " << server.describe();
  EXPECT_TRUE(report.leftovers.empty());
}

class ShortStreamIo : public EngineTest {};

TEST_P(ShortStreamIo, EchoesByteExact) {
  const auto& engine = this->engine();
  if (!info().socket_io_through_libc) {
    // Its short sends are covered without a shim: short_send_test fills small socket buffers.
    GTEST_SKIP() << "engine " << engine << " moves its socket bytes in the kernel (io_uring), where an "
                 << "LD_PRELOAD shim of libc's send/recv cannot cut them short";
  }
  const auto seed = this->seed();
  FastRandom& random = this->random();
  TempDir shim_dir("echolab-shim");
  ServerUnderTest server(shimmed(engine, shim_dir, {}));
  std::uint64_t bytes_echoed = 0;
  int frames = 0;
  // Two connections one after the other (the iterative engine serves one at a time), each
  // with single frames and bursts of several frames in one write.
  for (int connection = 0; connection < 2; ++connection) {
    auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    std::vector<std::byte> scratch;
    const auto sizes = plan_message_sizes(random, 24, 1, 8 * 1024, {0, 1, 7, 8, 8 * 1024});
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::vector<std::byte> burst;
      const std::size_t in_burst = i % 3 == 2 ? 3 : 1;
      for (std::size_t k = 0; k < in_burst; ++k) {
        append_frame(burst, random_bytes(random, sizes[i]));
        ++frames;
      }
      ASSERT_EQ(check_echo(fd.get(), burst, scratch), "")
          << "frame of " << sizes[i] << " bytes x" << in_burst << ": " << server.describe();
      bytes_echoed += burst.size();
    }
  }
  auto report = server.stop();
  expect_clean_exit(server, report);
  const auto shim = shim_report(shim_dir);
  EXPECT_GT(shim.value("eintr_injected", 0u), 0u);
  EXPECT_GT(shim.value("short_counts_injected", 0u), 0u);
  write_case_result({{"case", case_name("short_io_stream", engine)},
                     {"test", "short_io_stream"},
                     {"engine", engine},
                     {"frames_echoed", frames},
                     {"bytes_echoed", bytes_echoed},
                     {"bytes_lost", 0},
                     {"faults_injected", shim.value("eintr_injected", 0u) + shim.value("short_counts_injected", 0u)},
                     {"eintr_injected", shim.value("eintr_injected", 0u)},
                     {"short_counts_injected", shim.value("short_counts_injected", 0u)},
                     {"socket_calls_seen", shim.value("socket_calls", 0u)},
                     {"seed", seed}});
}

INSTANTIATE_TEST_SUITE_P(Engines, ShortStreamIo, testing::ValuesIn(engine_names(Serves::streams)),
                         engine_case_name);

class ShortDatagramIo : public EngineTest {};

TEST_P(ShortDatagramIo, EchoesWholeDatagramsDespiteEintr) {
  const auto& engine = this->engine();
  const auto seed = this->seed();
  FastRandom& random = this->random();
  TempDir shim_dir("echolab-shim");
  ServerUnderTest server(shimmed(engine, shim_dir, {}));
  auto fd = connect_socket(server.address(), SOCK_DGRAM, kIoTimeout);
  std::vector<std::byte> scratch;
  const ResendPolicy policy;
  const auto sizes = plan_message_sizes(random, 100, 4, 8 * 1024, {4, 5, 8 * 1024});
  int resends = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    // A framed datagram whose payload starts with its sequence number: the id of exchange.
    auto payload = random_bytes(random, sizes[i] - 4);
    for (std::size_t b = 0; b < std::min<std::size_t>(4, payload.size()); ++b) {
      payload[b] = static_cast<std::byte>(i >> (8 * b));
    }
    const auto datagram = make_frame(payload);
    const auto result = exchange_datagram(fd.get(), datagram, std::min<std::size_t>(8, datagram.size()),
                                          policy, scratch);
    ASSERT_TRUE(result.ok) << "datagram " << i << " of " << sizes[i] << " bytes: " << result.error;
    resends += result.attempts - 1;
  }
  auto report = server.stop();
  expect_clean_exit(server, report);
  const auto shim = shim_report(shim_dir);
  EXPECT_GT(shim.value("eintr_injected", 0u), 0u);
  EXPECT_EQ(shim.value("short_counts_injected", 0u), 0u) << "datagrams cannot be cut";
  write_case_result({{"case", case_name("short_io_datagram", engine)},
                     {"test", "short_io_datagram"},
                     {"engine", engine},
                     {"datagrams_echoed", sizes.size()},
                     {"resends", resends},
                     {"faults_injected", shim.value("eintr_injected", 0u)},
                     {"eintr_injected", shim.value("eintr_injected", 0u)},
                     {"socket_calls_seen", shim.value("socket_calls", 0u)},
                     {"seed", seed}});
}

INSTANTIATE_TEST_SUITE_P(Engines, ShortDatagramIo, testing::ValuesIn(engine_names(Serves::datagrams)),
                         engine_case_name);

}  // namespace
}  // namespace echolab::test
