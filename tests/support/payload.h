#pragma once
// Test data: a fast seeded generator (payload bytes are generated per message, megabytes per
// test, so std::mt19937 byte by byte would dominate a debug build's run time) and message
// size plans.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace echolab::test {

// SplitMix64: tiny, fast, and good enough to make every payload distinct.
class FastRandom {
 public:
  explicit FastRandom(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next();
  // Uniform in [0, bound).
  std::uint64_t below(std::uint64_t bound);
  // Uniform in [0, 1).
  double unit();
  void fill(std::span<std::byte> out);

 private:
  std::uint64_t state_;
};

// Log-uniform in [min, max] (min >= 1): every size class is exercised about as often, from
// one byte to the largest, instead of nearly all sizes being large.
[[nodiscard]] std::size_t log_uniform_size(FastRandom& random, std::size_t min, std::size_t max);

// `count` log-uniform sizes in [min, max], with each of `must_include` placed at a random
// distinct position, so the edge sizes (0, 1, the maximum) are always among them.
[[nodiscard]] std::vector<std::size_t> plan_message_sizes(
    FastRandom& random, std::size_t count, std::size_t min, std::size_t max,
    const std::vector<std::size_t>& must_include);

// The run's base seed: $ECHOLAB_TEST_SEED if set (to replay a failure), else random.
// Tests print it in their failure messages.
[[nodiscard]] std::uint64_t test_seed();

}  // namespace echolab::test
