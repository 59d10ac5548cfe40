#include "loadgen/stream_connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "core/io.h"
#include "core/socket.h"
#include "loadgen/sources.h"

namespace echolab {
namespace {

constexpr std::int64_t kFirstBackoffNs = 10'000'000;   // 10 ms
constexpr std::int64_t kMaxBackoffNs = 1'000'000'000;  // 1 s
constexpr std::size_t kBufferBytes = 64 * 1024;

}  // namespace

StreamConnection::StreamConnection(WorkerContext& context, std::uint32_t id, std::uint32_t slot)
    : Connection(context, id, slot),
      connect_mode_(context.config.mode == LoadMode::connect),
      open_mode_(context.config.mode == LoadMode::open),
      framed_(context.config.protocol == Protocol::framed),
      ring_(context.ring_capacity),
      mask_(context.ring_capacity - 1),
      max_wire_(wire_size(context.config.protocol, context.config.size.max)),
      decoder_(context.config.size.max),
      backoff_ns_(kFirstBackoffNs) {
  const StreamBuffers buffers = stream_buffers(context.config, context.ring_capacity);
  tx_.resize(buffers.tx);
  rx_.resize(buffers.rx);
}

StreamBuffers stream_buffers(const LoadConfig& config, std::size_t ring_capacity) {
  const std::size_t max_wire = wire_size(config.protocol, config.size.max);
  const std::size_t batch = std::min(kBufferBytes, ring_capacity * max_wire);
  return StreamBuffers{std::max(batch, max_wire), std::max(batch, 2 * max_wire)};
}

std::size_t StreamConnection::footprint(const LoadConfig& config, std::size_t ring_capacity) {
  const StreamBuffers buffers = stream_buffers(config, ring_capacity);
  return sizeof(StreamConnection) + ring_capacity * sizeof(Message) + buffers.tx + buffers.rx;
}

std::size_t StreamConnection::wire(const Message& message) const {
  return wire_size(context_.config.protocol, message.payload);
}

ExpectedMessage StreamConnection::expected(std::uint64_t sequence) {
  const Message& m = at(sequence);
  return ExpectedMessage{context_.config.protocol, id_, sequence, m.checksum, m.payload};
}

std::size_t StreamConnection::in_flight() const {
  return static_cast<std::size_t>(tail_ - head_) + (connect_pending_ ? 1 : 0);
}

void StreamConnection::start(std::int64_t now) {
  if (!connect_mode_) {
    connect(now);
  }
}

void StreamConnection::resume(std::int64_t now) {
  fill(now);
  flush(now);
}

void StreamConnection::connect(std::int64_t now) {
  const SocketAddress& target = context_.target;
  state_ = State::connecting;
  connect_started_ = now;
  fd_.reset(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd_) {
    connect_failed(errno, now);
    return;
  }
  if (int err = apply_connection_options(fd_.get(), context_.config.transport,
                                         context_.config.socket)) {
    connect_failed(err, now);
    return;
  }
  if (!context_.sources.empty()) {
    if (int err = bind_source(fd_.get(), context_.sources[id_ % context_.sources.size()])) {
      connect_failed(err, now);
      return;
    }
  }
  if (::connect(fd_.get(), target.get(), target.length) == 0) {
    if (int err = watch(fd_.get(), EPOLLIN)) {
      connect_failed(err, now);
      return;
    }
    on_connected(now);
    return;
  }
  const int err = errno;
  if (err != EINPROGRESS && err != EINTR) {
    // EAGAIN here is a unix listener whose backlog is full: try again after the back-off.
    connect_failed(err, now);
    return;
  }
  if (int werr = watch(fd_.get(), EPOLLOUT)) {
    connect_failed(werr, now);
  }
}

void StreamConnection::connect_failed(int err, std::int64_t now) {
  const std::int64_t when = connect_pending_ ? connect_started_ : now;
  context_.recorder.count(err == ECONNREFUSED ? Failure::connect_refused : Failure::connect_error,
                          when);
  connect_pending_ = false;
  drop(std::nullopt, now);
}

void StreamConnection::on_connected(std::int64_t now) {
  state_ = State::connected;
  if (connect_pending_) {
    connect_pending_ = false;
    enqueue(connect_started_);
  }
  fill(now);
  flush(now);
}

void StreamConnection::fill(std::int64_t now) {
  switch (context_.config.mode) {
    case LoadMode::open:
      return;  // the pacer submits
    case LoadMode::closed:
      if (state_ != State::connected) return;
      while (tail_ - head_ < static_cast<std::uint64_t>(context_.config.pipeline) &&
             context_.tickets.take_ticket(now)) {
        if (!enqueue(now)) break;
      }
      return;
    case LoadMode::connect:
      if (state_ == State::idle && !connect_pending_ && context_.tickets.take_ticket(now)) {
        connect_pending_ = true;
        connect(now);
      }
      return;
  }
}

bool StreamConnection::enqueue(std::int64_t intended) {
  if (tail_ - head_ >= ring_.size()) {
    context_.recorder.count(Failure::overflow, intended);
    return false;
  }
  Message& m = at(tail_);
  m = Message{};
  m.intended = intended;
  m.payload = context_.sizes.next();
  ++tail_;
  return true;
}

void StreamConnection::submit(std::int64_t intended, std::int64_t now) {
  if (enqueue(intended)) {
    flush(now);
  }
  if (state_ == State::idle) {
    connect(now);
  }
}

void StreamConnection::flush(std::int64_t now) {
  if (state_ != State::connected) {
    return;
  }
  for (;;) {
    if (tx_begin_ == tx_end_) {
      tx_begin_ = tx_end_ = 0;
      while (unsent_ < tail_) {
        Message& m = at(unsent_);
        const std::size_t size = wire(m);
        if (tx_end_ + size > tx_.size()) {
          break;
        }
        m.checksum = encode_message(tx_.data() + tx_end_, context_.config.protocol, id_, unsent_,
                                    m.payload, context_.pool);
        m.sent = now;
        context_.recorder.record_send(m.intended, now, size, open_mode_);
        tx_end_ += size;
        ++unsent_;
      }
      if (tx_end_ == 0) {
        set_output_wanted(false);
        return;
      }
    }
    const IoResult result = send_some(
        fd_.get(), std::span<const std::byte>(tx_.data() + tx_begin_, tx_end_ - tx_begin_),
        context_.syscalls);
    switch (result.status) {
      case IoStatus::ok:
        tx_begin_ += result.bytes;
        continue;
      case IoStatus::would_block:
        set_output_wanted(true);
        return;
      case IoStatus::closed:
      case IoStatus::reset:
        drop(Failure::reset, now);
        return;
      case IoStatus::error:
        drop(Failure::send_error, now);
        return;
    }
  }
}

void StreamConnection::set_output_wanted(bool wanted) {
  if (wanted != output_wanted_ && fd_) {
    output_wanted_ = wanted;
    if (rewatch(fd_.get(), wanted ? EPOLLIN | EPOLLOUT : EPOLLIN) != 0) {
      output_wanted_ = !wanted;
    }
  }
}

void StreamConnection::on_events(std::uint32_t events, std::int64_t now) {
  if (state_ == State::connecting) {
    int err = 0;
    socklen_t length = sizeof(err);
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &length) != 0) {
      err = errno;
    }
    if (err != 0) {
      connect_failed(err, now);
    } else if ((events & EPOLLOUT) != 0) {
      if (int werr = rewatch(fd_.get(), EPOLLIN)) {
        connect_failed(werr, now);
        return;
      }
      output_wanted_ = false;
      on_connected(now);
    }
    return;
  }
  if (state_ != State::connected) {
    return;
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
    receive(now);
  }
  if (state_ == State::connected && (events & EPOLLOUT) != 0) {
    flush(now);
  }
}

void StreamConnection::receive(std::int64_t now) {
  const std::uint32_t generation = generation_;
  if (framed_) {
    receive_framed(now);
  } else {
    receive_raw(now);
  }
  if (generation == generation_ && state_ == State::connected) {
    fill(now);
    flush(now);
  } else if (state_ == State::idle) {
    fill(now);  // connect mode: the next connection
  }
}

void StreamConnection::receive_framed(std::int64_t& now) {
  if (rx_start_ == rx_end_) {
    rx_start_ = rx_end_ = 0;
  } else if (rx_.size() - rx_end_ < max_wire_) {
    // Keep room for a whole frame: move the partial one to the front (rare, and at most
    // one frame's worth of bytes).
    std::memmove(rx_.data(), rx_.data() + rx_start_, rx_end_ - rx_start_);
    rx_end_ -= rx_start_;
    rx_start_ = 0;
  }
  const IoResult result = receive_some(
      fd_.get(), std::span<std::byte>(rx_.data() + rx_end_, rx_.size() - rx_end_),
      context_.syscalls);
  if (result.status != IoStatus::ok) {
    if (result.status == IoStatus::would_block) return;
    const bool issuing = context_.tickets.issuing();
    if (result.status == IoStatus::closed) {
      drop(in_flight() > 0 || issuing ? std::optional(Failure::closed_by_peer) : std::nullopt, now);
    } else {
      drop(result.status == IoStatus::reset ? Failure::reset : Failure::receive_error, now);
    }
    return;
  }
  // Stamped when read, not when the wait returned: bytes that came in while other
  // connections' events were being handled would be timed from before they arrived, and a
  // stretch without the CPU would make their echo look faster than the wire. The sends this
  // read sets off are stamped from here too.
  now = monotonic_ns();
  const std::size_t scan_from = rx_end_;
  rx_end_ += result.bytes;
  const std::uint32_t generation = generation_;
  const auto status = decoder_.scan(
      std::span<const std::byte>(rx_.data() + scan_from, result.bytes),
      [&](std::size_t end, std::uint32_t) {
        if (generation != generation_ || state_ != State::connected) return;
        const std::size_t frame_end = scan_from + end;
        handle_frame(std::span<const std::byte>(rx_.data() + rx_start_, frame_end - rx_start_), now);
        if (generation == generation_) {
          rx_start_ = frame_end;
        }
      });
  if (status == FrameDecoder::Status::oversize && generation == generation_ &&
      state_ == State::connected) {
    drop(Failure::protocol_error, now);
  }
}

void StreamConnection::receive_raw(std::int64_t& now) {
  const IoResult result = receive_some(fd_.get(), std::span<std::byte>(rx_), context_.syscalls);
  if (result.status != IoStatus::ok) {
    if (result.status == IoStatus::would_block) return;
    if (result.status == IoStatus::closed) {
      drop(in_flight() > 0 || context_.tickets.issuing()
               ? std::optional(Failure::closed_by_peer) : std::nullopt, now);
    } else {
      drop(result.status == IoStatus::reset ? Failure::reset : Failure::receive_error, now);
    }
    return;
  }
  now = monotonic_ns();  // see receive_framed()
  const std::uint32_t generation = generation_;
  std::size_t pos = 0;
  while (pos < result.bytes && generation == generation_) {
    if (head_ == unsent_) {
      // Bytes nobody asked for: the stream can no longer be trusted.
      drop(Failure::unexpected, now);
      return;
    }
    Message& m = at(head_);
    const std::size_t take = std::min(wire(m) - m.received, result.bytes - pos);
    m.mismatched += static_cast<std::uint32_t>(count_mismatches(
        std::span<const std::byte>(rx_.data() + pos, take), m.received, expected(head_),
        context_.pool));
    m.received += static_cast<std::uint32_t>(take);
    pos += take;
    if (m.received == wire(m)) {
      complete_front(now);
    }
  }
}

void StreamConnection::handle_frame(std::span<const std::byte> frame, std::int64_t now) {
  if (head_ == unsent_) {
    context_.recorder.count(Failure::unexpected, now);
    return;
  }
  const std::span<const std::byte> payload = frame.subspan(kFrameHeaderSize);
  const auto id = read_message_id(payload);
  const bool fits_front = frame.size() == wire(at(head_));
  if (!(id && id->connection == id_ && id->sequence == head_ && fits_front)) {
    if (id && id->connection == id_ && id->sequence > head_ && id->sequence < unsent_ &&
        is_intact(payload)) {
      // An intact echo of a later message: the ones before it were never echoed.
      while (head_ < id->sequence) {
        context_.recorder.count(Failure::missing, at(head_).intended);
        ++head_;
      }
    } else {
      // A damaged echo: charge it to the oldest message waiting for one.
      Message& m = at(head_);
      const std::size_t common = std::min(frame.size(), wire(m));
      const std::size_t differ = count_mismatches(frame.first(common), 0, expected(head_),
                                                  context_.pool) +
                                 (std::max(frame.size(), wire(m)) - common);
      m.mismatched = static_cast<std::uint32_t>(std::max<std::size_t>(differ, 1));
      complete_front(now);
      return;
    }
  }
  Message& m = at(head_);
  const std::size_t common = std::min(frame.size(), wire(m));
  m.mismatched = static_cast<std::uint32_t>(
      count_mismatches(frame.first(common), 0, expected(head_), context_.pool) +
      (std::max(frame.size(), wire(m)) - common));
  complete_front(now);
}

void StreamConnection::complete_front(std::int64_t now) {
  const Message& m = at(head_);
  if (m.mismatched > 0) {
    context_.recorder.count(Failure::mismatched, m.intended);
    context_.recorder.note(Anomaly::mismatched_bytes, m.mismatched);
  } else {
    context_.recorder.record_echo(m.intended, m.sent, now, wire(m));
  }
  ++head_;
  backoff_ns_ = kFirstBackoffNs;
  if (connect_mode_ && head_ == tail_) {
    close_socket();
    state_ = State::idle;
  }
}

void StreamConnection::on_timeout(std::int64_t now) {
  context_.recorder.count(Failure::timeout, at(head_).intended);
  ++head_;
  // The stream is in an unknown state (the echo may still come): start afresh.
  drop(std::nullopt, now);
}

void StreamConnection::drop(std::optional<Failure> reason, std::int64_t now) {
  if (reason) {
    context_.recorder.count(*reason, now);
  }
  if (head_ < tail_) {
    const bool partial = framed_ ? rx_end_ > rx_start_ : at(head_).received > 0;
    if (head_ < unsent_ && partial) {
      context_.recorder.count(Failure::short_echo, at(head_).intended);
      ++head_;
    }
    for (; head_ < tail_; ++head_) {
      context_.recorder.count(Failure::aborted, at(head_).intended);
    }
  }
  if (connect_pending_) {
    context_.recorder.count(Failure::aborted, connect_started_);
    connect_pending_ = false;
  }
  head_ = unsent_ = tail_;
  close_socket();
  state_ = State::backoff;
  backoff_until_ = now + backoff_ns_;
  backoff_ns_ = std::min(backoff_ns_ * 2, kMaxBackoffNs);
}

void StreamConnection::close_socket() {
  fd_.reset();  // closing removes it from the epoll set
  ++generation_;
  tx_begin_ = tx_end_ = 0;
  rx_start_ = rx_end_ = 0;
  decoder_ = FrameDecoder(context_.config.size.max);
  output_wanted_ = false;
}

void StreamConnection::tick(std::int64_t now) {
  const std::int64_t timeout = context_.config.timeout.count();
  switch (state_) {
    case State::connecting:
      if (now - connect_started_ > timeout) {
        connect_failed(ETIMEDOUT, now);
      }
      return;
    case State::connected:
      if (head_ < unsent_ && now - at(head_).sent > timeout) {
        on_timeout(now);
      }
      return;
    case State::backoff:
      if (now >= backoff_until_) {
        state_ = State::idle;
        if (!connect_mode_ && (context_.tickets.issuing() || tail_ > head_)) {
          connect(now);
        } else {
          fill(now);
        }
      }
      return;
    case State::idle:
      fill(now);
      return;
  }
}

void StreamConnection::abandon(std::int64_t now) {
  const std::uint64_t unfinished = in_flight();
  if (unfinished > 0) {
    context_.recorder.count(Failure::unfinished, now, unfinished);
  }
  head_ = unsent_ = tail_;
  connect_pending_ = false;
  close_socket();
  state_ = State::idle;
}

}  // namespace echolab
