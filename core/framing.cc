#include "core/framing.h"

namespace echolab {

void encode_frame_header(std::uint32_t length, std::byte* out) {
  out[0] = static_cast<std::byte>(length >> 24);
  out[1] = static_cast<std::byte>(length >> 16);
  out[2] = static_cast<std::byte>(length >> 8);
  out[3] = static_cast<std::byte>(length);
}

std::uint32_t decode_frame_header(const std::byte* in) {
  return std::to_integer<std::uint32_t>(in[0]) << 24 | std::to_integer<std::uint32_t>(in[1]) << 16 |
         std::to_integer<std::uint32_t>(in[2]) << 8 | std::to_integer<std::uint32_t>(in[3]);
}

}  // namespace echolab
