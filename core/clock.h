// The one clock every layer stamps with: CLOCK_MONOTONIC in nanoseconds (through the vDSO,
// a few tens of nanoseconds; async-signal-safe, so stop handlers may read it too).
#pragma once

#include <time.h>

#include <cstdint>

namespace echolab {

[[nodiscard]] inline std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace echolab
