#include "core/duration.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/address.h"
#include "core/error.h"

namespace echolab {

std::chrono::nanoseconds parse_duration(std::string_view text, std::string_view flag,
                                        std::chrono::nanoseconds max, BareNumber bare) {
  const auto bad = [&](std::string_view why) {
    return UsageError("bad " + std::string(flag) + " '" + printable(text) + "': " + std::string(why));
  };
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [unit, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || unit == begin || !std::isfinite(value) || value < 0) {
    throw bad("expected a duration such as 50us, 2ms or 1.5s");
  }
  const std::string_view suffix(unit, static_cast<std::size_t>(end - unit));
  double scale;
  if (suffix == "ns") {
    scale = 1;
  } else if (suffix == "us") {
    scale = 1e3;
  } else if (suffix == "ms") {
    scale = 1e6;
  } else if (suffix == "s" || (suffix.empty() && bare == BareNumber::seconds)) {
    scale = 1e9;
  } else if (suffix == "m" || suffix == "min") {
    scale = 60e9;
  } else {
    throw bad("the duration needs a unit: ns, us, ms, s or min");
  }
  const double nanoseconds = value * scale;
  if (nanoseconds > static_cast<double>(max.count())) {
    throw bad("at most " + std::to_string(max.count() / 1'000'000'000) + "s");
  }
  // A positive value that would round to zero would turn into "none" or "never" (as 0 means
  // for --idle-timeout) instead of what was asked.
  if (nanoseconds > 0 && nanoseconds < 1) {
    throw bad("at least 1ns, or 0");
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(nanoseconds)));
}

}  // namespace echolab
