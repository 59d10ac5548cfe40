#pragma once
// Connection: one client socket driven by a generator thread's event loop. Implementations
// are non-blocking state machines (StreamConnection, DatagramConnection) that never throw
// and never allocate per message: every failure is counted in the thread's Recorder.
#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/address.h"
#include "core/clock.h"
#include "core/stats.h"
#include "loadgen/config.h"
#include "loadgen/message.h"
#include "loadgen/recorder.h"

namespace echolab {

// Decides, for closed and connect modes, whether another message may start now (the run
// is still issuing and the thread's message quota is not used up).
class TicketSource {
 public:
  [[nodiscard]] virtual bool take_ticket(std::int64_t now) = 0;
  [[nodiscard]] virtual bool issuing() const = 0;

 protected:
  ~TicketSource() = default;
};

// What every connection of a thread shares.
struct WorkerContext {
  const LoadConfig& config;
  const SocketAddress& target;
  const PayloadPool& pool;
  SizeSampler& sizes;
  Recorder& recorder;
  Counters& syscalls;  // the core's per-call counters: how many recv/send per message
  TicketSource& tickets;
  int epoll_fd;
  std::size_t ring_capacity;  // messages one connection may hold in flight (a power of 2)
  // Stream connections bind to sources[id % size] before connecting; empty: no bind.
  std::span<const SocketAddress> sources;
};

// The send and receive buffers of one stream connection, sized from what it can have in
// flight (a whole ring's worth of messages, up to 64 KiB per call), never from the worst
// case: 100,000 connections of one 64-byte message each need kilobytes, not gigabytes. A
// whole message always fits in tx, and after compaction a whole echo frame always fits in rx.
struct StreamBuffers {
  std::size_t tx = 0;
  std::size_t rx = 0;
};
[[nodiscard]] StreamBuffers stream_buffers(const LoadConfig& config, std::size_t ring_capacity);

class Connection {
 public:
  Connection(WorkerContext& context, std::uint32_t id, std::uint32_t slot)
      : context_(context), id_(id), slot_(slot) {}
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens the socket (and starts connecting, for streams). No messages yet.
  virtual void start(std::int64_t now) = 0;
  // The measured run begins: closed and connect modes take their first tickets.
  virtual void resume(std::int64_t now) = 0;
  virtual void on_events(std::uint32_t events, std::int64_t now) = 0;
  // Open mode: a message was due at `intended`; send it now (or queue it).
  virtual void submit(std::int64_t intended, std::int64_t now) = 0;
  // Periodic: timeouts, connect timeouts, reconnecting after a back-off.
  virtual void tick(std::int64_t now) = 0;
  // Messages issued and not yet finished (echoed, failed or timed out).
  [[nodiscard]] virtual std::size_t in_flight() const = 0;
  // True once set-up is over, either way (connected, or failed and counted).
  [[nodiscard]] virtual bool settled() const = 0;
  // The run is over: what is still in flight is counted as unfinished; the socket closes.
  virtual void abandon(std::int64_t now) = 0;

  // epoll data: slot and generation, so that an event for a socket this connection has
  // since closed (and replaced) is recognised as stale and ignored.
  [[nodiscard]] std::uint64_t epoll_key() const {
    return std::uint64_t{slot_} << 32 | generation_;
  }
  [[nodiscard]] std::uint32_t generation() const { return generation_; }

 protected:
  // Registers a freshly opened socket under a new generation. Returns 0 or errno.
  int watch(int fd, std::uint32_t events) {
    ++generation_;
    epoll_event event{};
    event.events = events;
    event.data.u64 = epoll_key();
    context_.syscalls.count(Syscall::epoll_ctl);
    return ::epoll_ctl(context_.epoll_fd, EPOLL_CTL_ADD, fd, &event) == 0 ? 0 : errno;
  }
  int rewatch(int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = epoll_key();
    context_.syscalls.count(Syscall::epoll_ctl);
    return ::epoll_ctl(context_.epoll_fd, EPOLL_CTL_MOD, fd, &event) == 0 ? 0 : errno;
  }

  WorkerContext& context_;
  const std::uint32_t id_;  // unique over all threads: carried in every message
  const std::uint32_t slot_;  // index in the thread's connection table
  std::uint32_t generation_ = 0;
};

}  // namespace echolab
