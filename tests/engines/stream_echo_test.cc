// Every stream engine, over TCP/IPv4, TCP/IPv6 and unix-stream: 32 concurrent clients each
// send 500 framed messages of random content and log-uniform random size (0 to 64 KiB, the
// edges always included), and every echoed byte is checked. Then the server must stop
// cleanly on SIGTERM (see ServerUnderTest) and its stats must account for the load. The
// engines that offer --accept-lock run the same cases again with it and --accept-wait poll.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr int kClients = 32;
constexpr std::size_t kMessagesPerClient = 500;
constexpr std::size_t kMaxPayload = 65536;
// Generous: the iterative engine serves one client at a time, so the last of 32 clients
// waits for the other 31 to finish before its first echo.
constexpr std::chrono::milliseconds kIoTimeout{60'000};

struct ClientReport {
  std::size_t echoed = 0;
  std::uint64_t payload_bytes = 0;
  std::string error;
};

ClientReport run_client(const SocketAddress& address, std::uint64_t seed) {
  ClientReport report;
  FastRandom random(seed);
  // Zero-length frames are valid and must be echoed: several, plus the 1-byte and 64 KiB edges.
  const auto sizes =
      plan_message_sizes(random, kMessagesPerClient, 1, kMaxPayload, {0, 0, 0, 1, kMaxPayload});
  std::vector<std::byte> payload;
  std::vector<std::byte> scratch;
  try {
    auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
    for (const auto size : sizes) {
      payload.resize(size);
      random.fill(payload);
      const auto frame = make_frame(payload);
      if (auto error = check_echo(fd.get(), frame, scratch); !error.empty()) {
        report.error = "message " + std::to_string(report.echoed) + " (" + std::to_string(size) +
                       " bytes): " + error;
        return report;
      }
      ++report.echoed;
      report.payload_bytes += size;
    }
  } catch (const std::exception& error) {
    report.error = error.what();
  }
  return report;
}

using EngineOn = std::tuple<std::string, Listen>;

void check_concurrent_echo(const std::string& engine, Listen listen, const std::vector<std::string>& flags) {
  if (const auto reason = skip_reason(engine, listen); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const auto seed = test_seed();
  SCOPED_TRACE("ECHOLAB_TEST_SEED=" + std::to_string(seed));
  ServerUnderTest running(engine, listen, flags);
  const auto address = running.address();

  std::vector<ClientReport> reports(kClients);
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back([&, i] { reports[i] = run_client(address, seed + i); });
    }
  }
  std::uint64_t payload_bytes = 0;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(reports[i].error, "") << "client " << i;
    payload_bytes += reports[i].payload_bytes;
  }
  const std::uint64_t expected_messages = std::uint64_t{kClients} * kMessagesPerClient;

  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_GE(stats_counter(stats, "messages"), expected_messages);
  EXPECT_GE(stats_counter(stats, "connections_accepted"), std::uint64_t{kClients});
  EXPECT_EQ(stats_counter(stats, "connections_closed"), stats_counter(stats, "connections_accepted"));
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 0u);
  // Nothing failed in this run: a stop that interrupts accept() or recv() is no error.
  for (const char* name : {"accept_errors", "io_errors", "spawn_errors", "peer_resets"}) {
    EXPECT_EQ(stats_counter(stats, name), 0u) << "counters." << name;
  }
  EXPECT_GE(stats_counter(stats, "bytes_in"), payload_bytes);
  EXPECT_EQ(stats_counter(stats, "bytes_out"), stats_counter(stats, "bytes_in")) << "every byte is echoed";
  // Engines that count the herd report every accept; the others report nothing, rather than
  // a zero nobody measured.
  const bool herd_counted = engine_info(engine).offers_accept_lock;
  ASSERT_EQ(stats.contains("accept_wakeups"), herd_counted) << stats.dump();
  EXPECT_EQ(stats["counters"].contains("accept_wakeups_idle"), herd_counted) << stats.dump();
  for (const auto& worker : stats["workers"]) {
    EXPECT_EQ(worker.contains("accept_wakeups_idle"), herd_counted) << worker.dump();
  }
  if (herd_counted) {
    EXPECT_EQ(stats["accept_wakeups"]["accepts"].get<std::uint64_t>(), stats_counter(stats, "connections_accepted"));
  }
}

std::string case_name(const testing::TestParamInfo<EngineOn>& case_info) {
  return test_name_part(std::get<0>(case_info.param)) + "_" + std::string(name_of(std::get<1>(case_info.param)));
}

class StreamEchoTest : public testing::TestWithParam<EngineOn> {};

TEST_P(StreamEchoTest, ConcurrentClientsGetEveryFrameBackThenServerStopsCleanly) {
  check_concurrent_echo(std::get<0>(GetParam()), std::get<1>(GetParam()), {});
}

INSTANTIATE_TEST_SUITE_P(Engines, StreamEchoTest,
                         testing::Combine(testing::ValuesIn(engine_names(Serves::streams)),
                                          testing::ValuesIn(kStreamListens)),
                         case_name);

// With --accept-lock the workers take turns in accept() (or in poll(), --accept-wait poll);
// a stop must still reach them all, those waiting on the lock included.
struct AcceptVariant {
  std::string name;
  std::vector<std::string> flags;
};
const std::vector<AcceptVariant> kAcceptVariants = {
    {"lock", {"--accept-lock"}},
    {"poll", {"--accept-wait", "poll"}},
    {"lock_poll", {"--accept-lock", "--accept-wait", "poll"}},
};
using EngineOnWith = std::tuple<std::string, Listen, AcceptVariant>;

class StreamEchoAcceptTest : public testing::TestWithParam<EngineOnWith> {};

TEST_P(StreamEchoAcceptTest, ConcurrentClientsGetEveryFrameBackThenServerStopsCleanly) {
  check_concurrent_echo(std::get<0>(GetParam()), std::get<1>(GetParam()), std::get<2>(GetParam()).flags);
}

INSTANTIATE_TEST_SUITE_P(Engines, StreamEchoAcceptTest,
                         testing::Combine(testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                                            return engine.offers_accept_lock;
                                          })),
                                          testing::ValuesIn(kStreamListens), testing::ValuesIn(kAcceptVariants)),
                         [](const testing::TestParamInfo<EngineOnWith>& case_info) {
                           return test_name_part(std::get<0>(case_info.param)) + "_" +
                                  std::string(name_of(std::get<1>(case_info.param))) + "_" +
                                  std::get<2>(case_info.param).name;
                         });

}  // namespace
}  // namespace echolab::test
