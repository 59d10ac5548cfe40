// Slow and stuck clients, on every stream engine as a real process:
//
// Slowloris: clients that connect, send 3 of the 4 length bytes, then a byte now and then,
// fill the engine's connection cap. With --idle-timeout they must all be dropped and counted
// (idle_timeouts), while a well-behaved client run by echolab-loadgen alongside is
// eventually served. Its latency during the attack is the finding, reported, never
// asserted: a pool or capped engine makes it wait in the backlog until the slow ones go.
//
// Non-reader: a client that sends without ever reading its echoes. The server must stop
// reading from it (back-pressure) instead of buffering: its memory stays within the output
// cap plus a frame plus slack, whatever the client pushes. Another client is still served,
// and --idle-timeout finally drops the non-reader.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/engine_cases.h"
#include "tests/support/case_result.h"
#include "tests/support/loadgen_runner.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kIdleTimeout{2'000};
constexpr milliseconds kDribbleEvery{250};
constexpr std::uint32_t kSlowFrameLength = 1'000;  // never completed: a byte per dribble

// How many slow clients fill an engine, and the flags that set its cap. Pools and capped
// engines are filled exactly; readiness loops have no cap (select's FD_SETSIZE is far
// above), so 200 stand for "many".
struct Cap {
  int slow_clients;
  std::vector<std::string> flags;
};

Cap cap_of(const EngineInfo& engine) {
  switch (engine.concurrency) {
    case Concurrency::one_at_a_time:
      return {1, {}};
    case Concurrency::pool:
      return {4, cap_flags(engine, 4)};
    case Concurrency::per_connection:
      return {32, cap_flags(engine, 32)};
    case Concurrency::multiplexed:
      return {200, {}};
  }
  return {8, {}};
}

// True once the server has closed `fd`, found without reading (a read would take data the
// test wants left unread): a FIN shows as POLLRDHUP, an RST as POLLERR/POLLHUP.
bool closed_by_peer(int fd) {
  pollfd pfd{fd, POLLRDHUP, 0};
  if (::poll(&pfd, 1, 0) <= 0) {
    return false;
  }
  return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

std::string millis(milliseconds duration) { return std::to_string(duration.count()) + "ms"; }

struct SlowClient {
  Fd fd;
  std::vector<std::byte> frame;  // what it has yet to send, a byte at a time
  std::size_t next = 3;          // bytes sent so far
  Clock::time_point connected;
  std::optional<Clock::time_point> dropped;
};

class SlowlorisTest : public testing::TestWithParam<std::string> {};

TEST_P(SlowlorisTest, SlowClientsAreDroppedAndCountedAndALegitClientIsServed) {
  const std::string& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const Cap cap = cap_of(engine_info(engine));
  std::vector<std::string> flags = cap.flags;
  flags.insert(flags.end(), {"--idle-timeout", millis(kIdleTimeout)});
  ServerUnderTest server(launch_of(engine, flags));
  const auto address = server.address();

  std::vector<SlowClient> slow(static_cast<std::size_t>(cap.slow_clients));
  for (auto& client : slow) {
    client.fd = connect_socket(address, SOCK_STREAM, milliseconds(5'000));
    client.frame.resize(4 + kSlowFrameLength);
    write_be32(kSlowFrameLength, client.frame.data());
    client.connected = Clock::now();
    const auto sent = send_all(client.fd.get(), std::span(client.frame).first(3));
    ASSERT_TRUE(sent.ok()) << "slow client's first 3 bytes: " << sent.describe();
  }
  // Let the engine take them all in before the legitimate client comes: only then is the
  // cap full. Waiting less would only make the attack milder, never the test wrong.
  std::this_thread::sleep_for(milliseconds(500));

  const TempDir loadgen_dir("echolab-loadgen");
  LoadgenRun legit(loadgen_dir, {"--quiet", "--no-status", "--target", server.ready().address, "--mode", "closed", "--connections",
                    "1", "--warmup", "0s", "--duration", "4s", "--size", "64", "--timeout",
                    "20s"});

  // Dribble a byte to every slow client that is still open, until the server has dropped
  // them all. Iterative takes them one after the other, each for the idle timeout.
  const auto deadline = Clock::now() + kIdleTimeout * (cap.slow_clients + 2) + milliseconds(20'000);
  std::size_t open = slow.size();
  while (open > 0 && Clock::now() < deadline) {
    for (auto& client : slow) {
      if (client.dropped) {
        continue;
      }
      if (closed_by_peer(client.fd.get())) {
        client.dropped = Clock::now();
        --open;
        continue;
      }
      if (client.next < client.frame.size()) {
        // MSG_NOSIGNAL: a connection the server just closed must not kill the test.
        if (::send(client.fd.get(), &client.frame[client.next], 1, MSG_NOSIGNAL | MSG_DONTWAIT) ==
            1) {
          ++client.next;
        }
      }
    }
    std::this_thread::sleep_for(kDribbleEvery);
  }
  EXPECT_EQ(open, 0u) << open << " of " << slow.size()
                      << " slow clients never dropped by the server";
  milliseconds longest_hold{0};
  for (const auto& client : slow) {
    if (client.dropped) {
      longest_hold = std::max(
          longest_hold, std::chrono::duration_cast<milliseconds>(*client.dropped - client.connected));
    }
  }

  const auto outcome = legit.finish(milliseconds(60'000));
  ASSERT_FALSE(outcome.json.is_null()) << "no result: " << outcome.describe();
  const auto& result = outcome.json;
  const auto received = loadgen_count(result, "messages", "received");
  const auto errors = loadgen_count(result, "errors", "total");
  EXPECT_GT(received, 0u) << "the legitimate client was never served: " << outcome.describe();
  EXPECT_EQ(errors, 0u) << "legitimate client's failures: " << result["errors"].dump();

  const std::size_t dropped_by_server = slow.size() - open;
  slow.clear();
  const int leaked = server.leaked_fds();
  EXPECT_EQ(leaked, 0) << "descriptors leaked by the server";
  const StopReport end = server.stop();
  ASSERT_TRUE(end.status.has_value()) << "no exit within the deadline of SIGTERM: " << server.describe();
  EXPECT_TRUE(end.status->success()) << end.status->describe() << ": " << server.describe();
  EXPECT_EQ(end.leftover_processes, 0) << end.leftovers_described;
  ASSERT_FALSE(end.stats.is_null()) << server.describe();
  const auto idle_timeouts = stats_counter(end.stats, "idle_timeouts");
  EXPECT_GE(idle_timeouts, static_cast<std::uint64_t>(cap.slow_clients))
      << "every slow client must be counted as an idle timeout";

  write_case_result({
      {"case", case_name("slowloris", engine)},
      {"test", "slowloris"},
      {"engine", engine},
      {"slow_clients", cap.slow_clients},
      {"cap_flags", cap.flags},
      {"idle_timeout_ms", kIdleTimeout.count()},
      {"slow_clients_dropped_by_server", dropped_by_server},
      {"slow_client_longest_hold_ms", longest_hold.count()},
      {"idle_timeouts", idle_timeouts},
      {"connections_accepted", stats_counter(end.stats, "connections_accepted")},
      {"connections_refused", stats_counter(end.stats, "connections_refused")},
      {"legit_messages", received},
      {"legit_errors", errors},
      {"legit_bytes_lost", errors == 0 ? 0 : loadgen_count(result, "messages", "bytes_sent") -
                                                 loadgen_count(result, "messages", "bytes_received")},
      {"legit_p50_us", loadgen_latency_us(result, "p50_us")},
      {"legit_p99_us", loadgen_latency_us(result, "p99_us")},
      {"legit_max_us", loadgen_latency_us(result, "max_us")},
      {"leaked_fds", leaked},
      {"zombies", end.zombies},
      {"leftover_processes", end.leftover_processes},
  });
}

INSTANTIATE_TEST_SUITE_P(Engines, SlowlorisTest, testing::ValuesIn(engine_names(Serves::streams)),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

// ---------------------------------------------------------------------------------------

constexpr std::size_t kOutputCap = 256 * 1024;
constexpr std::size_t kMaxFrame = 1024 * 1024;  // the server's default --max-frame
constexpr std::size_t kPushGoal = 200u << 20;   // what the non-reader tries to push
constexpr std::size_t kChunkPayload = 64 * 1024;
constexpr milliseconds kNonReaderIdle{2'000};
// Beyond the output cap and one frame: the receive chunk, a new thread's or a fork child's
// first touched pages, malloc's bookkeeping. Kernel socket buffers are not process memory.
constexpr std::size_t kMemorySlack = 4u << 20;

struct NonReaderCase {
  std::string engine;
  std::string protocol;
};

void PrintTo(const NonReaderCase& c, std::ostream* out) { *out << c.engine << '/' << c.protocol; }

std::vector<NonReaderCase> non_reader_cases() {
  std::vector<NonReaderCase> cases;
  for (const auto& engine : engine_names(Serves::streams)) {
    for (const char* protocol : {"framed", "raw"}) {
      cases.push_back({engine, protocol});
    }
  }
  return cases;
}

// Round trips of a well-behaved client (a connection of its own); empty on success.
std::string round_trips(const SocketAddress& address, bool framed, FastRandom& random, int count) {
  auto fd = connect_socket(address, SOCK_STREAM, milliseconds(20'000));
  std::vector<std::byte> scratch;
  for (int i = 0; i < count; ++i) {
    std::vector<std::byte> payload(1 + random.below(4096));
    random.fill(payload);
    if (framed) {
      payload = make_frame(payload);
    }
    if (auto error = check_echo(fd.get(), payload, scratch); !error.empty()) {
      return "round trip " + std::to_string(i) + ": " + error;
    }
  }
  return {};
}

class NonReaderTest : public testing::TestWithParam<NonReaderCase> {};

TEST_P(NonReaderTest, ServerMemoryStaysBoundedAndOthersAreServed) {
  const auto& [engine, protocol] = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const bool framed = protocol == "framed";
  const auto seed = test_seed();
  SCOPED_TRACE("ECHOLAB_TEST_SEED=" + std::to_string(seed));
  FastRandom random(seed);
  std::vector<std::string> flags = {"--protocol", protocol, "--output-cap",
                                    std::to_string(kOutputCap), "--idle-timeout",
                                    millis(kNonReaderIdle)};
  if (const auto& info = engine_info(engine); info.concurrency == Concurrency::pool) {
    const auto workers = cap_flags(info, 2);  // one for the non-reader, one for the rest
    flags.insert(flags.end(), workers.begin(), workers.end());
  }
  ServerUnderTest server(launch_of(engine, flags));
  const auto address = server.address();

  // A first client warms the server up (lazy allocations, a worker's first connection), so
  // the baseline is the memory of a server that has served, not of one just started.
  ASSERT_EQ(round_trips(address, framed, random, 5), "");
  std::this_thread::sleep_for(milliseconds(200));
  const TreeMemory baseline = tree_memory(server.pid());
  TreeMemorySampler sampler(server.pid());

  // One buffer of frames (or raw bytes) pushed again and again: content does not matter,
  // the echo is never read.
  std::vector<std::byte> chunk;
  for (int i = 0; i < 16; ++i) {
    std::vector<std::byte> payload(kChunkPayload);
    random.fill(payload);
    if (framed) {
      append_frame(chunk, payload);
    } else {
      chunk.insert(chunk.end(), payload.begin(), payload.end());
    }
  }
  // A send that moves nothing for half a second means the server stopped reading:
  // back-pressure. (The server's own deadline is longer, so it is still holding the client.)
  auto non_reader = connect_socket(address, SOCK_STREAM, milliseconds(500));
  std::size_t pushed = 0;
  IoOutcome push_end = IoOutcome::ok;
  while (pushed < kPushGoal) {
    const auto sent = send_all(non_reader.get(), chunk);
    pushed += sent.bytes;
    if (!sent.ok()) {
      push_end = sent.outcome;
      break;
    }
  }
  EXPECT_LT(pushed, kPushGoal) << "the server took " << pushed
                               << " bytes from a client that never reads: no back-pressure";
  EXPECT_EQ(push_end, IoOutcome::timeout)
      << "the push should end with the server no longer reading, not with a close";
  // Hold it there a moment, so the sampler sees the server's memory with it stuck.
  std::this_thread::sleep_for(milliseconds(300));

  // The rest of the world is still served. Iterative serves one client at a time: the second
  // client waits in the backlog until --idle-timeout drops the non-reader (its send blocks,
  // SO_SNDTIMEO from the deadline fires); every other engine serves it alongside.
  const bool concurrent = !one_at_a_time(engine_info(engine));
  const std::string served = round_trips(address, framed, random, 10);
  EXPECT_EQ(served, "") << "a second client while a non-reader is connected";
  const bool non_reader_still_open = !closed_by_peer(non_reader.get());

  // And the non-reader is dropped by the idle timeout (bounded wait, no reading).
  bool dropped = false;
  for (const auto deadline = Clock::now() + kNonReaderIdle + milliseconds(20'000);
       !dropped && Clock::now() < deadline; std::this_thread::sleep_for(milliseconds(50))) {
    dropped = closed_by_peer(non_reader.get());
  }
  EXPECT_TRUE(dropped) << "the non-reader was never dropped by --idle-timeout";
  sampler.stop();
  non_reader.reset();

  const std::uint64_t growth_kib =
      sampler.peak_pss_kib() > baseline.pss_kib ? sampler.peak_pss_kib() - baseline.pss_kib : 0;
  const std::size_t bound = kOutputCap + (framed ? kMaxFrame : 0) + kMemorySlack;
  EXPECT_LE(growth_kib * 1024, bound)
      << "server memory grew " << growth_kib << " KiB for one non-reading client (baseline PSS "
      << baseline.pss_kib << " KiB); bound " << bound / 1024 << " KiB";

  const int leaked = server.leaked_fds();
  EXPECT_EQ(leaked, 0) << "descriptors leaked by the server";
  const StopReport end = server.stop();
  ASSERT_TRUE(end.status.has_value()) << "no exit within the deadline of SIGTERM: " << server.describe();
  EXPECT_TRUE(end.status->success()) << end.status->describe() << ": " << server.describe();
  EXPECT_EQ(end.leftover_processes, 0) << end.leftovers_described;
  ASSERT_FALSE(end.stats.is_null()) << server.describe();
  const auto idle_timeouts = stats_counter(end.stats, "idle_timeouts");
  EXPECT_GE(idle_timeouts, 1u) << "the non-reader's drop must be counted";

  write_case_result({
      {"case", case_name(std::string("non_reader_") + protocol, engine)},
      {"test", "non_reader_" + protocol},
      {"engine", engine},
      {"protocol", protocol},
      {"output_cap_bytes", kOutputCap},
      {"push_goal_bytes", kPushGoal},
      {"pushed_bytes", pushed},
      {"server_pss_baseline_kib", baseline.pss_kib},
      {"server_pss_peak_kib", sampler.peak_pss_kib()},
      {"server_rss_peak_kib", sampler.peak_rss_kib()},
      {"peak_rss_per_non_reader_kib", growth_kib},
      {"memory_bound_kib", bound / 1024},
      {"second_client_served", served.empty()},
      {"served_concurrently_by_pattern", concurrent},
      {"non_reader_open_while_second_served", non_reader_still_open},
      {"non_reader_dropped", dropped},
      {"idle_timeouts", idle_timeouts},
      // Every round trip above is checked byte for byte: none lost unless one failed.
      {"bytes_lost", served.empty() ? nlohmann::json(0) : nlohmann::json()},
      {"leaked_fds", leaked},
      {"zombies", end.zombies},
      {"leftover_processes", end.leftover_processes},
  });
}

INSTANTIATE_TEST_SUITE_P(Engines, NonReaderTest, testing::ValuesIn(non_reader_cases()),
                         [](const auto& case_info) {
                           return test_name_part(case_info.param.engine) + "_" + case_info.param.protocol;
                         });

}  // namespace
}  // namespace echolab::test
