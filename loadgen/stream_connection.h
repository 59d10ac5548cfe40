#pragma once
// StreamConnection: one tcp or unix-stream client connection, as a non-blocking state
// machine (idle -> connecting -> connected -> back-off -> connecting ...).
//
// Messages in flight live in a ring indexed by sequence number, so the sequence number is
// also the ring position: head_ is the oldest message not yet echoed, unsent_ the next to
// hand to send(), tail_ the next to create. Echoes come back in order on a stream, so in raw
// mode each byte is compared with the oldest message's as it arrives; in framed mode whole
// echo frames are matched, which also detects an echo that never came (a later message's
// intact echo arriving first). A connection that fails (reset, close, timeout, garbage)
// counts why, counts what it had in flight, and reconnects after a back-off.
//
// Connect mode uses the same machine with one message per connection: the message is
// intended at the moment the connect starts, so its latency includes the connect.
#include <cstdint>
#include <vector>

#include "core/fd.h"
#include "core/framing.h"
#include "loadgen/connection.h"

namespace echolab {

class StreamConnection final : public Connection {
 public:
  StreamConnection(WorkerContext& context, std::uint32_t id, std::uint32_t slot);
  // Bytes one connection allocates, for the memory check before a run.
  [[nodiscard]] static std::size_t footprint(const LoadConfig& config, std::size_t ring_capacity);

  void start(std::int64_t now) override;
  void resume(std::int64_t now) override;
  void on_events(std::uint32_t events, std::int64_t now) override;
  void submit(std::int64_t intended, std::int64_t now) override;
  void tick(std::int64_t now) override;
  [[nodiscard]] std::size_t in_flight() const override;
  [[nodiscard]] bool settled() const override { return state_ != State::connecting; }
  void abandon(std::int64_t now) override;

 private:
  enum class State { idle, connecting, connected, backoff };
  struct Message {
    std::int64_t intended = 0;
    std::int64_t sent = 0;
    std::uint32_t payload = 0;
    std::uint32_t checksum = 0;
    std::uint32_t received = 0;    // raw mode: echo bytes seen so far
    std::uint32_t mismatched = 0;  // bytes of the echo that differed
  };

  Message& at(std::uint64_t sequence) { return ring_[sequence & mask_]; }
  [[nodiscard]] ExpectedMessage expected(std::uint64_t sequence);
  [[nodiscard]] std::size_t wire(const Message& message) const;

  void connect(std::int64_t now);
  void on_connected(std::int64_t now);
  void fill(std::int64_t now);
  bool enqueue(std::int64_t intended);
  void flush(std::int64_t now);
  void receive(std::int64_t now);
  // `now`: in, when the wait returned; out, when the bytes were read.
  void receive_framed(std::int64_t& now);
  void receive_raw(std::int64_t& now);
  void handle_frame(std::span<const std::byte> frame, std::int64_t now);
  void complete_front(std::int64_t now);
  void on_timeout(std::int64_t now);
  void connect_failed(int err, std::int64_t now);
  // Counts `reason` (if any), then what was in flight, closes and backs off.
  void drop(std::optional<Failure> reason, std::int64_t now);
  void close_socket();
  void set_output_wanted(bool wanted);

  const bool connect_mode_;
  const bool open_mode_;
  const bool framed_;
  State state_ = State::idle;
  Fd fd_;
  std::vector<Message> ring_;
  std::uint64_t mask_;
  std::uint64_t head_ = 0;
  std::uint64_t unsent_ = 0;
  std::uint64_t tail_ = 0;
  std::vector<std::byte> tx_;
  std::size_t tx_begin_ = 0;
  std::size_t tx_end_ = 0;
  std::vector<std::byte> rx_;
  std::size_t rx_start_ = 0;  // framed: first byte of the frame still arriving
  std::size_t rx_end_ = 0;
  std::size_t max_wire_;
  FrameDecoder decoder_;
  bool output_wanted_ = false;
  bool connect_pending_ = false;  // connect mode: a ticket taken, its message not yet queued
  std::int64_t connect_started_ = 0;
  std::int64_t backoff_until_ = 0;
  std::int64_t backoff_ns_;
};

}  // namespace echolab
