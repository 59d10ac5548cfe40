#include "core/work.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "core/clock.h"
#include "core/duration.h"
#include "core/error.h"
#include "core/stop.h"

namespace echolab {
namespace {

std::atomic<double> g_iterations_per_ns{0.0};

// The CPU kernel: a dependent chain of multiply-xorshift steps the compiler cannot fold
// or vectorise away. Its result is published so the loop is never dead code.
std::atomic<std::uint64_t> g_sink{0};

std::uint64_t spin(std::uint64_t iterations) {
  std::uint64_t x = 0x9E3779B97F4A7C15ull ^ iterations;
  for (std::uint64_t i = 0; i < iterations; ++i) {
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= i;
  }
  return x;
}

// The longest a sleep goes without checking whether a stop cut the work off.
constexpr std::chrono::nanoseconds kSleepSlice = std::chrono::milliseconds(20);

std::int64_t thread_cpu_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

WorkSpec parse_work(std::string_view text) {
  if (text == "none" || text.empty()) {
    return {};
  }
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    throw UsageError("bad --work '" + std::string(text) + "': expected none, cpu:DURATION or sleep:DURATION");
  }
  const std::string_view kind = text.substr(0, colon);
  WorkSpec work;
  if (kind == "cpu") {
    work.kind = WorkSpec::Kind::cpu;
  } else if (kind == "sleep") {
    work.kind = WorkSpec::Kind::sleep;
  } else {
    throw UsageError("bad --work '" + std::string(text) + "': the kind is cpu or sleep");
  }
  work.duration = parse_duration(text.substr(colon + 1), "--work",
                                 std::chrono::seconds(60));
  return work;
}

std::string to_string(const WorkSpec& work) {
  if (work.none()) {
    return "none";
  }
  const std::string kind = work.kind == WorkSpec::Kind::cpu ? "cpu:" : "sleep:";
  return kind + std::to_string(work.duration.count()) + "ns";
}

// Times the kernel in thread CPU time (not wall time, so preemption by the other tenants of
// this machine does not shrink the work), and keeps the fastest of several runs.
void calibrate_cpu_work() {
  constexpr std::uint64_t kIterations = 2'000'000;
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    const std::int64_t start = thread_cpu_ns();
    g_sink.fetch_add(spin(kIterations), std::memory_order_relaxed);
    const std::int64_t elapsed = std::max<std::int64_t>(1, thread_cpu_ns() - start);
    best = std::max(best, static_cast<double>(kIterations) / static_cast<double>(elapsed));
  }
  g_iterations_per_ns.store(best);
}

double cpu_work_iterations_per_us() { return g_iterations_per_ns.load() * 1e3; }

bool perform_work(const WorkSpec& work) {
  if (work.none()) {
    return true;
  }
  if (work.kind == WorkSpec::Kind::cpu) {
    double rate = g_iterations_per_ns.load(std::memory_order_relaxed);
    if (rate == 0) {
      calibrate_cpu_work();
      rate = g_iterations_per_ns.load();
    }
    auto left = static_cast<std::uint64_t>(rate * static_cast<double>(work.duration.count()));
    const auto slice = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(rate * 1e6));
    while (left > 0) {
      if (work_cutoff_passed()) {
        return false;
      }
      const std::uint64_t now = std::min(left, slice);
      g_sink.fetch_add(spin(now), std::memory_order_relaxed);
      left -= now;
    }
    return true;
  }
  // Absolute deadline: a signal interrupting the sleep does not restart the full wait.
  const std::int64_t deadline = monotonic_ns() + work.duration.count();
  for (;;) {
    if (work_cutoff_passed()) {
      return false;
    }
    const std::int64_t now = monotonic_ns();
    if (now >= deadline) {
      return true;
    }
    const std::int64_t until = std::min(deadline, now + kSleepSlice.count());
    const timespec wake{static_cast<time_t>(until / 1'000'000'000), static_cast<long>(until % 1'000'000'000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nullptr) == EINTR) {
    }
  }
}

}  // namespace echolab
