#pragma once
// DatagramConnection: one udp or unix-dgram client socket (connected, so the kernel only
// hands it the target's replies), one message per datagram.
//
// Replies may be lost, duplicated, reordered or late, so messages are kept in a ring of
// slots indexed by sequence number and each reply is matched by the sequence it carries:
// an outstanding slot gets its latency recorded; an answered one counts a duplicate; a
// timed-out one (or one long since reused) counts a late reply, never a new answer.
// Timeouts are found in sequence order: sends happen in that order, so the oldest
// outstanding message is always the first to time out.
#include <cstdint>
#include <vector>

#include "core/fd.h"
#include "loadgen/connection.h"

namespace echolab {

class DatagramConnection final : public Connection {
 public:
  DatagramConnection(WorkerContext& context, std::uint32_t id, std::uint32_t slot);
  // Bytes one connection allocates, for the memory check before a run.
  [[nodiscard]] static std::size_t footprint(const LoadConfig& config, std::size_t ring_capacity);

  void start(std::int64_t now) override;
  void resume(std::int64_t now) override;
  void on_events(std::uint32_t events, std::int64_t now) override;
  void submit(std::int64_t intended, std::int64_t now) override;
  void tick(std::int64_t now) override;
  [[nodiscard]] std::size_t in_flight() const override { return outstanding_; }
  [[nodiscard]] bool settled() const override { return true; }
  void abandon(std::int64_t now) override;

 private:
  enum class SlotState : std::uint8_t { free, outstanding, answered, timed_out };
  struct Slot {
    std::uint64_t sequence = 0;
    std::int64_t intended = 0;
    std::int64_t sent = 0;
    std::uint32_t payload = 0;
    std::uint32_t checksum = 0;
    SlotState state = SlotState::free;
  };

  Slot& at(std::uint64_t sequence) { return ring_[sequence & mask_]; }
  // The outstanding message `sequence`, in the ring or among the displaced; nullptr if none.
  Slot* find_outstanding(std::uint64_t sequence);
  void finish(Slot& slot, SlotState state);
  bool open_socket(std::int64_t now);
  bool send_new(std::int64_t intended, std::int64_t now);
  void fill(std::int64_t now);
  void on_datagram(std::span<const std::byte> datagram, bool truncated, std::int64_t now);

  const bool framed_;
  Fd fd_;
  std::vector<Slot> ring_;
  // Outstanding messages whose ring slot was needed again before they timed out (a lost
  // datagram at a high rate): kept here until they are answered or time out in turn.
  std::vector<Slot> displaced_;
  std::uint64_t mask_;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t oldest_ = 0;  // lowest sequence that may still be outstanding
  std::uint64_t highest_answered_ = 0;
  bool any_answered_ = false;
  std::size_t outstanding_ = 0;
  std::vector<std::byte> tx_;
  std::vector<std::byte> rx_;
  std::int64_t retry_at_ = 0;  // socket could not be opened: try again then
};

}  // namespace echolab
