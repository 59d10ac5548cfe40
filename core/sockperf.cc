#include "core/sockperf.h"

namespace echolab {
namespace {

// Offsets in the header: sockperf packs it, so the fields follow each other unpadded.
constexpr std::size_t kFlagsAt = 8;
constexpr std::size_t kLengthAt = 10;

std::uint64_t get_be(const std::byte* in, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    value = value << 8 | std::to_integer<std::uint64_t>(in[i]);
  }
  return value;
}

void put_be(std::uint64_t value, std::byte* out, std::size_t bytes) {
  for (std::size_t i = bytes; i-- > 0;) {
    out[i] = static_cast<std::byte>(value & 0xFF);
    value >>= 8;
  }
}

}  // namespace

void encode_sockperf_header(const SockperfHeader& header, std::byte* out) {
  put_be(header.sequence, out, 8);
  put_be(header.flags, out + kFlagsAt, 2);
  put_be(header.length, out + kLengthAt, 4);
}

SockperfHeader decode_sockperf_header(const std::byte* in) {
  return {get_be(in, 8), static_cast<std::uint16_t>(get_be(in + kFlagsAt, 2)),
          static_cast<std::uint32_t>(get_be(in + kLengthAt, 4))};
}

void make_sockperf_reply(std::byte* message) {
  // The flags are big-endian: the client flag lives in their second (low) byte.
  message[kFlagsAt + 1] &= ~static_cast<std::byte>(kSockperfClient);
}

bool SockperfDecoder::header_done() {
  if (length_ < kSockperfHeaderSize || length_ > max_length_) {
    failed_ = true;
    return false;
  }
  remaining_ = length_ - static_cast<std::uint32_t>(kSockperfHeaderSize);
  return true;
}

}  // namespace echolab
