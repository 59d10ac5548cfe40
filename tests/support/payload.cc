#include "tests/support/payload.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

namespace echolab::test {

std::uint64_t FastRandom::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t FastRandom::below(std::uint64_t bound) { return bound == 0 ? 0 : next() % bound; }

double FastRandom::unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

void FastRandom::fill(std::span<std::byte> out) {
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    const std::uint64_t word = next();
    std::memcpy(out.data() + i, &word, 8);
  }
  if (i < out.size()) {
    const std::uint64_t word = next();
    std::memcpy(out.data() + i, &word, out.size() - i);
  }
}

std::size_t log_uniform_size(FastRandom& random, std::size_t min, std::size_t max) {
  const double low = std::log(static_cast<double>(min));
  const double high = std::log(static_cast<double>(max) + 1.0);
  const auto size = static_cast<std::size_t>(std::exp(low + random.unit() * (high - low)));
  return std::clamp(size, min, max);
}

std::vector<std::size_t> plan_message_sizes(FastRandom& random, std::size_t count, std::size_t min,
                                            std::size_t max,
                                            const std::vector<std::size_t>& must_include) {
  std::vector<std::size_t> sizes(count);
  for (auto& size : sizes) {
    size = log_uniform_size(random, min, max);
  }
  // A partial Fisher-Yates over positions picks distinct slots for the required sizes.
  std::vector<std::size_t> positions(count);
  for (std::size_t i = 0; i < count; ++i) {
    positions[i] = i;
  }
  for (std::size_t i = 0; i < must_include.size() && i < count; ++i) {
    std::swap(positions[i], positions[i + random.below(count - i)]);
    sizes[positions[i]] = must_include[i];
  }
  return sizes;
}

std::uint64_t test_seed() {
  static const std::uint64_t seed = [] {
    if (const char* text = std::getenv("ECHOLAB_TEST_SEED")) {
      return static_cast<std::uint64_t>(std::stoull(text));
    }
    std::random_device device;
    return static_cast<std::uint64_t>(device()) << 32 | device();
  }();
  return seed;
}

}  // namespace echolab::test
