#pragma once
// What the stream harnesses share: how they read libFuzzer's input (byte 0 picks max_frame,
// byte 1 seeds the chunking, the rest is the stream), the pseudo-random chunk sizes they cut
// the stream into, and the check that makes a broken invariant a crash libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

namespace echolab::fuzz {

struct StreamInput {
  std::uint32_t max_frame = 0;  // 1 B .. 1 MiB
  std::uint32_t chunk_seed = 0;
  const std::byte* stream = nullptr;
  std::size_t length = 0;
};

// Nothing for an input too short to hold the two leading bytes.
inline std::optional<StreamInput> split_input(const std::uint8_t* raw, std::size_t size) {
  if (size < 2) {
    return std::nullopt;
  }
  return StreamInput{1u << (raw[0] % 21), raw[1] | 1u, reinterpret_cast<const std::byte*>(raw + 2), size - 2};
}

// A linear congruential sequence: the same input always cuts the stream the same way.
class Chunks {
 public:
  explicit Chunks(std::uint32_t seed) : seed_(seed) {}
  // Advances the sequence; a size from 1 to `spread`.
  std::size_t next(std::size_t spread) {
    seed_ = seed_ * 1103515245u + 12345u;
    return 1 + (seed_ >> 16) % spread;
  }
  // The current state, for a choice made along with the last size.
  [[nodiscard]] std::uint32_t state() const { return seed_; }

 private:
  std::uint32_t seed_;
};

inline void check(bool condition) {
  if (!condition) {
    std::abort();
  }
}

}  // namespace echolab::fuzz
