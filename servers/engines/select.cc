// select: the lecture's single-threaded multiplexed server. One thread, non-blocking sockets,
// select() over the listener and every connection, a StreamSession buffer per client.
// Concurrency: readiness multiplexing, so many clients share one thread; any service cost
// (--work) stalls them all. Limits: select() cannot watch a descriptor >= FD_SETSIZE (1024):
// such a connection is refused (closed and counted), never put in an fd_set, and the engine
// refuses to start if its own listener or wake pipe is already past it. Costs: each call
// copies and scans both sets up to the highest descriptor, so the cost per message grows with
// the connection count.
// Try it: echolab-server --engine select --protocol raw & nc 127.0.0.1 7007
#include <sys/select.h>

#include "servers/engines/engines.h"
#include "servers/readiness/loop.h"

namespace echolab {
namespace {

class SelectPoller final : public Poller {
 public:
  SelectPoller() {
    FD_ZERO(&read_set_);
    FD_ZERO(&write_set_);
  }

  [[nodiscard]] bool can_watch(int fd) const override { return fd >= 0 && fd < FD_SETSIZE; }

  [[nodiscard]] std::error_code watch(int fd, bool read, bool write) override {
    if (!can_watch(fd)) {
      return std::make_error_code(std::errc::value_too_large);
    }
    read ? FD_SET(fd, &read_set_) : FD_CLR(fd, &read_set_);
    write ? FD_SET(fd, &write_set_) : FD_CLR(fd, &write_set_);
    if (read || write) {
      max_fd_ = std::max(max_fd_, fd);
    }
    return {};
  }

  void forget(int fd) override {
    if (!can_watch(fd)) {
      return;
    }
    FD_CLR(fd, &read_set_);
    FD_CLR(fd, &write_set_);
    while (max_fd_ >= 0 && !FD_ISSET(max_fd_, &read_set_) && !FD_ISSET(max_fd_, &write_set_)) {
      --max_fd_;
    }
  }

  void wait(std::chrono::milliseconds timeout, std::vector<Readiness>& ready, Counters& counters) override {
    ready.clear();
    // select() overwrites its sets: it is given copies, as every select loop must.
    fd_set readable = read_set_;
    fd_set writable = write_set_;
    timeval limit{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    counters.count(Syscall::select);
    const int n = ::select(max_fd_ + 1, &readable, &writable, nullptr, timeout.count() < 0 ? nullptr : &limit);
    for (int fd = 0; n > 0 && fd <= max_fd_; ++fd) {
      const bool can_read = FD_ISSET(fd, &readable);
      const bool can_write = FD_ISSET(fd, &writable);
      if (can_read || can_write) {
        ready.push_back({fd, can_read, can_write, false});
      }
    }
  }

 private:
  fd_set read_set_;
  fd_set write_set_;
  int max_fd_ = -1;
};

}  // namespace

void run_select(EngineContext& context) {
  SelectPoller poller;
  run_readiness_loop(context, poller, {context.socket});
}

}  // namespace echolab
