// Client faults: a reset (SO_LINGER 0) while the server is sending a
// large echo (which would raise SIGPIPE on a server that forgot MSG_NOSIGNAL), a reset
// mid-frame, a half-close after sending (the echoes of complete frames still arrive), and a
// plain close mid-frame. The server stays up, counts the resets, closes only that
// connection, and a well-behaved client is served between every two faults.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"
#include "tests/support/proc_fs.h"
#include "tests/support/engine_test.h"

namespace echolab::test {
namespace {

constexpr milliseconds kIoTimeout{10'000};
constexpr std::size_t kLargeFrame = 512 * 1024;  // over the socket buffers: the echo blocks
constexpr int kRoundsPerFault = 3;

std::vector<std::byte> frames_of(FastRandom& random, int count, std::size_t size) {
  std::vector<std::byte> frames;
  for (int i = 0; i < count; ++i) {
    append_frame(frames, random_bytes(random, size));
  }
  return frames;
}

class ClientFaults : public EngineTest {};

TEST_P(ClientFaults, ServerSurvivesCountsAndClosesOnlyThatConnection) {
  const auto& engine = this->engine();
  const auto seed = this->seed();
  FastRandom& random = this->random();
  ServerUnderTest server(launch_of(engine, {"--max-frame", std::to_string(2 * kLargeFrame)}));
  const auto address = server.address();
  const bool serves_one_at_a_time = one_at_a_time(engine_info(engine));
  // Right after the ready line, before any client: the descriptors of an idle server.
  const int baseline_fds = count_open_fds(server.pid());
  GoodClient good(address, serves_one_at_a_time, random);
  ASSERT_EQ(good.round(1000), "");

  int resets = 0;
  int faults = 0;
  std::uint64_t bytes_abandoned = 0;  // sent by faulty clients that reset or left before their echo
  for (int round = 0; round < kRoundsPerFault; ++round) {
    {  // reset while the server is sending a large echo nobody reads
      auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
      const auto frames = frames_of(random, 4, kLargeFrame);
      // The server stops reading once its output is capped, so this send may block: a
      // short timeout ends it, and what was sent is enough to have the server mid-echo.
      set_io_timeouts(fd.get(), milliseconds(300));
      const auto sent = send_all(fd.get(), frames);
      std::vector<std::byte> some(4096);
      set_io_timeouts(fd.get(), kIoTimeout);
      ASSERT_TRUE(receive_exact(fd.get(), some).ok()) << "the echo never started";
      bytes_abandoned += sent.bytes;
      close_with_reset(fd);
      ++resets;
      ++faults;
    }
    EXPECT_EQ(good.round(1000), "") << "after a reset mid-echo";
    ASSERT_TRUE(server.running()) << "the server died (SIGPIPE?): " << server.describe();
    {  // reset mid-frame
      auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
      auto frame = make_frame(random_bytes(random, 1000));
      frame.resize(500);
      ASSERT_TRUE(send_all(fd.get(), frame).ok());
      bytes_abandoned += frame.size();
      if (serves_one_at_a_time) {
        good.disconnect();
      }
      std::this_thread::sleep_for(milliseconds(20));  // let the server read the half frame
      close_with_reset(fd);
      ++resets;
      ++faults;
    }
    EXPECT_EQ(good.round(1000), "") << "after a reset mid-frame";
    {  // half-close after sending: complete frames are still echoed, then the server closes
      auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
      const auto frames = frames_of(random, 5, 3000);
      auto with_tail = frames;
      const auto tail = make_frame(random_bytes(random, 100));
      with_tail.insert(with_tail.end(), tail.begin(), tail.begin() + 50);  // an incomplete one
      ASSERT_TRUE(send_all(fd.get(), with_tail).ok());
      ::shutdown(fd.get(), SHUT_WR);
      std::vector<std::byte> echoed;
      const auto end = read_until_closed(fd.get(), kIoTimeout, &echoed);
      EXPECT_EQ(end.outcome, IoOutcome::closed) << end.describe();
      EXPECT_TRUE(echoed == frames) << "after half-close: " << echoed.size() << " bytes echoed, "
                                    << frames.size() << " expected";
      bytes_abandoned += 50;
      ++faults;
    }
    EXPECT_EQ(good.round(1000), "") << "after a half-close";
    {  // orderly close mid-frame
      auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
      auto frame = make_frame(random_bytes(random, 2000));
      frame.resize(1000);
      ASSERT_TRUE(send_all(fd.get(), frame).ok());
      bytes_abandoned += frame.size();
      ++faults;
    }
    EXPECT_EQ(good.round(1000), "") << "after a close mid-frame";
    ASSERT_TRUE(server.running()) << server.describe();
  }
  good.disconnect();
  // Only the faulty connections were closed, each once: the count returns to its start.
  const int settled = wait_for_fd_count(server.pid(), baseline_fds, milliseconds(3'000));
  EXPECT_EQ(settled, baseline_fds) << "descriptors of the server after the faults";

  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe() << ": " << server.describe();
  EXPECT_TRUE(report.leftovers.empty());
  ASSERT_FALSE(report.stats.is_null());
  const auto peer_resets = stats_counter(report.stats, "peer_resets");
  EXPECT_EQ(peer_resets, static_cast<std::uint64_t>(resets)) << "one per reset connection";
  EXPECT_EQ(stats_counter(report.stats, "connections_closed"),
            stats_counter(report.stats, "connections_accepted"));
  write_case_result({{"case", case_name("client_faults", engine)},
                     {"test", "client_faults"},
                     {"engine", engine},
                     {"faults_injected", faults},
                     {"resets_sent", resets},
                     {"peer_resets_counted", peer_resets},
                     {"bytes_abandoned_by_client", bytes_abandoned},
                     {"leaked_fds_after", settled - baseline_fds},
                     {"zombies_after", report.leftovers.size()},
                     {"exit_signal", report.status->signal},
                     {"seed", seed}});
}

INSTANTIATE_TEST_SUITE_P(Engines, ClientFaults, testing::ValuesIn(engine_names(Serves::streams)),
                         engine_case_name);

}  // namespace
}  // namespace echolab::test
