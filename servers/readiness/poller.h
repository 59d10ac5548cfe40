#pragma once
// The seam of the readiness engines: a Poller only watches descriptors and reports which
// are ready (muduo's Poller, sockperf's I/O handler). Everything else a readiness server
// does (accepting, sessions, idle deadlines, flushing, the drain at stop) is the loop's, in
// servers/readiness/loop.h, written once for select, poll and epoll alike.
//
// A Poller belongs to the one thread that runs its loop; none of it is thread-safe.
#include <chrono>
#include <system_error>
#include <vector>

#include "core/stats.h"

namespace echolab {

struct Readiness {
  int fd;
  bool readable;
  bool writable;
  bool hangup;  // the peer hung up or the socket has an error: the next recv or send says which
};

class Poller {
 public:
  virtual ~Poller() = default;

  // False when this poller cannot watch `fd` at all (select: fd >= FD_SETSIZE). The loop
  // refuses such a connection instead of watching it.
  [[nodiscard]] virtual bool can_watch(int fd) const = 0;

  // Sets what `fd` is watched for; called often with an unchanged interest, which a poller
  // must make cheap. Returns an error code only when the kernel refused (epoll_ctl).
  [[nodiscard]] virtual std::error_code watch(int fd, bool read, bool write) = 0;

  // Stops watching `fd`. Call before closing it.
  virtual void forget(int fd) = 0;

  // Waits until something watched is ready or `timeout` passes (negative: no timeout), and
  // replaces `ready` with what is. An interrupted wait (EINTR) returns with nothing ready.
  // Counts its own system calls, and those watch() and forget() made since, in `counters`.
  virtual void wait(std::chrono::milliseconds timeout, std::vector<Readiness>& ready, Counters& counters) = 0;

  // Moves the system calls watch() and forget() made since the last wait into `counters`
  // (the loop calls it once at the end, so no call goes uncounted).
  virtual void take_counts(Counters& /*counters*/) {}
};

}  // namespace echolab
