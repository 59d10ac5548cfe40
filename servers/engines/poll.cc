// poll: select's loop over poll(). One thread, non-blocking sockets, one pollfd per watched
// descriptor. Concurrency: readiness multiplexing, as select. Limits: none on descriptor
// numbers (no FD_SETSIZE), only RLIMIT_NOFILE. Costs: each call still hands the kernel the
// whole array, which scans it, so the cost per message grows with the connection count.
// Try it: echolab-server --engine poll --protocol raw & nc 127.0.0.1 7007
#include <poll.h>

#include "servers/engines/engines.h"
#include "servers/readiness/loop.h"

namespace echolab {
namespace {

class PollPoller final : public Poller {
 public:
  [[nodiscard]] bool can_watch(int fd) const override { return fd >= 0; }

  [[nodiscard]] std::error_code watch(int fd, bool read, bool write) override {
    if (fd < 0) {
      return std::make_error_code(std::errc::bad_file_descriptor);
    }
    const auto events = static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0));
    if (static_cast<std::size_t>(fd) >= slot_of_.size()) {
      slot_of_.resize(static_cast<std::size_t>(fd) + 1, kNoSlot);
    }
    int& slot = slot_of_[static_cast<std::size_t>(fd)];
    if (slot == kNoSlot) {
      slot = static_cast<int>(fds_.size());
      fds_.push_back({fd, events, 0});
    } else {
      fds_[static_cast<std::size_t>(slot)].events = events;
    }
    return {};
  }

  void forget(int fd) override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= slot_of_.size() || slot_of_[static_cast<std::size_t>(fd)] == kNoSlot) {
      return;
    }
    // The last entry takes the freed slot, so the array stays dense.
    const auto slot = static_cast<std::size_t>(slot_of_[static_cast<std::size_t>(fd)]);
    fds_[slot] = fds_.back();
    slot_of_[static_cast<std::size_t>(fds_[slot].fd)] = static_cast<int>(slot);
    fds_.pop_back();
    slot_of_[static_cast<std::size_t>(fd)] = kNoSlot;
  }

  void wait(std::chrono::milliseconds timeout, std::vector<Readiness>& ready, Counters& counters) override {
    ready.clear();
    counters.count(Syscall::poll);
    const int n = ::poll(fds_.data(), fds_.size(), timeout.count() < 0 ? -1 : static_cast<int>(timeout.count()));
    for (std::size_t i = 0; n > 0 && i < fds_.size(); ++i) {
      const short got = fds_[i].revents;
      if (got != 0) {
        ready.push_back({fds_[i].fd, (got & POLLIN) != 0, (got & POLLOUT) != 0, (got & (POLLHUP | POLLERR | POLLNVAL)) != 0});
      }
    }
  }

 private:
  static constexpr int kNoSlot = -1;
  std::vector<pollfd> fds_;
  std::vector<int> slot_of_;  // index in fds_ by descriptor
};

}  // namespace

void run_poll(EngineContext& context) {
  PollPoller poller;
  run_readiness_loop(context, poller, {context.socket});
}

}  // namespace echolab
