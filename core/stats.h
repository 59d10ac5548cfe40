#pragma once
// Server counters. Each worker (thread or process) counts into its own plain Counters, with
// no atomics on the hot path, and adds them to the ServerStats at the end of each connection
// or datagram batch. ServerStats lives in a shared anonymous mapping, so that the children
// of the fork and prefork engines add into the same totals as threads do.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace echolab {

// The system calls the I/O layer makes, by kind: per message, the clearest cost of a model.
enum class Syscall : int {
  accept,
  recv,
  send,
  recvfrom,
  sendto,
  recvmmsg,
  sendmmsg,
  select,
  poll,
  epoll_wait,
  epoll_ctl,
  fork,
  thread_create,
  eventfd_read,   // a reactor collecting finished work (reactor-pool)
  eventfd_write,  // a pool worker waking the reactor
  io_uring_enter,  // submitting to and waiting on an io_uring: its only system call per batch
  kCount
};
[[nodiscard]] std::string_view to_string(Syscall call);

struct Counters {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_closed = 0;
  std::uint64_t connections_refused = 0;  // accepted then closed at once: over a limit
  std::uint64_t messages = 0;             // frames, datagrams, raw reads or sockperf messages answered
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t protocol_errors = 0;      // over-size frames, bad datagram prefixes
  std::uint64_t datagrams_truncated = 0;  // bigger than the receive buffer (MSG_TRUNC)
  std::uint64_t datagrams_dropped = 0;    // not echoed: truncated, malformed, unaddressable
  std::uint64_t peer_resets = 0;          // ECONNRESET / EPIPE: that connection closed
  std::uint64_t io_errors = 0;            // any other failed recv/send
  std::uint64_t accept_errors = 0;        // failed accept(): EMFILE, ENFILE, ENOBUFS...
  std::uint64_t spawn_errors = 0;         // fork() or pthread_create() failed
  std::uint64_t idle_timeouts = 0;        // closed after --idle-timeout without a message
  std::uint64_t messages_unanswered = 0;  // complete frames whose work a stop's deadline cut off
  // Complete messages the protocol says not to answer (sockperf: no reply requested, or a
  // warm-up): received and dropped, not an error, never in `messages`.
  std::uint64_t messages_no_reply = 0;
  std::uint64_t replies_dropped = 0;      // datagram replies the peer's full queue refused
  std::uint64_t workers_replaced = 0;     // pool workers that died or were signalled, respawned
  // Wake-ups of a pool worker waiting for a connection that brought none: the thundering
  // herd (how they are counted: servers/accept_wait.h).
  std::uint64_t accept_wakeups_idle = 0;
  std::array<std::uint64_t, static_cast<int>(Syscall::kCount)> syscalls{};

  void count(Syscall call) { ++syscalls[static_cast<int>(call)]; }
  void add(const Counters& other);
};

class ServerStats {
 public:
  static constexpr int kMaxWorkers = 256;
  static constexpr int kCounterFields = 19;  // the plain uint64 fields of Counters

  // Adds a worker's counters to the totals, and its messages, connections and idle wake-ups
  // to the spread
  // over workers (worker < 0, or past kMaxWorkers, counts in the totals only). Thread- and
  // process-safe; call it per connection or per batch, never per message.
  void add(const Counters& counters, int worker = -1);

  // Adds `connections` to one worker's share only (the totals already have them): for a
  // pool whose connections are accepted by another thread and then bound to a worker.
  void add_connection_share(int worker, std::uint64_t connections);

  // Connections open right now, and the most ever open at once.
  void connection_opened();
  void connection_closed();

  [[nodiscard]] Counters totals() const;

  // Only an engine that waits for connections in a way that can wake for nothing counts
  // those wake-ups (the thundering herd); for the others a zero would read as "no herd"
  // when nothing was measured, so their report leaves the herd out entirely.
  enum class Herd { not_counted, counted };
  [[nodiscard]] nlohmann::json to_json(Herd herd) const;

 private:
  void add_share(int worker, std::uint64_t connections, std::uint64_t messages, std::uint64_t wakeups_idle);

  using Cell = std::atomic<std::uint64_t>;
  static_assert(Cell::is_always_lock_free, "counters are shared between processes");
  std::array<Cell, kCounterFields> totals_{};
  std::array<Cell, static_cast<int>(Syscall::kCount)> syscalls_{};
  Cell active_{0};
  Cell peak_active_{0};
  std::array<Cell, kMaxWorkers> worker_connections_{};
  std::array<Cell, kMaxWorkers> worker_messages_{};
  std::array<Cell, kMaxWorkers> worker_wakeups_idle_{};
  std::atomic<int> workers_seen_{0};
};

// A ServerStats in memory shared with every child forked after its creation.
class SharedStats {
 public:
  SharedStats();
  ~SharedStats();
  SharedStats(const SharedStats&) = delete;
  SharedStats& operator=(const SharedStats&) = delete;

  [[nodiscard]] ServerStats& get() { return *stats_; }

 private:
  ServerStats* stats_;
};

}  // namespace echolab
