#include "core/session.h"

#include <algorithm>
#include <cstring>

namespace echolab {
namespace {

constexpr std::size_t kInitialBuffer = 16 * 1024;
constexpr std::size_t kMinReceiveSpace = 4 * 1024;
constexpr std::size_t kReceiveChunk = 64 * 1024;
// An idle connection keeps at most this much; a burst of big frames may grow it further.
constexpr std::size_t kRetainedBuffer = 256 * 1024;

}  // namespace

std::string_view to_string(Protocol protocol) {
  return protocol == Protocol::framed ? "framed" : "raw";
}

std::optional<Protocol> parse_protocol(std::string_view text) {
  if (text == "framed") {
    return Protocol::framed;
  }
  if (text == "raw") {
    return Protocol::raw;
  }
  return std::nullopt;
}

StreamSession::StreamSession(const ProtocolConfig& config)
    : config_(&config), decoder_(config.max_frame) {}

void StreamSession::make_room() {
  if (buffer_.size() - filled_ >= kMinReceiveSpace) {
    return;
  }
  // Slide unsent bytes to the front before growing: the buffer stays as small as the data.
  if (sent_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + sent_, filled_ - sent_);
    ready_end_ -= sent_;
    filled_ -= sent_;
    sent_ = 0;
    if (buffer_.size() - filled_ >= kMinReceiveSpace) {
      return;
    }
  }
  // Bounded: while wants_input() holds, ready bytes < output_cap and the frame in progress
  // is at most max_frame + 4 bytes, so the buffer never passes output_cap + max_frame + 64K.
  buffer_.resize(std::max({kInitialBuffer, buffer_.size() * 2, filled_ + kReceiveChunk}));
}

std::span<std::byte> StreamSession::receive_buffer() {
  make_room();
  return {buffer_.data() + filled_, buffer_.size() - filled_};
}

bool StreamSession::commit_received(std::size_t n, Counters& counters) {
  counters.bytes_in += n;
  const std::span<const std::byte> fresh(buffer_.data() + filled_, n);
  const std::size_t base = filled_;
  filled_ += n;
  if (config_->protocol == Protocol::raw) {
    // RFC 862: each read is echoed as it is; a read is the message of the raw protocol.
    ++counters.messages;
    perform_work(config_->work);
    ready_end_ = filled_;
    return true;
  }
  const auto status = decoder_.scan(fresh, [&](std::size_t end, std::uint32_t) {
    ++counters.messages;
    perform_work(config_->work);
    ready_end_ = base + end;
  });
  if (status == FrameDecoder::Status::oversize) {
    ++counters.protocol_errors;
    return false;
  }
  return true;
}

std::span<const std::byte> StreamSession::output() const {
  return {buffer_.data() + sent_, ready_end_ - sent_};
}

void StreamSession::commit_sent(std::size_t n, Counters& counters) {
  counters.bytes_out += n;
  sent_ += n;
  if (sent_ == filled_) {
    sent_ = ready_end_ = filled_ = 0;
    if (buffer_.size() > kRetainedBuffer) {
      buffer_.resize(kInitialBuffer);
      buffer_.shrink_to_fit();
    }
  }
}

bool StreamSession::at_message_boundary() const {
  return config_->protocol == Protocol::raw || decoder_.at_frame_boundary();
}

bool accept_datagram(std::span<const std::byte> datagram, bool truncated,
                     const ProtocolConfig& config, Counters& counters) {
  counters.bytes_in += datagram.size();
  if (truncated) {
    ++counters.datagrams_truncated;
    ++counters.datagrams_dropped;
    return false;
  }
  if (config.protocol == Protocol::framed) {
    const bool well_formed = datagram.size() >= kFrameHeaderSize &&
                             decode_frame_header(datagram.data()) == datagram.size() - kFrameHeaderSize &&
                             datagram.size() - kFrameHeaderSize <= config.max_frame;
    if (!well_formed) {
      ++counters.protocol_errors;
      ++counters.datagrams_dropped;
      return false;
    }
  }
  ++counters.messages;
  perform_work(config.work);
  return true;
}

}  // namespace echolab
