#include "loadgen/datagram_connection.h"

#include <sys/socket.h>

#include "core/io.h"
#include "core/socket.h"

namespace echolab {
namespace {

constexpr std::int64_t kReopenDelayNs = 100'000'000;  // 100 ms
constexpr int kReceiveBatch = 32;  // datagrams read per readiness event
constexpr std::size_t kMaxDisplaced = 4096;
constexpr std::size_t kDisplacedReserve = 64;

}  // namespace

DatagramConnection::DatagramConnection(WorkerContext& context, std::uint32_t id, std::uint32_t slot)
    : Connection(context, id, slot),
      framed_(context.config.protocol == Protocol::framed),
      ring_(context.ring_capacity),
      mask_(context.ring_capacity - 1),
      tx_(wire_size(context.config.protocol, context.config.size.max)),
      // One byte more than any reply should be, so that MSG_TRUNC catches larger ones.
      rx_(wire_size(context.config.protocol, context.config.size.max) + 1) {
  displaced_.reserve(kDisplacedReserve);
}

std::size_t DatagramConnection::footprint(const LoadConfig& config, std::size_t ring_capacity) {
  const std::size_t max_wire = wire_size(config.protocol, config.size.max);
  return sizeof(DatagramConnection) + (ring_capacity + kDisplacedReserve) * sizeof(Slot) +
         2 * max_wire + 1;
}

DatagramConnection::Slot* DatagramConnection::find_outstanding(std::uint64_t sequence) {
  Slot& slot = at(sequence);
  if (slot.sequence == sequence && slot.state == SlotState::outstanding) {
    return &slot;
  }
  for (Slot& old : displaced_) {
    if (old.sequence == sequence) return &old;
  }
  return nullptr;
}

void DatagramConnection::finish(Slot& slot, SlotState state) {
  --outstanding_;
  if (&slot >= displaced_.data() && &slot < displaced_.data() + displaced_.size()) {
    slot = displaced_.back();  // order does not matter here
    displaced_.pop_back();
  } else {
    slot.state = state;
  }
}

bool DatagramConnection::open_socket(std::int64_t now) {
  const SocketAddress& target = context_.target;
  const Transport transport = context_.config.transport;
  fd_.reset(::socket(target.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int err = fd_ ? 0 : errno;
  if (err == 0) {
    err = apply_connection_options(fd_.get(), transport, context_.config.socket);
  }
  if (err == 0 && transport == Transport::unix_dgram) {
    // Linux autobind: an abstract address of its own, so the server can reply.
    sa_family_t family = AF_UNIX;
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&family), sizeof(family)) != 0) {
      err = errno;
    }
  }
  if (err == 0 && ::connect(fd_.get(), target.get(), target.length) != 0) {
    err = errno;
  }
  if (err == 0) {
    err = watch(fd_.get(), EPOLLIN);
  }
  if (err != 0) {
    context_.recorder.count(err == ECONNREFUSED ? Failure::connect_refused : Failure::connect_error,
                            now);
    fd_.reset();
    retry_at_ = now + kReopenDelayNs;
    return false;
  }
  return true;
}

void DatagramConnection::start(std::int64_t now) { open_socket(now); }

void DatagramConnection::resume(std::int64_t now) { fill(now); }

void DatagramConnection::fill(std::int64_t now) {
  if (context_.config.mode != LoadMode::closed || !fd_) {
    return;
  }
  while (outstanding_ < static_cast<std::size_t>(context_.config.pipeline) &&
         context_.tickets.take_ticket(now)) {
    if (!send_new(now, now)) {
      break;  // counted; the next tick or reply tries again
    }
  }
}

void DatagramConnection::submit(std::int64_t intended, std::int64_t now) {
  if (!fd_) {
    context_.recorder.count(Failure::connect_error, intended);
    return;
  }
  send_new(intended, now);
}

bool DatagramConnection::send_new(std::int64_t intended, std::int64_t now) {
  const std::uint64_t sequence = next_sequence_;
  Slot& slot = at(sequence);
  if (slot.state == SlotState::outstanding) {
    if (displaced_.size() >= kMaxDisplaced) {
      context_.recorder.count(Failure::overflow, intended);
      return false;
    }
    displaced_.push_back(slot);
    slot.state = SlotState::free;
  }
  const std::uint32_t payload = context_.sizes.next();
  const std::size_t size = wire_size(context_.config.protocol, payload);
  const std::uint32_t checksum = encode_message(tx_.data(), context_.config.protocol, id_,
                                                sequence, payload, context_.pool);
  context_.syscalls.count(Syscall::send);
  ssize_t n;
  do {
    n = ::send(fd_.get(), tx_.data(), size, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    // ECONNREFUSED: an ICMP port-unreachable for an earlier datagram, reported now.
    context_.recorder.count(errno == ECONNREFUSED ? Failure::connect_refused : Failure::send_error,
                            intended);
    return false;
  }
  slot = Slot{sequence, intended, now, payload, checksum, SlotState::outstanding};
  ++next_sequence_;
  ++outstanding_;
  context_.recorder.record_send(intended, now, size, context_.config.mode == LoadMode::open);
  return true;
}

void DatagramConnection::on_events(std::uint32_t, std::int64_t now) {
  if (!fd_) {
    return;
  }
  SocketAddress from;
  for (int i = 0; i < kReceiveBatch; ++i) {
    const DatagramResult result =
        receive_datagram(fd_.get(), std::span<std::byte>(rx_), from, context_.syscalls);
    if (result.status == IoStatus::would_block) {
      break;
    }
    if (result.status != IoStatus::ok) {
      context_.recorder.count(result.error == ECONNREFUSED ? Failure::connect_refused
                                                            : Failure::receive_error,
                              now);
      break;
    }
    // Stamped when read, not when the wait returned: a datagram that came in while this
    // batch (or another connection's events) was being handled would be timed from before
    // it arrived, and a stretch without the CPU would make its echo look faster than the wire.
    now = monotonic_ns();
    on_datagram(std::span<const std::byte>(rx_.data(), std::min(result.bytes, rx_.size())),
                result.truncated, now);
  }
  fill(now);
}

void DatagramConnection::on_datagram(std::span<const std::byte> datagram, bool truncated,
                                     std::int64_t now) {
  const std::size_t header = framed_ ? kFrameHeaderSize : 0;
  const std::span<const std::byte> payload =
      datagram.size() >= header ? datagram.subspan(header) : std::span<const std::byte>{};
  const auto id = truncated ? std::nullopt : read_message_id(payload);
  if (!id || id->connection != id_ || id->sequence >= next_sequence_) {
    // Not a reply to anything sent from here. A damaged one is counted as a mismatch (its
    // own message will also time out: which one it was cannot be known).
    const bool intact = !truncated && is_intact(payload);
    context_.recorder.count(intact ? Failure::unexpected : Failure::mismatched, now);
    return;
  }
  Slot* found = find_outstanding(id->sequence);
  if (found == nullptr) {
    const Slot& slot = at(id->sequence);
    if (slot.sequence == id->sequence && slot.state == SlotState::answered) {
      context_.recorder.note(Anomaly::duplicate);
    } else {
      // Timed out, or so long ago that its slot was reused: late, not a new reply.
      context_.recorder.note(Anomaly::late);
    }
    return;
  }
  const Slot slot = *found;
  finish(*found, SlotState::answered);
  const std::size_t expected_size = wire_size(context_.config.protocol, slot.payload);
  const std::size_t common = std::min(datagram.size(), expected_size);
  const std::size_t differ =
      count_mismatches(datagram.first(common), 0,
                       ExpectedMessage{context_.config.protocol, id_, slot.sequence,
                                       slot.checksum, slot.payload},
                       context_.pool) +
      (std::max(datagram.size(), expected_size) - common);
  if (differ > 0) {
    context_.recorder.count(Failure::mismatched, slot.intended);
    context_.recorder.note(Anomaly::mismatched_bytes, differ);
    return;
  }
  if (any_answered_ && id->sequence < highest_answered_) {
    context_.recorder.note(Anomaly::reordered);
  }
  if (!any_answered_ || id->sequence > highest_answered_) {
    highest_answered_ = id->sequence;
    any_answered_ = true;
  }
  context_.recorder.record_echo(slot.intended, slot.sent, now, expected_size);
}

void DatagramConnection::tick(std::int64_t now) {
  if (!fd_) {
    if (now >= retry_at_ && open_socket(now)) {
      fill(now);
    }
    return;
  }
  const std::int64_t timeout = context_.config.timeout.count();
  while (oldest_ < next_sequence_) {
    Slot& slot = at(oldest_);
    if (slot.sequence != oldest_ || slot.state != SlotState::outstanding) {
      ++oldest_;
      continue;
    }
    if (now - slot.sent <= timeout) {
      break;
    }
    context_.recorder.count(Failure::timeout, slot.intended);
    finish(slot, SlotState::timed_out);
    ++oldest_;
  }
  for (std::size_t i = 0; i < displaced_.size();) {
    if (now - displaced_[i].sent > timeout) {
      context_.recorder.count(Failure::timeout, displaced_[i].intended);
      finish(displaced_[i], SlotState::timed_out);
    } else {
      ++i;
    }
  }
  fill(now);
}

void DatagramConnection::abandon(std::int64_t now) {
  if (outstanding_ > 0) {
    context_.recorder.count(Failure::unfinished, now, outstanding_);
  }
  outstanding_ = 0;
  displaced_.clear();
  fd_.reset();
}

}  // namespace echolab
