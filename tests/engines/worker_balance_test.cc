// The multi-loop engines (a readiness loop per --workers thread) report each loop's share in
// the stats' "workers" spread: one entry per worker, whose connections add up to those
// made. Where the kernel spreads connections over listeners of their own (SO_REUSEPORT),
// more than one loop must get some; with one shared listener (EPOLLEXCLUSIVE) the kernel
// may favour one loop, so only the sum is checked. The pools that offer --accept-lock report
// the same spread, and the herd counters: accepts equal the connections made.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr int kWorkers = 4;
constexpr int kConnections = 64;
constexpr std::chrono::milliseconds kIoTimeout{10'000};

// `count` connections, one after another, each echoing one random frame and closing.
void echo_once_per_connection(ServerUnderTest& server, int count) {
  FastRandom random(test_seed());
  std::vector<std::byte> scratch;
  for (int i = 0; i < count; ++i) {
    auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    std::vector<std::byte> payload(1 + random.below(256));
    random.fill(payload);
    ASSERT_EQ(check_echo(fd.get(), make_frame(payload), scratch), "") << "connection " << i;
  }
}

std::vector<std::string> multi_loop_engines() {
  std::vector<std::string> names;
  for (const EngineInfo& engine : engines()) {
    if (engine.concurrency == Concurrency::multiplexed && engine.cap_option == "--workers") {
      names.emplace_back(engine.name);
    }
  }
  return names;
}

class WorkerBalanceTest : public testing::TestWithParam<std::string> {};

TEST_P(WorkerBalanceTest, EveryWorkerReportsItsShareOfConnections) {
  const std::string& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::tcp_v4); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  ServerUnderTest server(engine, Listen::tcp_v4, {"--workers", std::to_string(kWorkers)});
  echo_once_per_connection(server, kConnections);
  if (HasFailure()) {
    return;
  }
  server.expect_no_fd_leak();
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  ASSERT_TRUE(stats.contains("workers")) << stats.dump();
  const auto& workers = stats["workers"];
  ASSERT_EQ(workers.size(), static_cast<std::size_t>(kWorkers)) << workers.dump();
  std::uint64_t connections = 0;
  std::uint64_t messages = 0;
  int workers_with_connections = 0;
  for (const auto& worker : workers) {
    connections += worker["connections"].get<std::uint64_t>();
    messages += worker["messages"].get<std::uint64_t>();
    workers_with_connections += worker["connections"].get<std::uint64_t>() > 0 ? 1 : 0;
  }
  EXPECT_EQ(connections, static_cast<std::uint64_t>(kConnections)) << workers.dump();
  EXPECT_EQ(messages, static_cast<std::uint64_t>(kConnections)) << workers.dump();
  EXPECT_EQ(stats_counter(stats, "connections_accepted"), static_cast<std::uint64_t>(kConnections));
  if (find_engine(engine)->reuse_port_listener) {
    // The 4-tuple hash puts all 64 on one of 4 listeners with probability 4^-63.
    EXPECT_GT(workers_with_connections, 1) << workers.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, WorkerBalanceTest, testing::ValuesIn(multi_loop_engines()),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

class AcceptLockCountersTest : public testing::TestWithParam<std::string> {};

TEST_P(AcceptLockCountersTest, AcceptsEqualConnectionsAndEveryWorkerReportsItsShare) {
  const std::string& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::tcp_v4); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  ServerUnderTest server(engine, Listen::tcp_v4, {"--workers", std::to_string(kWorkers), "--accept-lock"});
  echo_once_per_connection(server, kConnections);
  if (HasFailure()) {
    return;
  }
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats.value("accept_lock", false), true) << stats.dump();
  ASSERT_TRUE(stats.contains("accept_wakeups")) << stats.dump();
  const auto& herd = stats["accept_wakeups"];
  EXPECT_EQ(herd["accepts"].get<std::uint64_t>(), static_cast<std::uint64_t>(kConnections)) << herd.dump();
  EXPECT_EQ(herd["idle"].get<std::uint64_t>(), stats_counter(stats, "accept_wakeups_idle")) << herd.dump();
  const auto& workers = stats["workers"];
  std::uint64_t connections = 0;
  std::uint64_t idle = 0;
  for (const auto& worker : workers) {
    connections += worker["connections"].get<std::uint64_t>();
    idle += worker["accept_wakeups_idle"].get<std::uint64_t>();
  }
  EXPECT_EQ(connections, static_cast<std::uint64_t>(kConnections)) << workers.dump();
  EXPECT_EQ(idle, stats_counter(stats, "accept_wakeups_idle")) << workers.dump();
}

INSTANTIATE_TEST_SUITE_P(Engines, AcceptLockCountersTest,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.offers_accept_lock;
                         })),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

// The thundering herd, counted: workers waiting in poll() on one listener are all woken by
// each connection, and all but the one that takes it find nothing (accept_wakeups_idle). With
// the accept lock only its holder polls, so none wakes idle. Connections come one at a time,
// well apart, so that every worker is back waiting when the next arrives.
class AcceptHerdTest : public testing::TestWithParam<std::string> {};

constexpr int kSpacedConnections = 16;

std::uint64_t idle_wakeups(const std::string& engine, bool lock) {
  std::vector<std::string> flags = {"--workers", std::to_string(kWorkers), "--accept-wait", "poll"};
  if (lock) {
    flags.emplace_back("--accept-lock");
  }
  ServerUnderTest server(engine, Listen::tcp_v4, flags);
  FastRandom random(test_seed());
  std::vector<std::byte> scratch;
  for (int i = 0; i < kSpacedConnections; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    std::vector<std::byte> payload(16);
    random.fill(payload);
    EXPECT_EQ(check_echo(fd.get(), make_frame(payload), scratch), "") << "connection " << i;
  }
  const nlohmann::json stats = server.stop_and_check();
  if (stats.is_null()) {
    ADD_FAILURE() << "no stats";
    return 0;
  }
  EXPECT_EQ(stats["accept_wakeups"]["accepts"].get<std::uint64_t>(), std::uint64_t{kSpacedConnections});
  return stats_counter(stats, "accept_wakeups_idle");
}

TEST_P(AcceptHerdTest, PollWakesIdleWorkersUnlessTheLockLeavesOnePoller) {
  const std::string& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::tcp_v4); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  // Each connection wakes the kWorkers pollers and one takes it: kWorkers - 1 idle wake-ups
  // per connection are expected, at least one asserted.
  EXPECT_GE(idle_wakeups(engine, false), std::uint64_t{kSpacedConnections}) << "no herd seen without the lock";
  // None expected; a stray sleep in the kernel (a page fault) would count, hence the slack.
  EXPECT_LE(idle_wakeups(engine, true), 2u) << "workers woke idle behind the lock";
}

INSTANTIATE_TEST_SUITE_P(Engines, AcceptHerdTest,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.offers_accept_lock;
                         })),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

}  // namespace
}  // namespace echolab::test
