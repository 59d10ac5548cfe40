// A readiness loop draining at a stop (sending what it owes to a client that does not read,
// for up to kDrainTime) must sleep between its slices, not spin: the stop's wake-up pipe,
// which each loop keeps readable for the loops of its sibling threads, must not keep waking
// the loop that is draining. Counted by the server's own wait calls (select, poll,
// epoll_wait, io_uring_enter): a spinning drain makes tens of thousands in its two seconds, a sleeping one
// about twenty per loop.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/stop.h"
#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr int kWorkers = 2;
// Far above a sleeping drain (kDrainTime / 100 ms slices, per loop) plus the waits that
// served the data before the stop; far below what a loop spinning for kDrainTime makes.
constexpr std::uint64_t kMaxWaits = 3'000;
constexpr std::size_t kFlood = 32 * 1024 * 1024;

std::vector<std::string> multiplexed_engines() {
  std::vector<std::string> names;
  for (const EngineInfo& engine : engines()) {
    if (engine.concurrency == Concurrency::multiplexed) {
      names.emplace_back(engine.name);
    }
  }
  return names;
}

class DrainWakeupsTest : public testing::TestWithParam<std::string> {};

TEST_P(DrainWakeupsTest, ADrainingLoopSleepsBetweenSlices) {
  const std::string& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::tcp_v4); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  std::vector<std::string> flags = {"--protocol", "raw"};
  if (find_engine(engine)->cap_option == "--workers") {
    flags.insert(flags.end(), {"--workers", std::to_string(kWorkers)});
  }
  ServerUnderTest server(engine, Listen::tcp_v4, flags);
  // Sends until every buffer between us is full and the server owes echoes it cannot send.
  auto fd = connect_socket(server.address(), SOCK_STREAM, std::chrono::milliseconds(500));
  const std::vector<std::byte> flood(kFlood, std::byte{0x5a});
  const IoResult sent = send_all(fd.get(), flood);
  ASSERT_EQ(sent.outcome, IoOutcome::timeout) << sent.describe();
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  const auto& syscalls = stats["syscalls"];
  const std::uint64_t waits = syscalls["select"].get<std::uint64_t>() + syscalls["poll"].get<std::uint64_t>() +
                              syscalls["epoll_wait"].get<std::uint64_t>() +
                              syscalls.value("io_uring_enter", std::uint64_t{0});
  EXPECT_LT(waits, kMaxWaits) << "wait calls over a " << kDrainTime.count() << " s drain: " << syscalls.dump();
}

INSTANTIATE_TEST_SUITE_P(Engines, DrainWakeupsTest, testing::ValuesIn(multiplexed_engines()),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

}  // namespace
}  // namespace echolab::test
