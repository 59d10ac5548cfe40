#include "core/work.h"

#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace echolab {
namespace {

using namespace std::chrono_literals;

std::int64_t now_ns(clockid_t clock) {
  timespec t{};
  ::clock_gettime(clock, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

TEST(ParseWork, KindsAndUnits) {
  EXPECT_TRUE(parse_work("none").none());
  const WorkSpec cpu = parse_work("cpu:50us");
  EXPECT_EQ(cpu.kind, WorkSpec::Kind::cpu);
  EXPECT_EQ(cpu.duration, 50us);
  EXPECT_EQ(parse_work("sleep:2ms").duration, 2ms);
  EXPECT_EQ(parse_work("sleep:1.5ms").duration, 1500us);
  EXPECT_EQ(parse_work("cpu:100ns").duration, 100ns);
  EXPECT_EQ(parse_work("sleep:1s").duration, 1s);
}

TEST(ParseWork, RejectsNonsense) {
  for (const char* bad : {"cpu", "cpu:", "cpu:5", "cpu:5 us", "gpu:5us", "sleep:-1ms", "sleep:1h", "cpu:61s"}) {
    EXPECT_THROW(static_cast<void>(parse_work(bad)), UsageError) << bad;
  }
}

// Accuracy is asserted on the thread's CPU time, which other tenants of this machine cannot
// inflate, and with the median of several runs; the bounds are wide because the point is
// "about the asked amount of computation", not a timing benchmark.
TEST(PerformWork, CpuWorkTakesAboutTheAskedCpuTime) {
  calibrate_cpu_work();
  ASSERT_GT(cpu_work_iterations_per_us(), 0.0);
  const WorkSpec work = parse_work("cpu:2ms");
  std::vector<std::int64_t> samples;
  for (int i = 0; i < 7; ++i) {
    const std::int64_t start = now_ns(CLOCK_THREAD_CPUTIME_ID);
    EXPECT_TRUE(perform_work(work));
    samples.push_back(now_ns(CLOCK_THREAD_CPUTIME_ID) - start);
  }
  std::nth_element(samples.begin(), samples.begin() + 3, samples.end());
  const double median_ms = static_cast<double>(samples[3]) / 1e6;
  EXPECT_GT(median_ms, 1.0);
  EXPECT_LT(median_ms, 6.0);
}

// 50 ms: more than one of the slices the sleep is cut into.
TEST(PerformWork, SleepWaitsAtLeastTheAskedTimeWithoutUsingCpu) {
  const WorkSpec work = parse_work("sleep:50ms");
  const std::int64_t wall = now_ns(CLOCK_MONOTONIC);
  const std::int64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID);
  EXPECT_TRUE(perform_work(work));
  EXPECT_GE(now_ns(CLOCK_MONOTONIC) - wall, 50'000'000);
  EXPECT_LT(now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu, 10'000'000);
}

TEST(PerformWork, NoneReturnsAtOnce) {
  const std::int64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID);
  EXPECT_TRUE(perform_work(WorkSpec{}));
  EXPECT_LT(now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu, 1'000'000);
}

}  // namespace
}  // namespace echolab
