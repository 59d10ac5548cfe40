// twin-epoll: one thread, level-triggered epoll, non-blocking sockets. A client is watched
// for input until an echo could not be sent whole, then for output until the rest is out.
// SIGTERM's default action ends it.
#include <fcntl.h>
#include <sys/epoll.h>

#include <string>
#include <unordered_map>

#include "twin.h"

int main(int argc, char** argv) {
  const int listener = twin::listen_and_announce(twin::parse(argc, argv));
  ::fcntl(listener, F_SETFL, O_NONBLOCK);
  const int poller = ::epoll_create1(EPOLL_CLOEXEC);
  if (poller < 0) twin::die("epoll_create1");
  epoll_event event{EPOLLIN, {.fd = listener}};
  ::epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  std::unordered_map<int, std::string> owed;  // fd -> bytes not yet sent back
  const auto watch = [poller](int fd, uint32_t what) {
    epoll_event change{what, {.fd = fd}};
    ::epoll_ctl(poller, EPOLL_CTL_MOD, fd, &change);
  };
  char buffer[16384];
  epoll_event events[256];
  for (;;) {
    const int ready = ::epoll_wait(poller, events, 256, -1);
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (int client; (client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;) {
          twin::no_delay(client);
          epoll_event added{EPOLLIN, {.fd = client}};
          ::epoll_ctl(poller, EPOLL_CTL_ADD, client, &added);
        }
        continue;
      }
      std::string& pending = owed[fd];
      const bool was_pending = !pending.empty();
      if (!was_pending) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) {
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          ::close(fd);  // also leaves the epoll set
          owed.erase(fd);
          continue;
        }
        pending.assign(buffer, static_cast<size_t>(n));
      }
      const ssize_t sent = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        ::close(fd);
        owed.erase(fd);
        continue;
      }
      pending.erase(0, sent < 0 ? 0 : static_cast<size_t>(sent));
      if (pending.empty() == was_pending) watch(fd, pending.empty() ? EPOLLIN : EPOLLOUT);
    }
  }
}
