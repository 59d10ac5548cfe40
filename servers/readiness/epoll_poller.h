#pragma once
// A level-triggered epoll Poller: the kernel keeps the interest list, so a wait costs what is
// ready, not what is watched. Interest is changed (epoll_ctl) only when it really changes,
// so a connection that is read and answered at once costs no epoll_ctl at all.
#include <sys/epoll.h>

#include <cstdint>
#include <vector>

#include "core/fd.h"
#include "servers/readiness/poller.h"

namespace echolab {

class EpollPoller final : public Poller {
 public:
  // Throws std::system_error (epoll_create1) when the kernel refuses an instance.
  EpollPoller();

  [[nodiscard]] bool can_watch(int fd) const override { return fd >= 0; }
  [[nodiscard]] std::error_code watch(int fd, bool read, bool write) override;
  void forget(int fd) override;
  void wait(std::chrono::milliseconds timeout, std::vector<Readiness>& ready, Counters& counters) override;

  // Adds `fd` with EPOLLEXCLUSIVE (read interest only, never modified later): of the
  // pollers sharing a listener, one is woken per connection instead of all of them. A later
  // watch() of `fd` asking for anything but reading fails (EINVAL) instead of modifying it.
  [[nodiscard]] std::error_code watch_exclusive(int fd);

  void take_counts(Counters& counters) override;

 private:
  // Interest as stored in the kernel, per descriptor: 0 = not added; else
  // 1 | read<<1 | write<<2 | exclusive<<3.
  std::vector<std::uint8_t> interest_;
  Fd epoll_;
  std::uint64_t pending_ctl_calls_ = 0;
  std::vector<epoll_event> events_;
};

}  // namespace echolab
