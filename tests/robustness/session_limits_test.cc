// Limits the protocol core promises, checked on every stream engine as a real process:
//
// - Frames complete before a protocol error in the same read are echoed, then the connection
//   closes; the counters agree with what the client received.
// - One partial max-size frame costs the server about its size (stream_memory_bound), not
//   twice it.
// - --idle-timeout drops a raw-mode client trickling a byte now and then (every read is a
//   message there, so counting messages cannot tell it from a live client), while a client
//   echoing lines stays served.
// - A stop holds its drain deadline whatever the --work: frames worked on are answered, the
//   rest counted in messages_unanswered, and the server exits well before a parent's
//   SIGKILL (5 s) would.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/session.h"
#include "core/stop.h"
#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/proc_fs.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr milliseconds kIoTimeout{10'000};

std::string engine_name(const testing::TestParamInfo<std::string>& info) {
  return test_name_part(info.param);
}

#define SKIP_UNAVAILABLE(engine)                                   \
  if (const auto reason = skip_reason(engine); !reason.empty()) { \
    GTEST_SKIP() << reason;                                        \
  }

// Stops the server and returns its stats (null, with a failure, if it did not exit cleanly).
nlohmann::json stats_after_stop(ServerUnderTest& server) {
  const auto report = server.stop();
  EXPECT_TRUE(report.status && report.status->success())
      << (report.status ? report.status->describe() : "no exit") << ": " << server.describe();
  EXPECT_TRUE(report.leftovers.empty()) << report.leftovers.size() << " processes left behind";
  return report.stats;
}

// ---------------------------------------------------------------------------------------
class FlushBeforeProtocolError : public testing::TestWithParam<std::string> {};

TEST_P(FlushBeforeProtocolError, CompleteFramesAreEchoedThenTheConnectionCloses) {
  SKIP_UNAVAILABLE(GetParam());
  ServerUnderTest server(launch_of(GetParam(), {"--max-frame", "1000"}));
  std::vector<std::byte> input;
  append_frame(input, std::vector<std::byte>(20, std::byte{7}));
  append_frame(input, {});
  const std::size_t complete = input.size();
  input.resize(complete + 4);
  write_be32(5000, input.data() + complete);  // over --max-frame: a protocol error

  auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  ASSERT_TRUE(send_all(fd.get(), input).ok());  // one write: one read on the server
  std::vector<std::byte> echoed;
  const auto end = read_until_closed(fd.get(), kIoTimeout, &echoed);
  EXPECT_TRUE(end.outcome == IoOutcome::closed || end.outcome == IoOutcome::reset) << end.describe();
  ASSERT_EQ(echoed.size(), complete) << "the frames before the bad header must be echoed";
  EXPECT_TRUE(std::equal(echoed.begin(), echoed.end(), input.begin()));
  fd.reset();

  const auto stats = stats_after_stop(server);
  EXPECT_EQ(stats_counter(stats, "messages"), 2u);
  EXPECT_EQ(stats_counter(stats, "bytes_out"), complete);
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 1u);
}

INSTANTIATE_TEST_SUITE_P(Engines, FlushBeforeProtocolError, testing::ValuesIn(engine_names(Serves::streams)),
                         engine_name);

// ---------------------------------------------------------------------------------------
class PartialFrameMemory : public testing::TestWithParam<std::string> {};

// VmRSS, or VmHWM (the peak, which catches a buffer copied into its replacement), of every
// process of the tree.
std::map<pid_t, std::uint64_t> rss_of_tree(pid_t root, std::string_view field = "VmRSS") {
  std::map<pid_t, std::uint64_t> rss;
  for (const pid_t pid : live_tree(root)) {
    rss[pid] = proc_status_field(pid, field).value_or(0);
  }
  return rss;
}

// Largest RSS growth (KiB) of any process of the tree present in both samples.
std::uint64_t growth_kib(const std::map<pid_t, std::uint64_t>& before, const std::map<pid_t, std::uint64_t>& after) {
  std::uint64_t growth = 0;
  for (const auto& [pid, kib] : after) {
    if (const auto it = before.find(pid); it != before.end() && kib > it->second) {
      growth = std::max(growth, kib - it->second);
    }
  }
  return growth;
}

TEST_P(PartialFrameMemory, OneMaxSizeFrameInProgressCostsAboutItsSize) {
  SKIP_UNAVAILABLE(GetParam());
  if (kServerUnderAsan) {
    GTEST_SKIP() << "RSS growth means nothing under AddressSanitizer";
  }
  constexpr std::uint32_t kMaxFrame = 8u << 20;
  ProtocolConfig config;  // the server's defaults, but for --max-frame
  config.max_frame = kMaxFrame;
  const std::uint64_t bound_kib = stream_memory_bound(config) / 1024;
  constexpr std::uint64_t kSlackKib = 2048;  // allocator, stacks, page tables
  ServerUnderTest server(launch_of(GetParam(), {"--max-frame", std::to_string(kMaxFrame)}));
  auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  // One small echo first: the process or thread serving this connection exists and has its
  // usual buffer before the baseline is taken.
  std::vector<std::byte> scratch;
  ASSERT_EQ(check_echo(fd.get(), make_frame(std::vector<std::byte>(100, std::byte{1})), scratch), "");
  const auto before = rss_of_tree(server.pid());

  std::vector<std::byte> partial;
  append_frame(partial, std::vector<std::byte>(kMaxFrame, std::byte{3}));
  partial.pop_back();  // never complete: the server holds it
  ASSERT_TRUE(send_all(fd.get(), partial).ok());
  // The server has it all once its RSS stops growing (bounded wait); then its peak counts.
  std::uint64_t growth = 0;
  auto last_change = Clock::now();
  for (const auto start = Clock::now(); Clock::now() - start < std::chrono::seconds(5) &&
                                        Clock::now() - last_change < milliseconds(500);) {
    std::this_thread::sleep_for(milliseconds(20));
    if (const auto now = growth_kib(before, rss_of_tree(server.pid())); now > growth) {
      growth = now;
      last_change = Clock::now();
    }
  }
  EXPECT_GE(growth, kMaxFrame / 1024 / 2) << "the server did not take the frame in";
  growth = std::max(growth, growth_kib(before, rss_of_tree(server.pid(), "VmHWM")));
  EXPECT_LE(growth, bound_kib + kSlackKib)
      << "KiB for one partial frame of " << kMaxFrame / 1024 << " KiB (bound " << bound_kib << ")";
  write_case_result({{"case", case_name("partial_frame_memory", GetParam())},
                     {"test", "partial_frame_memory"},
                     {"engine", GetParam()},
                     {"max_frame_kib", kMaxFrame / 1024},
                     {"bound_kib", bound_kib},
                     {"rss_growth_kib", growth}});
  fd.reset();
  static_cast<void>(stats_after_stop(server));
}

INSTANTIATE_TEST_SUITE_P(Engines, PartialFrameMemory, testing::ValuesIn(engine_names(Serves::streams)), engine_name);

// ---------------------------------------------------------------------------------------
class RawIdleTimeout : public testing::TestWithParam<std::string> {};

constexpr milliseconds kIdleTimeout{500};

// Sends one byte every `every` until the server closes the connection or `limit` passes;
// returns how long the server took to drop it (or `limit`).
milliseconds trickle_until_dropped(int fd, milliseconds every, milliseconds limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    const char byte = 'x';
    if (::send(fd, &byte, 1, MSG_NOSIGNAL) < 0) {
      break;  // EPIPE / ECONNRESET: dropped
    }
    std::this_thread::sleep_for(every);
    char sink[64];
    const ssize_t n = ::recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      break;
    }
  }
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

TEST_P(RawIdleTimeout, ATricklerIsDroppedALineClientIsNot) {
  SKIP_UNAVAILABLE(GetParam());
  ServerUnderTest server(launch_of(GetParam(), {"--protocol", "raw", "--idle-timeout",
                                                std::to_string(kIdleTimeout.count()) + "ms"}));
  {
    auto trickler = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    const auto held = trickle_until_dropped(trickler.get(), milliseconds(100), milliseconds(6'000));
    ASSERT_LT(held, milliseconds(6'000)) << "a client sending a byte every 100 ms held the connection";
  }
  // A client echoing lines of text, one every 100 ms for four idle timeouts, is served
  // throughout.
  auto client = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  for (int i = 0; i < 20; ++i) {
    std::string line = "line " + std::to_string(1000 + i) + " of an nc session\n";
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(line.data()), line.size());
    ASSERT_TRUE(send_all(client.get(), bytes).ok()) << "line " << i;
    std::vector<std::byte> echo(line.size());
    const auto got = receive_exact(client.get(), echo);
    ASSERT_TRUE(got.ok()) << "line " << i << ": " << got.describe();
    ASSERT_TRUE(std::equal(echo.begin(), echo.end(), bytes.begin())) << "line " << i;
    std::this_thread::sleep_for(milliseconds(100));
  }
  client.reset();
  const auto stats = stats_after_stop(server);
  EXPECT_EQ(stats_counter(stats, "idle_timeouts"), 1u) << "the trickler only";
}

INSTANTIATE_TEST_SUITE_P(Engines, RawIdleTimeout, testing::ValuesIn(engine_names(Serves::streams)), engine_name);

// ---------------------------------------------------------------------------------------
class StopDuringWork : public testing::TestWithParam<std::string> {};

TEST_P(StopDuringWork, TheDrainDeadlineHoldsAndEveryFrameIsAccountedFor) {
  SKIP_UNAVAILABLE(GetParam());
  constexpr std::size_t kFrames = 400;  // 20 s of work at 50 ms each
  ServerUnderTest server(launch_of(GetParam(), {"--work", "sleep:50ms"}));
  auto fd = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
  const std::vector<std::byte> frames(kFrames * 4);  // empty frames: 4 zero bytes each
  ASSERT_TRUE(send_all(fd.get(), frames).ok());
  // The server has read them and is working: some thread or child is asleep in the work.
  ASSERT_TRUE(wait_for_a_thread_in(server.server().pid(), {SYS_clock_nanosleep, SYS_nanosleep}, kIoTimeout))
      << server.describe();

  ASSERT_TRUE(server.server().process().send_signal(SIGTERM));
  const auto stopped_at = Clock::now();
  std::vector<std::byte> echoed;
  const auto end = read_until_closed(fd.get(), kIoTimeout, &echoed);
  EXPECT_TRUE(end.outcome == IoOutcome::closed || end.outcome == IoOutcome::reset) << end.describe();
  const auto status = server.server().process().wait_for_exit(kIoTimeout);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - stopped_at);
  ASSERT_TRUE(status) << "no exit within 10 s of SIGTERM";
  EXPECT_TRUE(status->success()) << status->describe();
  // kDrainTime plus slack for a loaded machine, and below the 5 s after which the pool and
  // fork parents SIGKILL their children.
  EXPECT_LT(took, kDrainTime + milliseconds(2'000)) << "the stop took " << took.count() << " ms";

  const auto stats = stats_after_stop(server);
  const auto messages = stats_counter(stats, "messages");
  const auto unanswered = stats_counter(stats, "messages_unanswered");
  // All 1,600 bytes were in one segment, read at once: none is left in the kernel buffer.
  EXPECT_EQ(stats_counter(stats, "bytes_in"), frames.size());
  EXPECT_EQ(messages + unanswered, kFrames);
  EXPECT_GT(messages, 0u) << "frames worked on before the cutoff must be answered";
  EXPECT_GT(unanswered, 0u);
  EXPECT_EQ(echoed.size(), messages * 4) << "the client gets exactly the frames counted answered";
  EXPECT_EQ(stats_counter(stats, "bytes_out"), echoed.size());
  EXPECT_TRUE(std::all_of(echoed.begin(), echoed.end(), [](std::byte b) { return b == std::byte{0}; }));
  write_case_result({{"case", case_name("stop_during_work", GetParam())},
                     {"test", "stop_during_work"},
                     {"engine", GetParam()},
                     {"frames_sent", kFrames},
                     {"messages_answered", messages},
                     {"messages_unanswered", unanswered},
                     {"bytes_lost", frames.size() - echoed.size() - unanswered * 4},
                     {"stop_ms", took.count()}});
}

INSTANTIATE_TEST_SUITE_P(Engines, StopDuringWork, testing::ValuesIn(engine_names(Serves::streams)), engine_name);

}  // namespace
}  // namespace echolab::test
