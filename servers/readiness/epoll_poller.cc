#include "servers/readiness/epoll_poller.h"

#include <cerrno>

#include "core/error.h"

namespace echolab {
namespace {

constexpr std::uint8_t kAdded = 1;
constexpr std::uint8_t kRead = 2;
constexpr std::uint8_t kWrite = 4;
constexpr std::uint8_t kExclusive = 8;  // added with EPOLLEXCLUSIVE, which EPOLL_CTL_MOD refuses
constexpr std::size_t kMaxEventsPerWait = 256;

}  // namespace

EpollPoller::EpollPoller() : epoll_(::epoll_create1(EPOLL_CLOEXEC)), events_(kMaxEventsPerWait) {
  if (!epoll_) {
    throw_sys_error("epoll_create1");
  }
}

std::error_code EpollPoller::watch(int fd, bool read, bool write) {
  if (fd < 0) {
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (static_cast<std::size_t>(fd) >= interest_.size()) {
    interest_.resize(static_cast<std::size_t>(fd) + 1, 0);
  }
  const std::uint8_t wanted = kAdded | (read ? kRead : 0) | (write ? kWrite : 0);
  std::uint8_t& current = interest_[static_cast<std::size_t>(fd)];
  if ((current & ~kExclusive) == wanted) {
    return {};
  }
  if ((current & kExclusive) != 0) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  epoll_event event{};
  event.events = (read ? EPOLLIN : 0u) | (write ? EPOLLOUT : 0u);
  event.data.fd = fd;
  const int op = current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  ++pending_ctl_calls_;
  if (::epoll_ctl(epoll_.get(), op, fd, &event) != 0) {
    return {errno, std::system_category()};
  }
  current = wanted;
  return {};
}

std::error_code EpollPoller::watch_exclusive(int fd) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLEXCLUSIVE;
  event.data.fd = fd;
  ++pending_ctl_calls_;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return {errno, std::system_category()};
  }
  if (static_cast<std::size_t>(fd) >= interest_.size()) {
    interest_.resize(static_cast<std::size_t>(fd) + 1, 0);
  }
  interest_[static_cast<std::size_t>(fd)] = kAdded | kRead | kExclusive;
  return {};
}

void EpollPoller::forget(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= interest_.size() || interest_[static_cast<std::size_t>(fd)] == 0) {
    return;
  }
  // Closing would remove it too, but only once every duplicate of the descriptor is closed.
  ++pending_ctl_calls_;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  interest_[static_cast<std::size_t>(fd)] = 0;
}

void EpollPoller::take_counts(Counters& counters) {
  counters.syscalls[static_cast<int>(Syscall::epoll_ctl)] += pending_ctl_calls_;
  pending_ctl_calls_ = 0;
}

void EpollPoller::wait(std::chrono::milliseconds timeout, std::vector<Readiness>& ready, Counters& counters) {
  take_counts(counters);
  ready.clear();
  counters.count(Syscall::epoll_wait);
  const int timeout_ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30));
  const int n = ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()), timeout_ms);
  for (int i = 0; i < n; ++i) {
    const std::uint32_t got = events_[static_cast<std::size_t>(i)].events;
    ready.push_back({events_[static_cast<std::size_t>(i)].data.fd, (got & EPOLLIN) != 0, (got & EPOLLOUT) != 0,
                     (got & (EPOLLHUP | EPOLLERR)) != 0});
  }
}

}  // namespace echolab
