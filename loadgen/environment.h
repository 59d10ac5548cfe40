#pragma once
// The environment a result was measured in, in the spirit of Google Benchmark's "context"
// block: host, CPUs, kernel, load, and how this binary was built. Read from uname(2),
// /proc/cpuinfo and /proc/loadavg; a field that cannot be read is left out, never guessed.
#include <chrono>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace echolab {

[[nodiscard]] nlohmann::json collect_context();

// "2024-05-01T12:34:56.789Z"
[[nodiscard]] std::string format_utc(std::chrono::system_clock::time_point when);

}  // namespace echolab
