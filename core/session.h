#pragma once
// The protocol core: everything an engine needs to know about the bytes it moves.
// Engines own concurrency (threads, processes, readiness loops) and nothing else; they
// receive into a session, send what it says is ready, and close when it says so.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/framing.h"
#include "core/stats.h"
#include "core/work.h"

namespace echolab {

enum class Protocol { framed, raw };
[[nodiscard]] std::string_view to_string(Protocol protocol);
[[nodiscard]] std::optional<Protocol> parse_protocol(std::string_view text);

inline constexpr std::size_t kMaxDatagram = 65507;  // largest UDP payload over IPv4

struct ProtocolConfig {
  Protocol protocol = Protocol::framed;
  std::uint32_t max_frame = kDefaultMaxFrame;
  WorkSpec work;
  // Echo bytes a session holds back before it stops reading: a peer that sends without
  // reading gets TCP back-pressure instead of growing the server's memory.
  std::size_t output_cap = 256 * 1024;
  // Receive buffer of the datagram engines: a bigger datagram is truncated, counted, dropped.
  std::size_t datagram_buffer = kMaxDatagram;
};

// One stream connection's echo state. Bytes are received straight into the session's
// buffer; in framed mode they become sendable when their frame is complete (a frame split
// over many reads is answered once, whole), in raw mode as soon as they arrive (RFC 862).
// Memory is bounded by output_cap + max_frame + one receive chunk, and nothing is reserved
// for a frame whose header announces more than max_frame.
class StreamSession {
 public:
  explicit StreamSession(const ProtocolConfig& config);

  // Where the next recv() should write. Never empty while wants_input() is true.
  [[nodiscard]] std::span<std::byte> receive_buffer();

  // Accounts for `n` bytes received into receive_buffer(). Completed messages get their
  // simulated work done and become output. Returns false when the peer broke the protocol
  // (the connection must be closed; it is counted in protocol_errors).
  [[nodiscard]] bool commit_received(std::size_t n, Counters& counters);

  // Echo bytes ready to send, oldest first.
  [[nodiscard]] std::span<const std::byte> output() const;
  void commit_sent(std::size_t n, Counters& counters);

  [[nodiscard]] bool has_output() const { return ready_end_ > sent_; }
  // False while the ready output is over the cap: wait for the peer to read some.
  [[nodiscard]] bool wants_input() const { return ready_end_ - sent_ < config_->output_cap; }
  // True when the peer has no frame half-sent (a close now loses nothing it finished).
  [[nodiscard]] bool at_message_boundary() const;
  // Bytes held for this connection right now (capacity of its buffer).
  [[nodiscard]] std::size_t memory_bytes() const { return buffer_.capacity(); }

 private:
  void make_room();

  const ProtocolConfig* config_;
  FrameDecoder decoder_;
  std::vector<std::byte> buffer_;
  // buffer_[sent_, ready_end_) is sendable echo; [ready_end_, filled_) belongs to a frame
  // still arriving.
  std::size_t sent_ = 0;
  std::size_t ready_end_ = 0;
  std::size_t filled_ = 0;
};

// What to do with one received datagram: echo it back whole, or drop it (already counted).
// In framed mode the 4-byte prefix must equal the datagram's size minus 4.
[[nodiscard]] bool accept_datagram(std::span<const std::byte> datagram, bool truncated,
                                   const ProtocolConfig& config, Counters& counters);

}  // namespace echolab
