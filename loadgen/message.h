#pragma once
// The messages the load generator sends, and how their echoes are checked.
//
// Wire format (all integers big-endian):
//   framed: [payload length: 4][connection id: 4][sequence: 8][checksum: 4][body]
//   raw:                       [connection id: 4][sequence: 8][checksum: 4][body]
// The body is a slice of a pseudo-random pool that starts at an offset derived from the
// sequence number, so neighbouring messages differ and an echo of the wrong message never
// looks right. The checksum covers id, sequence and body: it tells a *damaged* echo (its
// checksum no longer matches its own bytes) from an intact echo of a *different* message
// (a dropped or reordered one), which a byte comparison alone cannot. Every echoed byte is
// still compared with what was sent.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/framing.h"
#include "core/session.h"
#include "loadgen/config.h"

namespace echolab {

inline constexpr std::size_t kMessageHeaderSize = 16;  // id + sequence + checksum

[[nodiscard]] constexpr std::size_t wire_size(Protocol protocol, std::size_t payload) {
  return payload + (protocol == Protocol::framed ? kFrameHeaderSize : 0);
}

struct MessageId {
  std::uint32_t connection = 0;
  std::uint64_t sequence = 0;
  std::uint32_t checksum = 0;
};

class PayloadPool {
 public:
  PayloadPool(std::uint32_t max_payload, std::uint64_t seed);
  // The body of message (connection, sequence): `length` bytes, never a copy.
  [[nodiscard]] std::span<const std::byte> body(std::uint32_t connection, std::uint64_t sequence,
                                                std::size_t length) const noexcept;

 private:
  std::vector<std::byte> bytes_;
};

[[nodiscard]] std::uint32_t message_checksum(std::uint32_t connection, std::uint64_t sequence,
                                             std::span<const std::byte> body) noexcept;

// Writes message (connection, sequence) of `payload` bytes into out[0, wire_size) and
// returns its checksum.
std::uint32_t encode_message(std::byte* out, Protocol protocol, std::uint32_t connection,
                             std::uint64_t sequence, std::uint32_t payload,
                             const PayloadPool& pool) noexcept;

// What a message looked like when sent: enough to re-create every byte of it.
struct ExpectedMessage {
  Protocol protocol = Protocol::framed;
  std::uint32_t connection = 0;
  std::uint64_t sequence = 0;
  std::uint32_t checksum = 0;
  std::uint32_t payload = 0;
};

// Compares `received`, the bytes at [offset, offset + size) of an echoed wire message, with
// the same bytes of `expected`. Returns how many differ (0: identical). `received` must not
// run past the message's wire size.
[[nodiscard]] std::size_t count_mismatches(std::span<const std::byte> received, std::size_t offset,
                                           const ExpectedMessage& expected,
                                           const PayloadPool& pool) noexcept;

// The id fields of a payload (frame header excluded); nullopt if it is too short.
[[nodiscard]] std::optional<MessageId> read_message_id(std::span<const std::byte> payload) noexcept;

// True if the payload's checksum matches its own id and body: an undamaged message.
[[nodiscard]] bool is_intact(std::span<const std::byte> payload) noexcept;

// Message sizes drawn from a SizeDistribution by a small deterministic generator.
class SizeSampler {
 public:
  SizeSampler(const SizeDistribution& distribution, std::uint64_t seed);
  [[nodiscard]] std::uint32_t next() noexcept;

 private:
  std::uint64_t random() noexcept;

  const SizeDistribution* distribution_;
  std::uint64_t state_;
  std::vector<double> cumulative_;  // weighted: running sums of the weights
};

}  // namespace echolab
