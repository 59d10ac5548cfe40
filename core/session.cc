#include "core/session.h"

#include <algorithm>
#include <cstring>

#include "core/stop.h"

namespace echolab {
namespace {

constexpr std::size_t kMinReceiveSpace = 4 * 1024;
// An idle connection keeps at most this much; a burst of big frames may grow it further.
constexpr std::size_t kRetainedBuffer = 256 * 1024;

// A datagram is one whole message: at least a header, its length the datagram's size.
bool well_formed_sockperf(std::span<const std::byte> datagram, std::uint32_t max_frame) {
  if (datagram.size() < kSockperfHeaderSize) {
    return false;
  }
  const std::uint32_t length = decode_sockperf_header(datagram.data()).length;
  return length == datagram.size() && length <= max_frame;
}

}  // namespace

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::framed:
      return "framed";
    case Protocol::raw:
      return "raw";
    case Protocol::sockperf:
      return "sockperf";
  }
  return "?";
}

std::optional<Protocol> parse_protocol(std::string_view text) {
  if (text == "framed") {
    return Protocol::framed;
  }
  if (text == "raw") {
    return Protocol::raw;
  }
  if (text == "sockperf") {
    return Protocol::sockperf;
  }
  return std::nullopt;
}

StreamSession::StreamSession(const ProtocolConfig& config)
    : config_(&config), decoder_(config.max_frame), sockperf_decoder_(config.max_frame) {}

void StreamSession::make_room() {
  // Once a frame's header is in, its payload gets all the room it still needs in one step:
  // exactly its announced size, not a doubling that may reserve twice max_frame, and no
  // second reservation for its last bytes (two copies of a frame, however briefly).
  const std::size_t remaining =
      config_->protocol == Protocol::sockperf ? sockperf_decoder_.remaining() : decoder_.remaining();
  const std::size_t want = remaining > 0 ? remaining : kMinReceiveSpace;
  if (capacity_ - filled_ >= want) {
    return;
  }
  const std::size_t pending = filled_ - sent_;
  if (capacity_ - pending >= want) {
    // Sliding the unsent bytes to the front makes enough room without growing.
    std::memmove(buffer_.get(), buffer_.get() + sent_, pending);
    ready_end_ -= sent_;
    owed_end_ -= sent_;
    filled_ -= sent_;
    sent_ = 0;
    return;
  }
  // Bounded (stream_memory_bound): pending is the ready output (under output_cap, since the
  // engine only receives while wants_input()) plus the frame in progress so far; `want` is
  // either the rest of that frame or one receive chunk.
  reallocate(pending + std::max(want, kSessionReceiveChunk));
}

void StreamSession::reallocate(std::size_t capacity) {
  // for_overwrite: pages of the new buffer cost memory only as received bytes fill them.
  auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
  if (filled_ > sent_) {
    std::memcpy(grown.get(), buffer_.get() + sent_, filled_ - sent_);
  }
  buffer_ = std::move(grown);
  capacity_ = capacity;
  ready_end_ -= sent_;
  owed_end_ -= sent_;
  filled_ -= sent_;
  sent_ = 0;
}

std::span<std::byte> StreamSession::receive_buffer() {
  make_room();
  return {buffer_.get() + filled_, capacity_ - filled_};
}

bool StreamSession::work_on_message(Counters& counters) {
  // Past the cutoff the stop's drain deadline is near: what is left is not worked on, so
  // that what was done can still be sent before the connection is closed regardless.
  if (closing_ || work_cutoff_passed() || !perform_work(config_->work)) {
    closing_ = true;
    ++counters.messages_unanswered;
    return false;
  }
  ++counters.messages;
  return true;
}

bool StreamSession::commit_received(std::size_t n, Counters& counters) {
  counters.bytes_in += n;
  const std::span<const std::byte> fresh(buffer_.get() + filled_, n);
  const std::size_t base = filled_;
  filled_ += n;
  if (config_->protocol == Protocol::raw) {
    raw_unprogressed_ += n;
    if (raw_unprogressed_ >= kRawProgressBytes) {
      raw_unprogressed_ = 0;
      progress_ = true;
    }
    // RFC 862: each read is echoed as it is; a read is the message of the raw protocol.
    if (deferred_) {
      owe(filled_);
      return true;
    }
    if (!work_on_message(counters)) {
      filled_ = ready_end_;
      return false;
    }
    ready_end_ = owed_end_ = filled_;
    return true;
  }
  if (config_->protocol == Protocol::sockperf) {
    commit_sockperf(base, n, counters);
    return !closing_;
  }
  const auto status = deferred_ ? decoder_.scan(fresh,
                                                [&](std::size_t end, std::uint32_t) {
                                                  progress_ = true;
                                                  owe(base + end);
                                                })
                                : decoder_.scan(fresh, [&](std::size_t end, std::uint32_t) {
                                    progress_ = true;
                                    if (work_on_message(counters)) {
                                      ready_end_ = owed_end_ = base + end;
                                    }
                                  });
  if (status == FrameDecoder::Status::oversize) {
    ++counters.protocol_errors;
    closing_ = true;
  }
  return !closing_;
}

void StreamSession::commit_sockperf(std::size_t base, std::size_t n, Counters& counters) {
  // Between reads the message still arriving starts at owed_end_: the kept messages end
  // there, and those that wanted no reply were cut out as they completed. Kept messages
  // slide down over the cut ones, so a read of only answered messages moves nothing.
  std::byte* const buffer = buffer_.get();
  std::size_t start = owed_end_;  // where the message being scanned starts
  const auto status = sockperf_decoder_.scan(
      std::span<const std::byte>(buffer + base, n), [&](std::size_t end, bool wants_reply) {
        progress_ = true;
        const std::size_t from = start;
        start = base + end;
        if (!wants_reply) {
          ++counters.messages_no_reply;  // left behind: what follows overwrites it
          return;
        }
        const std::size_t length = start - from;
        if (from != owed_end_) {
          std::memmove(buffer + owed_end_, buffer + from, length);
        }
        make_sockperf_reply(buffer + owed_end_);
        if (deferred_) {
          owe(owed_end_ + length);
        } else if (work_on_message(counters)) {
          ready_end_ = owed_end_ = owed_end_ + length;
        }
      });
  if (start != owed_end_ && !closing_) {
    // The start of the next message, if any, follows the kept ones.
    std::memmove(buffer + owed_end_, buffer + start, filled_ - start);
    filled_ -= start - owed_end_;
  }
  if (status == SockperfDecoder::Status::bad_length) {
    ++counters.protocol_errors;
    closing_ = true;
  }
}

void StreamSession::owe(std::size_t end) {
  owed_.push_back(end - owed_end_);
  owed_end_ = end;
  ++new_work_;
}

void StreamSession::finish_work(bool done) {
  const std::size_t length = owed_[owed_head_++];
  if (owed_head_ == owed_.size()) {
    owed_.clear();  // keeps its capacity
    owed_head_ = 0;
  } else if (owed_head_ >= 1024 && 2 * owed_head_ >= owed_.size()) {
    // A connection that always has work owed never empties the FIFO: drop the finished
    // front now and then (amortised, and never a reallocation).
    owed_.erase(owed_.begin(), owed_.begin() + static_cast<std::ptrdiff_t>(owed_head_));
    owed_head_ = 0;
  }
  if (done && !cut_off_) {
    ready_end_ += length;
  } else {
    cut_off_ = true;
    closing_ = true;
  }
}

bool StreamSession::take_progress() {
  const bool progressed = progress_;
  progress_ = false;
  return progressed;
}

std::span<const std::byte> StreamSession::output() const {
  return {buffer_.get() + sent_, ready_end_ - sent_};
}

void StreamSession::commit_sent(std::size_t n, Counters& counters) {
  counters.bytes_out += n;
  sent_ += n;
  if (sent_ == filled_) {
    sent_ = ready_end_ = owed_end_ = filled_ = 0;
    if (capacity_ > kRetainedBuffer) {
      buffer_.reset();
      capacity_ = 0;
    }
  }
}

bool StreamSession::at_message_boundary() const {
  switch (config_->protocol) {
    case Protocol::raw:
      return true;
    case Protocol::sockperf:
      return sockperf_decoder_.at_message_boundary();
    case Protocol::framed:
      break;
  }
  return decoder_.at_frame_boundary();
}

bool accept_datagram(std::span<std::byte> datagram, bool truncated,
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
  const bool sockperf = config.protocol == Protocol::sockperf;
  if (sockperf) {
    if (!well_formed_sockperf(datagram, config.max_frame)) {
      ++counters.protocol_errors;
      ++counters.datagrams_dropped;
      return false;
    }
    if (!sockperf_wants_reply(decode_sockperf_header(datagram.data()).flags)) {
      ++counters.messages_no_reply;  // not an error: the client asked for no reply
      return false;
    }
  }
  if (work_cutoff_passed() || !perform_work(config.work)) {
    ++counters.messages_unanswered;  // a stop cut the work off: no reply
    return false;
  }
  if (sockperf) {
    make_sockperf_reply(datagram.data());
  }
  ++counters.messages;
  return true;
}

}  // namespace echolab
