// reactor-pool's hand-off, checked from outside: one reactor thread does the I/O and a pool
// of --workers threads the service work, so blocking work (--work sleep) of several
// connections overlaps; replies of one connection come back in request order, byte for
// byte; a connection whose work is in flight is not idle; and a stop waits for work in
// flight up to core/stop.h's cutoff, counting the rest unanswered.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/stop.h"
#include "tests/support/engine_cases.h"
#include "tests/support/payload.h"
#include "tests/support/proc_fs.h"
#include "tests/support/server_under_test.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kEngine = "reactor-pool";
constexpr int kWorkers = 4;
constexpr milliseconds kIoTimeout{10'000};
// A worker in its --work sleep: the frame was received and handed off.
const std::vector<long> kInWork = {SYS_clock_nanosleep, SYS_nanosleep};

std::vector<std::byte> random_frame(FastRandom& random, std::size_t size) {
  std::vector<std::byte> payload(size);
  random.fill(payload);
  return make_frame(payload);
}

class ReactorPoolTest : public testing::TestWithParam<Listen> {
 protected:
  void SetUp() override {
    if (const auto reason = skip_reason(kEngine, GetParam()); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
    seed_ = test_seed();
  }
  std::uint64_t seed_ = 0;
};

// One frame on each of 4 connections, 100 ms of blocking work each: worked on one after the
// other they take 400 ms; on 4 workers about 100. Each connection is bound to its own
// worker (round robin), so each worker must report exactly one job and one connection.
TEST_P(ReactorPoolTest, WorkOfSeveralConnectionsOverlaps) {
  SCOPED_TRACE("ECHOLAB_TEST_SEED=" + std::to_string(seed_));
  FastRandom random(seed_);
  ServerUnderTest server(kEngine, GetParam(), {"--workers", std::to_string(kWorkers), "--work", "sleep:100ms"});
  std::vector<Fd> clients;
  std::vector<std::vector<std::byte>> frames;
  for (int i = 0; i < kWorkers; ++i) {
    clients.push_back(connect_socket(server.address(), SOCK_STREAM, kIoTimeout));
    frames.push_back(random_frame(random, 1 + random.below(4096)));
  }
  const auto start = Clock::now();
  for (int i = 0; i < kWorkers; ++i) {
    ASSERT_TRUE(send_all(clients[i].get(), frames[i]).ok()) << "client " << i;
  }
  std::vector<std::byte> echo;
  for (int i = 0; i < kWorkers; ++i) {
    echo.resize(frames[i].size());
    ASSERT_TRUE(receive_exact(clients[i].get(), echo).ok()) << "client " << i;
    EXPECT_EQ(echo, frames[i]) << "client " << i;
  }
  const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  // Serial work takes at least 400 ms: under 350 ms, some of it overlapped.
  EXPECT_LT(elapsed.count(), 350) << "4 x 100 ms of work took " << elapsed.count() << " ms";
  clients.clear();
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  const auto& workers = stats["workers"];
  ASSERT_EQ(workers.size(), static_cast<std::size_t>(kWorkers)) << workers.dump();
  for (const auto& worker : workers) {
    EXPECT_EQ(worker["messages"], 1) << workers.dump();
    EXPECT_EQ(worker["connections"], 1) << workers.dump();
  }
  EXPECT_EQ(stats_counter(stats, "messages"), static_cast<std::uint64_t>(kWorkers));
  EXPECT_GT(stats["syscalls"]["eventfd_write"].get<std::uint64_t>(), 0u) << stats["syscalls"].dump();
}

// 200 frames of random sizes (the empty frame included) in one write: many are in flight at
// once, and every byte must come back in order. Under 512 KiB in all, so that what is sent
// before anything is read fits the sockets' buffers and the server's output cap.
TEST_P(ReactorPoolTest, PipelinedFramesComeBackInOrder) {
  SCOPED_TRACE("ECHOLAB_TEST_SEED=" + std::to_string(seed_));
  FastRandom random(seed_);
  ServerUnderTest server(kEngine, GetParam(), {"--workers", std::to_string(kWorkers), "--work", "cpu:20us"});
  std::vector<std::byte> frames;
  const auto sizes = plan_message_sizes(random, 200, 1, 2048, {0, 0, 1, 2048});
  for (const auto size : sizes) {
    const auto frame = random_frame(random, size);
    frames.insert(frames.end(), frame.begin(), frame.end());
  }
  std::vector<std::byte> scratch;
  for (int round = 0; round < 3; ++round) {
    auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    ASSERT_EQ(check_echo(fd.get(), frames, scratch), "") << "round " << round;
  }
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "messages"), 3 * sizes.size());
}

// --idle-timeout is about the peer: a connection waiting for 600 ms of work is not idle at
// 200 ms. Once answered, it is idle again and closed after the timeout.
TEST_P(ReactorPoolTest, WorkInFlightIsNotIdle) {
  FastRandom random(seed_);
  ServerUnderTest server(kEngine, GetParam(),
                         {"--workers", "2", "--work", "sleep:600ms", "--idle-timeout", "200ms"});
  auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  std::vector<std::byte> scratch;
  ASSERT_EQ(check_echo(fd.get(), random_frame(random, 100), scratch), "");
  EXPECT_EQ(wait_for_peer_close(fd.get(), milliseconds(5'000)).outcome, IoOutcome::closed);
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "idle_timeouts"), 1u);
  EXPECT_EQ(stats_counter(stats, "messages"), 1u);
}

// A stop waits for work in flight: 800 ms of work, started before the stop, ends before the
// work cutoff, and its reply is sent before the connection closes.
TEST_P(ReactorPoolTest, StopSendsWorkFinishedInTheDrain) {
  FastRandom random(seed_);
  ServerUnderTest server(kEngine, GetParam(), {"--workers", "2", "--work", "sleep:800ms"});
  auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  const auto frame = random_frame(random, 1000);
  ASSERT_TRUE(send_all(fd.get(), frame).ok());
  ASSERT_TRUE(wait_for_a_thread_in(server.pid(), kInWork, kIoTimeout)) << "no worker took the frame";
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  std::vector<std::byte> echo(frame.size());
  ASSERT_TRUE(receive_exact(fd.get(), echo).ok());
  EXPECT_EQ(echo, frame);
  EXPECT_EQ(wait_for_peer_close(fd.get(), milliseconds(5'000)).outcome, IoOutcome::closed);
  const nlohmann::json stats = server.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "messages"), 1u);
  EXPECT_EQ(stats_counter(stats, "messages_unanswered"), 0u);
}

// Work that would end after the cutoff is cut off: no reply, counted unanswered, and the
// server still exits within its drain time.
TEST_P(ReactorPoolTest, StopCutsOffWorkPastTheCutoff) {
  FastRandom random(seed_);
  ServerUnderTest server(kEngine, GetParam(), {"--workers", "2", "--work", "sleep:10s"});
  auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  ASSERT_TRUE(send_all(fd.get(), random_frame(random, 1000)).ok());
  ASSERT_TRUE(wait_for_a_thread_in(server.pid(), kInWork, kIoTimeout)) << "no worker took the frame";
  const auto start = Clock::now();
  const StopReport report = server.stop();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe();
  EXPECT_LT(took, kDrainTime + milliseconds(1'500)) << "a stop must end on time";
  ASSERT_FALSE(report.stats.is_null());
  EXPECT_EQ(stats_counter(report.stats, "messages_unanswered"), 1u);
  EXPECT_EQ(stats_counter(report.stats, "messages"), 0u);
  EXPECT_EQ(stats_counter(report.stats, "bytes_out"), 0u);
  EXPECT_EQ(wait_for_peer_close(fd.get(), milliseconds(1'000)).outcome, IoOutcome::closed);
}

INSTANTIATE_TEST_SUITE_P(Listeners, ReactorPoolTest, testing::Values(Listen::tcp_v4, Listen::unix_stream),
                         [](const auto& case_info) { return std::string(name_of(case_info.param)); });

}  // namespace
}  // namespace echolab::test
