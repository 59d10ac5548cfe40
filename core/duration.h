#pragma once
// Durations as users write them on command lines: a number and a unit, "50us", "2ms",
// "1.5s", "250ns". One grammar for every flag that takes a time.
#include <chrono>
#include <string_view>

namespace echolab {

// Parses DURATION; `flag` ("--work", "--idle-timeout") names the option in the one-line
// UsageError thrown for a missing unit, a negative value or a value over `max`.
[[nodiscard]] std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view flag,
                                                      std::chrono::nanoseconds max = std::chrono::hours(24));

}  // namespace echolab
