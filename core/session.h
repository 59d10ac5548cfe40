#pragma once
// The protocol core: everything an engine needs to know about the bytes it moves.
// Engines own concurrency (threads, processes, readiness loops) and nothing else; they
// receive into a session, send what it says is ready, and close when it says so.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/framing.h"
#include "core/sockperf.h"
#include "core/stats.h"
#include "core/work.h"

namespace echolab {

// framed: echolab's 4-byte length prefix; raw: RFC 862; sockperf: sockperf's messages,
// answered as sockperf's own server answers them (core/sockperf.h).
enum class Protocol { framed, raw, sockperf };
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
// In sockperf mode a complete message that asks for a reply becomes sendable as its reply;
// one that asks for none is counted (messages_no_reply) and cut out of the buffer, so the
// output stays one contiguous span (no copy while no message was cut out before it).
// Memory: see stream_memory_bound(). Nothing is reserved for a frame whose header announces
// more than max_frame; a frame within the limit gets exactly its size once its header is in.
class StreamSession {
 public:
  explicit StreamSession(const ProtocolConfig& config);

  // Where the next recv() should write. Call only while wants_input() is true; then never
  // empty.
  [[nodiscard]] std::span<std::byte> receive_buffer();

  // Accounts for `n` bytes received into receive_buffer(). Completed messages get their
  // simulated work done and become output. Returns false when the connection must close
  // once output() is sent (the frames completed before the reason stay sendable):
  // - the peer broke the protocol (counted in protocol_errors): a length over max_frame, or
  //   in sockperf mode under the 14-byte header;
  // - a stop's work cutoff passed (work_cutoff_passed() in core/stop.h): the complete
  //   frames not yet worked on are counted in messages_unanswered and never sent.
  [[nodiscard]] bool commit_received(std::size_t n, Counters& counters);

  // Echo bytes ready to send, oldest first.
  [[nodiscard]] std::span<const std::byte> output() const;
  void commit_sent(std::size_t n, Counters& counters);

  [[nodiscard]] bool has_output() const { return ready_end_ > sent_; }
  // False while the ready output is over the cap (wait for the peer to read some), and
  // once commit_received returned false.
  // Messages owed work count against the cap too: their echo is on its way.
  [[nodiscard]] bool wants_input() const {
    return !closing_ && owed_end_ - sent_ < config_->output_cap;
  }
  // True when the peer has no frame half-sent (a close now loses nothing it finished).
  [[nodiscard]] bool at_message_boundary() const;

  // The one rule for --idle-timeout: true when the reads committed since the last call
  // made progress that moves the connection's idle deadline, and clears it. Framed: a
  // frame completed (sockperf: a message, answered or not). Raw, where every read is a
  // message: kRawProgressBytes received since the last progress, so a client trickling a
  // byte now and then cannot hold the connection open (a minimum rate of kRawProgressBytes
  // per idle timeout).
  [[nodiscard]] bool take_progress();

  // Bytes held for this connection right now (capacity of its buffer).
  [[nodiscard]] std::size_t memory_bytes() const { return capacity_; }

  // Deferred work, for an engine that runs the service work (--work) on other threads (the
  // half-sync/half-async reactor-pool). Call defer_work() before the first receive: from then
  // on commit_received does no work, it only records each completed message as owed work.
  // The owner hands each one off once (take_new_work) and reports each back, oldest first,
  // with finish_work. Whoever runs the work counts it (messages or messages_unanswered).
  // The session itself stays single-threaded: only its owner's thread calls it.
  void defer_work() { deferred_ = true; }
  // Messages completed since the last call, each now owed work, in order.
  [[nodiscard]] std::size_t take_new_work() {
    const std::size_t fresh = new_work_;
    new_work_ = 0;
    return fresh;
  }
  // The oldest owed message was worked on (`done`: it becomes output) or cut off by a stop's
  // work cutoff (it and every later one are never sent and the connection ends, as
  // commit_received's cutoff does inline).
  void finish_work(bool done);
  [[nodiscard]] bool owes_work() const { return owed_head_ < owed_.size(); }

 private:
  void make_room();
  void reallocate(std::size_t capacity);
  // The work of one complete message; false (and counted unanswered) once a stop cut it off.
  bool work_on_message(Counters& counters);
  // Deferred: the complete messages now end at `end`; the new one is owed work.
  void owe(std::size_t end);
  // commit_received for the sockperf protocol: the `n` bytes from `base` were just received.
  void commit_sockperf(std::size_t base, std::size_t n, Counters& counters);

  const ProtocolConfig* config_;
  FrameDecoder decoder_;
  SockperfDecoder sockperf_decoder_;
  // Not a std::vector: growing one zero-fills, so a frame's reservation would cost its
  // memory before a byte of it arrived.
  std::unique_ptr<std::byte[]> buffer_;
  std::size_t capacity_ = 0;
  // buffer_[sent_, ready_end_) is sendable echo; [ready_end_, owed_end_) complete messages
  // still owed work (deferred only: inline, owed_end_ == ready_end_); [owed_end_, filled_)
  // belongs to a frame still arriving (sockperf: the one message still arriving).
  std::size_t sent_ = 0;
  std::size_t ready_end_ = 0;
  std::size_t owed_end_ = 0;
  std::size_t filled_ = 0;
  std::size_t raw_unprogressed_ = 0;  // raw bytes received since the last progress
  bool progress_ = false;
  bool closing_ = false;
  bool deferred_ = false;
  bool cut_off_ = false;  // deferred: a stop cut off owed work; nothing later is sent
  // Deferred: the lengths of the messages owed work, oldest at owed_head_. A reused FIFO, so
  // that owing a message allocates nothing once it has grown to the connection's pipeline.
  std::vector<std::size_t> owed_;
  std::size_t owed_head_ = 0;
  std::size_t new_work_ = 0;
};

// Raw bytes a connection must send per --idle-timeout to keep it (see take_progress).
inline constexpr std::size_t kRawProgressBytes = 16;
// Receive space a session adds when it grows between frames (one recv's worth).
inline constexpr std::size_t kSessionReceiveChunk = 64 * 1024;

// The most memory_bytes() ever reaches while the engine receives only when wants_input():
// the ready output under the cap, plus one frame in progress (header and payload), plus one
// receive chunk.
[[nodiscard]] constexpr std::size_t stream_memory_bound(const ProtocolConfig& config) {
  return config.output_cap + kFrameHeaderSize + config.max_frame + kSessionReceiveChunk;
}

// What to do with one received datagram: echo it back whole, or drop it (already counted).
// In framed mode the 4-byte prefix must equal the datagram's size minus 4. In sockperf mode
// the datagram is one message, its length the datagram's size; one that asks no reply is
// counted in messages_no_reply, and the one that does is made its reply in place (which is
// why the datagram is writable: the caller's receive buffer). Past a stop's work cutoff the
// datagram is not worked on and counted in messages_unanswered.
[[nodiscard]] bool accept_datagram(std::span<std::byte> datagram, bool truncated,
                                   const ProtocolConfig& config, Counters& counters);

}  // namespace echolab
