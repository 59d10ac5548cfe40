#include "core/work.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "core/duration.h"
#include "core/error.h"

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

void perform_work(const WorkSpec& work) {
  if (work.none()) {
    return;
  }
  if (work.kind == WorkSpec::Kind::cpu) {
    double rate = g_iterations_per_ns.load(std::memory_order_relaxed);
    if (rate == 0) {
      calibrate_cpu_work();
      rate = g_iterations_per_ns.load();
    }
    const auto iterations = static_cast<std::uint64_t>(rate * static_cast<double>(work.duration.count()));
    g_sink.fetch_add(spin(iterations), std::memory_order_relaxed);
    return;
  }
  // Absolute deadline: a signal interrupting the sleep does not restart the full wait.
  timespec deadline{};
  ::clock_gettime(CLOCK_MONOTONIC, &deadline);
  const std::int64_t total = deadline.tv_nsec + work.duration.count();
  deadline.tv_sec += total / 1'000'000'000;
  deadline.tv_nsec = total % 1'000'000'000;
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr) == EINTR) {
  }
}

}  // namespace echolab
