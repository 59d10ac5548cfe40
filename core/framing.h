#pragma once
// The framed protocol: a 4-byte big-endian length, then that many payload bytes.
// FrameDecoder is an incremental scanner: it never copies or allocates, it only tells where
// frames end in whatever chunks the bytes arrive in (one byte at a time or many frames at
// once), so a length over the limit is rejected before a single byte is reserved for it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace echolab {

inline constexpr std::size_t kFrameHeaderSize = 4;
inline constexpr std::uint32_t kDefaultMaxFrame = 1u << 20;

void encode_frame_header(std::uint32_t length, std::byte* out);
[[nodiscard]] std::uint32_t decode_frame_header(const std::byte* in);

class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}

  enum class Status { ok, oversize };

  // Scans `data`, the next bytes of the stream. For each frame that completes inside it,
  // calls on_frame(end, length), `end` being the offset in `data` just past the frame's last
  // byte. Returns oversize (and stops scanning) at a header announcing more than max_frame
  // bytes; the decoder then stays in that state.
  template <typename OnFrame>
  Status scan(std::span<const std::byte> data, OnFrame&& on_frame);

  // True between frames: no header or payload byte of an unfinished frame seen.
  [[nodiscard]] bool at_frame_boundary() const { return header_seen_ == 0 && remaining_ == 0; }
  [[nodiscard]] bool failed() const { return failed_; }
  // Payload bytes still missing from the current frame (0 when waiting for a header).
  [[nodiscard]] std::uint32_t remaining() const { return remaining_; }
  [[nodiscard]] std::uint32_t max_frame() const { return max_frame_; }
  // The length announced by the header that failed (for error reports).
  [[nodiscard]] std::uint32_t rejected_length() const { return length_; }

 private:
  std::uint32_t max_frame_;
  std::uint32_t length_ = 0;     // length of the frame being read
  std::uint32_t remaining_ = 0;  // its payload bytes not yet seen
  std::uint8_t header_seen_ = 0;  // 0..3 header bytes of the next frame seen so far
  bool in_payload_ = false;
  bool failed_ = false;
};

template <typename OnFrame>
FrameDecoder::Status FrameDecoder::scan(std::span<const std::byte> data, OnFrame&& on_frame) {
  if (failed_) {
    return Status::oversize;
  }
  std::size_t pos = 0;
  const std::size_t size = data.size();
  while (pos < size) {
    if (in_payload_) {
      const std::size_t take = std::min<std::size_t>(remaining_, size - pos);
      pos += take;
      remaining_ -= static_cast<std::uint32_t>(take);
      if (remaining_ == 0) {
        in_payload_ = false;
        on_frame(pos, length_);
      }
      continue;
    }
    // Header bytes, possibly split across calls.
    length_ = (header_seen_ == 0 ? 0 : length_) << 8 | std::to_integer<std::uint32_t>(data[pos]);
    ++pos;
    if (++header_seen_ < kFrameHeaderSize) {
      continue;
    }
    header_seen_ = 0;
    if (length_ > max_frame_) {
      failed_ = true;
      return Status::oversize;
    }
    if (length_ == 0) {
      on_frame(pos, 0u);
    } else {
      remaining_ = length_;
      in_payload_ = true;
    }
  }
  return Status::ok;
}

}  // namespace echolab
