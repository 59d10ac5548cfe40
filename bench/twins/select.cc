// twin-select: one thread, non-blocking sockets, select(). A client is watched for reading
// until an echo could not be sent whole, then for writing until the rest is out. Descriptors
// at or past FD_SETSIZE are closed at once. SIGTERM's default action ends it.
#include <fcntl.h>
#include <sys/select.h>

#include <map>
#include <string>

#include "twin.h"

namespace {

// Sends what it can of `data`; false when the connection is gone.
bool send_some(int fd, std::string& data) {
  const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  data.erase(0, static_cast<size_t>(n));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int listener = twin::listen_and_announce(twin::parse(argc, argv));
  ::fcntl(listener, F_SETFL, O_NONBLOCK);
  std::map<int, std::string> clients;  // fd -> bytes owed to it
  char buffer[16384];
  for (;;) {
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_SET(listener, &readable);
    int top = listener;
    for (const auto& [fd, owed] : clients) {
      FD_SET(fd, owed.empty() ? &readable : &writable);
      top = fd > top ? fd : top;
    }
    if (::select(top + 1, &readable, &writable, nullptr, nullptr) < 0) continue;
    for (auto it = clients.begin(); it != clients.end();) {
      const int fd = it->first;
      bool open = true;
      if (FD_ISSET(fd, &writable)) {
        open = send_some(fd, it->second);
      } else if (FD_ISSET(fd, &readable)) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n > 0) {
          it->second.assign(buffer, static_cast<size_t>(n));
          open = send_some(fd, it->second);
        } else {
          open = n < 0 && (errno == EAGAIN || errno == EINTR);
        }
      }
      if (!open) {
        ::close(fd);
        it = clients.erase(it);
      } else {
        ++it;
      }
    }
    if (FD_ISSET(listener, &readable)) {
      for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;) {
        if (fd >= FD_SETSIZE) {
          ::close(fd);
          continue;
        }
        twin::no_delay(fd);
        clients.emplace(fd, std::string());
      }
    }
  }
}
