#pragma once
// Durations as users write them on command lines: a number and a unit, "50us", "2ms",
// "1.5s", "250ns". One grammar for every flag that takes a time.
#include <chrono>
#include <string_view>

namespace echolab {

// What a number without a unit means: an error (where the scale is not obvious, as in
// "--work cpu:5"), or seconds (run lengths: "--duration 10").
enum class BareNumber { rejected, seconds };

// Parses DURATION: a non-negative number and one of ns, us, ms, s, m or min. `flag`
// ("--work", "--idle-timeout") names the option in the one-line UsageError thrown for a
// missing or unknown unit, a negative value, a value over `max`, or one above zero but under
// 1ns (it would read as 0).
[[nodiscard]] std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view flag,
                                                      std::chrono::nanoseconds max = std::chrono::hours(24),
                                                      BareNumber bare = BareNumber::rejected);

}  // namespace echolab
