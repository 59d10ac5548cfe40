#pragma once
// Simulated service cost per message, so the concurrency models can be compared when the
// service is CPU-bound ("cpu:50us": that much computation on the serving thread) or
// I/O-bound ("sleep:2ms": a blocking wait, as for a database call).
#include <chrono>
#include <string>
#include <string_view>

namespace echolab {

struct WorkSpec {
  enum class Kind { none, cpu, sleep };
  Kind kind = Kind::none;
  std::chrono::nanoseconds duration{0};

  [[nodiscard]] bool none() const { return kind == Kind::none || duration.count() == 0; }
};

// Parses "none", "cpu:DURATION" or "sleep:DURATION", DURATION being a number with a unit
// of ns, us, ms or s ("50us", "2ms", "1.5ms"). Throws UsageError with a one-line reason.
[[nodiscard]] WorkSpec parse_work(std::string_view text);
[[nodiscard]] std::string to_string(const WorkSpec& work);

// Measures how fast this machine runs the CPU kernel. Called once at start-up, before any
// worker thread or process exists, so that perform_work never needs a clock for cpu work.
void calibrate_cpu_work();

// Does the work of one message on the calling thread. cpu: a fixed number of iterations of a
// hashing loop sized to take `duration` of CPU time; sleep: clock_nanosleep for `duration`,
// resumed after signals. Both go in slices (about 1 ms of iterations, at most 20 ms of
// sleep) and give up when a stop's work cutoff passes (work_cutoff_passed() in
// core/stop.h), so a stop's drain deadline holds whatever the configured duration.
// Returns false when the work was cut off that way. Never throws.
[[nodiscard]] bool perform_work(const WorkSpec& work);

// Iterations of the CPU kernel per microsecond, as calibrated (for reports).
[[nodiscard]] double cpu_work_iterations_per_us();

}  // namespace echolab
