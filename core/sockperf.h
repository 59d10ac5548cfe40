#pragma once
// sockperf's wire format, as its unmodified client (sockperf ping-pong, under-load) speaks
// it (sockperf's src/message.h): a 14-byte header in network byte order — a 64-bit sequence
// number, 16-bit flags, the 32-bit length of the whole message, header included — then
// length - 14 payload bytes. A server answers a message only when it comes from a client
// and asks for a reply (the "pong request"), and is no warm-up: the reply is the message
// itself, same length and sequence, with the client flag cleared (sockperf's client
// ignores a reply that still carries it). Under load the client asks a reply of only one
// message in --reply-every; the rest are received and never answered.
// SockperfDecoder scans a stream the way FrameDecoder does: no copy, no allocation, a bad
// length rejected as soon as its header is in.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace echolab {

inline constexpr std::size_t kSockperfHeaderSize = 14;
inline constexpr std::uint16_t kSockperfClient = 0x1;
inline constexpr std::uint16_t kSockperfReplyRequested = 0x2;
inline constexpr std::uint16_t kSockperfWarmup = 0x4;

struct SockperfHeader {
  std::uint64_t sequence = 0;
  std::uint16_t flags = 0;
  std::uint32_t length = 0;  // the whole message, header included
};

void encode_sockperf_header(const SockperfHeader& header, std::byte* out);
[[nodiscard]] SockperfHeader decode_sockperf_header(const std::byte* in);

// The one rule of sockperf's server: from a client, reply requested, not a warm-up.
[[nodiscard]] constexpr bool sockperf_wants_reply(std::uint16_t flags) {
  return (flags & (kSockperfClient | kSockperfReplyRequested | kSockperfWarmup)) ==
         (kSockperfClient | kSockperfReplyRequested);
}

// Turns the complete message at `message` into its reply, in place: the client flag cleared.
void make_sockperf_reply(std::byte* message);

class SockperfDecoder {
 public:
  explicit SockperfDecoder(std::uint32_t max_length) : max_length_(max_length) {}

  enum class Status { ok, bad_length };

  // Scans `data`, the next bytes of the stream. For each message that completes inside it,
  // calls on_message(end, wants_reply), `end` being the offset in `data` just past its last
  // byte. Returns bad_length (and stops scanning) at a header whose length is under the
  // header's own size or over max_length; the decoder then stays in that state.
  template <typename OnMessage>
  Status scan(std::span<const std::byte> data, OnMessage&& on_message);

  // True between messages: no byte of an unfinished message seen.
  [[nodiscard]] bool at_message_boundary() const { return header_seen_ == 0 && remaining_ == 0; }
  [[nodiscard]] bool failed() const { return failed_; }
  // Payload bytes still missing from the current message (0 while its header is arriving).
  [[nodiscard]] std::uint32_t remaining() const { return remaining_; }
  // The length announced by the header that failed (for error reports).
  [[nodiscard]] std::uint32_t rejected_length() const { return length_; }

 private:
  // A whole header is in: checks its length; false (failed) when it is out of bounds.
  bool header_done();

  std::uint32_t max_length_;
  std::uint32_t length_ = 0;     // length of the message being read
  std::uint32_t remaining_ = 0;  // its payload bytes not yet seen
  std::uint16_t flags_ = 0;
  std::uint8_t header_seen_ = 0;  // header bytes of the current message seen so far
  bool failed_ = false;
};

template <typename OnMessage>
SockperfDecoder::Status SockperfDecoder::scan(std::span<const std::byte> data, OnMessage&& on_message) {
  if (failed_) {
    return Status::bad_length;
  }
  std::size_t pos = 0;
  const std::size_t size = data.size();
  while (pos < size) {
    if (remaining_ > 0) {
      const std::size_t take = std::min<std::size_t>(remaining_, size - pos);
      pos += take;
      remaining_ -= static_cast<std::uint32_t>(take);
      if (remaining_ == 0) {
        on_message(pos, sockperf_wants_reply(flags_));
      }
      continue;
    }
    if (header_seen_ == 0 && size - pos >= kSockperfHeaderSize) {
      // The common case: a whole header in this read, decoded at once.
      const SockperfHeader header = decode_sockperf_header(data.data() + pos);
      flags_ = header.flags;
      length_ = header.length;
      pos += kSockperfHeaderSize;
    } else {
      // A header split across reads: byte by byte (the sequence number is not needed).
      const auto byte = std::to_integer<std::uint32_t>(data[pos++]);
      const std::uint8_t at = header_seen_++;
      if (at == 8) {
        flags_ = static_cast<std::uint16_t>(byte);
      } else if (at == 9) {
        flags_ = static_cast<std::uint16_t>(flags_ << 8 | byte);
      } else if (at == 10) {
        length_ = byte;
      } else if (at > 10) {
        length_ = length_ << 8 | byte;
      }
      if (header_seen_ < kSockperfHeaderSize) {
        continue;
      }
      header_seen_ = 0;
    }
    if (!header_done()) {
      return Status::bad_length;
    }
    if (remaining_ == 0) {
      on_message(pos, sockperf_wants_reply(flags_));
    }
  }
  return Status::ok;
}

}  // namespace echolab
