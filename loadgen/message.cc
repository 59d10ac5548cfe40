#include "loadgen/message.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace echolab {
namespace {

// Spread of body start offsets in the pool: consecutive messages start 4 KiB apart at most.
constexpr std::size_t kPoolSpread = 4096;

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void put_u32(std::byte* out, std::uint32_t value) noexcept {
  for (int i = 3; i >= 0; --i) {
    out[i] = static_cast<std::byte>(value & 0xFF);
    value >>= 8;
  }
}

void put_u64(std::byte* out, std::uint64_t value) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<std::byte>(value & 0xFF);
    value >>= 8;
  }
}

std::uint64_t get_be(const std::byte* in, int bytes) noexcept {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value = value << 8 | std::to_integer<std::uint64_t>(in[i]);
  }
  return value;
}

// The fixed bytes in front of the body: frame header (framed only) and the id fields.
struct Prefix {
  std::array<std::byte, kFrameHeaderSize + kMessageHeaderSize> bytes{};
  std::size_t size = 0;
};

Prefix make_prefix(Protocol protocol, std::uint32_t connection, std::uint64_t sequence,
                   std::uint32_t checksum, std::uint32_t payload) noexcept {
  Prefix prefix;
  std::byte* out = prefix.bytes.data();
  if (protocol == Protocol::framed) {
    encode_frame_header(payload, out);
    out += kFrameHeaderSize;
  }
  put_u32(out, connection);
  put_u64(out + 4, sequence);
  put_u32(out + 12, checksum);
  prefix.size = static_cast<std::size_t>(out + kMessageHeaderSize - prefix.bytes.data());
  return prefix;
}

std::size_t count_different(const std::byte* a, const std::byte* b, std::size_t n) noexcept {
  if (std::memcmp(a, b, n) == 0) {
    return 0;
  }
  std::size_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    differ += a[i] != b[i] ? 1 : 0;
  }
  return differ;
}

}  // namespace

PayloadPool::PayloadPool(std::uint32_t max_payload, std::uint64_t seed)
    : bytes_(max_payload + kPoolSpread + 8) {
  std::uint64_t state = seed ^ 0x6563686F6C6162ull;  // "echolab"
  for (std::size_t i = 0; i < bytes_.size(); i += 8) {
    const std::uint64_t word = splitmix64(state);
    std::memcpy(bytes_.data() + i, &word, std::min<std::size_t>(8, bytes_.size() - i));
  }
}

std::span<const std::byte> PayloadPool::body(std::uint32_t connection, std::uint64_t sequence,
                                             std::size_t length) const noexcept {
  const std::size_t offset = (sequence * 2654435761ull + connection * 40503ull) % kPoolSpread;
  return {bytes_.data() + offset, length};
}

std::uint32_t message_checksum(std::uint32_t connection, std::uint64_t sequence,
                               std::span<const std::byte> body) noexcept {
  // Fletcher-style sums over 8-byte words: order-sensitive, a few cycles per word.
  std::uint64_t a = 0x9E3779B97F4A7C15ull ^ connection;
  std::uint64_t b = sequence;
  std::size_t i = 0;
  for (; i + 8 <= body.size(); i += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, body.data() + i, 8);
    a += word;
    b += a;
  }
  if (i < body.size()) {
    std::uint64_t word = 0;
    std::memcpy(&word, body.data() + i, body.size() - i);
    a += word ^ (body.size() - i);
    b += a;
  }
  std::uint64_t h = a ^ (b * 0xFF51AFD7ED558CCDull) ^ body.size();
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

std::uint32_t encode_message(std::byte* out, Protocol protocol, std::uint32_t connection,
                             std::uint64_t sequence, std::uint32_t payload,
                             const PayloadPool& pool) noexcept {
  const auto body = pool.body(connection, sequence, payload - kMessageHeaderSize);
  const std::uint32_t checksum = message_checksum(connection, sequence, body);
  const Prefix prefix = make_prefix(protocol, connection, sequence, checksum, payload);
  std::memcpy(out, prefix.bytes.data(), prefix.size);
  std::memcpy(out + prefix.size, body.data(), body.size());
  return checksum;
}

std::size_t count_mismatches(std::span<const std::byte> received, std::size_t offset,
                             const ExpectedMessage& expected, const PayloadPool& pool) noexcept {
  const Prefix prefix = make_prefix(expected.protocol, expected.connection, expected.sequence,
                                    expected.checksum, expected.payload);
  std::size_t differ = 0;
  std::size_t pos = 0;  // in `received`
  if (offset < prefix.size) {
    const std::size_t n = std::min(prefix.size - offset, received.size());
    differ += count_different(received.data(), prefix.bytes.data() + offset, n);
    pos = n;
  }
  if (pos < received.size()) {
    const std::size_t body_offset = offset + pos - prefix.size;
    const auto body = pool.body(expected.connection, expected.sequence,
                                expected.payload - kMessageHeaderSize);
    differ += count_different(received.data() + pos, body.data() + body_offset,
                              received.size() - pos);
  }
  return differ;
}

std::optional<MessageId> read_message_id(std::span<const std::byte> payload) noexcept {
  if (payload.size() < kMessageHeaderSize) {
    return std::nullopt;
  }
  MessageId id;
  id.connection = static_cast<std::uint32_t>(get_be(payload.data(), 4));
  id.sequence = get_be(payload.data() + 4, 8);
  id.checksum = static_cast<std::uint32_t>(get_be(payload.data() + 12, 4));
  return id;
}

bool is_intact(std::span<const std::byte> payload) noexcept {
  const auto id = read_message_id(payload);
  return id && message_checksum(id->connection, id->sequence,
                                payload.subspan(kMessageHeaderSize)) == id->checksum;
}

SizeSampler::SizeSampler(const SizeDistribution& distribution, std::uint64_t seed)
    : distribution_(&distribution), state_(seed) {
  double sum = 0;
  for (const auto& choice : distribution.choices) {
    sum += choice.weight;
    cumulative_.push_back(sum);
  }
}

std::uint64_t SizeSampler::random() noexcept { return splitmix64(state_); }

std::uint32_t SizeSampler::next() noexcept {
  const SizeDistribution& d = *distribution_;
  switch (d.kind) {
    case SizeDistribution::Kind::fixed:
      return d.min;
    case SizeDistribution::Kind::uniform:
      return d.min + static_cast<std::uint32_t>(random() % (std::uint64_t{d.max} - d.min + 1));
    case SizeDistribution::Kind::weighted: {
      // 53 random bits -> [0, total); the first running sum above it picks the size.
      const double x = static_cast<double>(random() >> 11) * 0x1.0p-53 * cumulative_.back();
      const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), x);
      const auto index = std::min<std::size_t>(
          static_cast<std::size_t>(it - cumulative_.begin()), d.choices.size() - 1);
      return d.choices[index].size;
    }
  }
  return d.min;
}

}  // namespace echolab
