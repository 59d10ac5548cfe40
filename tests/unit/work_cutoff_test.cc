// Service work once a stop's work cutoff has passed: perform_work gives up instead of running
// its full duration, and a session answers the frames whose work was done and counts the
// rest unanswered. Its own binary, because the stop it requests lasts for the process.
#include <gtest/gtest.h>
#include <time.h>

#include <cstring>
#include <thread>
#include <vector>

#include "core/session.h"
#include "core/stop.h"

namespace echolab {
namespace {

using namespace std::chrono_literals;

std::int64_t monotonic_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1'000'000;
}

void stop_once() {
  static const bool stopped = [] {
    install_stop_handlers();
    request_stop();
    return true;
  }();
  ASSERT_TRUE(stopped && stop_requested());
}

// Runs first (gtest keeps definition order): the stop starts as the frames arrive.
TEST(WorkCutoff, FramesWorkedOnAreAnsweredTheRestCountedUnanswered) {
  stop_once();
  ProtocolConfig config;
  config.work = parse_work("sleep:100ms");
  StreamSession session(config);
  Counters counters;
  constexpr std::size_t kFrames = 40;  // 4 s of work: far past the cutoff
  const std::vector<std::byte> frames(kFrames * kFrameHeaderSize);  // empty frames
  auto space = session.receive_buffer();
  ASSERT_GE(space.size(), frames.size());
  std::memcpy(space.data(), frames.data(), frames.size());
  const std::int64_t start = monotonic_ms();
  EXPECT_FALSE(session.commit_received(frames.size(), counters)) << "the connection must close";
  // Correctness, not timing: the full work would take 4 s.
  EXPECT_LT(monotonic_ms() - start, 3'500);
  EXPECT_TRUE(work_cutoff_passed());
  EXPECT_LT(counters.messages, kFrames);
  EXPECT_EQ(counters.messages + counters.messages_unanswered, kFrames);
  EXPECT_EQ(session.output().size(), counters.messages * kFrameHeaderSize);
  EXPECT_FALSE(session.wants_input());
  session.commit_sent(session.output().size(), counters);
  EXPECT_EQ(counters.bytes_out, counters.messages * kFrameHeaderSize);
}

TEST(WorkCutoff, PerformWorkGivesUp) {
  stop_once();
  for (int i = 0; i < 400 && !work_cutoff_passed(); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(work_cutoff_passed());
  const std::int64_t start = monotonic_ms();
  EXPECT_FALSE(perform_work(parse_work("sleep:30s")));
  EXPECT_FALSE(perform_work(parse_work("cpu:30s")));
  EXPECT_LT(monotonic_ms() - start, 10'000);
  EXPECT_TRUE(perform_work(WorkSpec{})) << "no work is never cut off";
}

TEST(WorkCutoff, RawReadsAndDatagramsAreUnanswered) {
  stop_once();
  ProtocolConfig config;
  config.protocol = Protocol::raw;
  config.work = parse_work("sleep:1s");
  StreamSession session(config);
  Counters counters;
  auto space = session.receive_buffer();
  std::memset(space.data(), 'x', 10);
  EXPECT_FALSE(session.commit_received(10, counters));
  EXPECT_FALSE(session.has_output());
  EXPECT_EQ(counters.messages_unanswered, 1u);

  std::vector<std::byte> datagram(10);
  EXPECT_FALSE(accept_datagram(datagram, false, config, counters));
  EXPECT_EQ(counters.messages_unanswered, 2u);
  EXPECT_EQ(counters.messages, 0u);
}

}  // namespace
}  // namespace echolab
