#include "core/io.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>

#include "core/stop.h"

namespace echolab {
namespace {

IoStatus classify(int err) {
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return IoStatus::would_block;
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case ENOTCONN:
      return IoStatus::reset;
    default:
      return IoStatus::error;
  }
}

IoResult failure(int err) { return IoResult{classify(err), 0, err}; }

// The spare descriptor of accept_connection, shared by every thread of the process.
std::mutex g_spare_mutex;
int g_spare_fd = -1;

bool is_transient_accept_error(int err) {
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ENOBUFS:
    case ENOMEM:
      return true;
    default:
      return false;
  }
}

// Out of descriptors: close the spare, take the waiting connection, close it, re-arm. The
// client sees an immediate close instead of hanging, and the listener stops being readable.
// Only when a connection is waiting: on a blocking listener, accept would otherwise sleep
// holding the spare's slot, and then refuse a client that a sibling thread, already blocked
// in accept with a descriptor reserved, could have served.
void refuse_with_spare(int listen_fd, Counters& counters) {
  std::lock_guard lock(g_spare_mutex);
  if (g_spare_fd < 0) {
    return;
  }
  pollfd waiting{listen_fd, POLLIN, 0};
  counters.count(Syscall::poll);
  if (::poll(&waiting, 1, 0) <= 0) {
    return;
  }
  ::close(g_spare_fd);
  g_spare_fd = -1;
  counters.count(Syscall::accept);
  const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    ++counters.connections_refused;
  }
  g_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

std::atomic<bool> g_log_connections{false};

// One line per connection, for people and tests checking who connected (never in a
// benchmark). The address comes from accept itself: getpeername would fail for a client
// that already reset, and its line would be lost.
void log_peer(const SocketAddress& peer) {
  const std::string line = "echolab-server: accepted " + format_address(peer) + "\n";
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

void set_connection_logging(bool on) { g_log_connections.store(on); }

bool connection_logging() { return g_log_connections.load(std::memory_order_relaxed); }

IoResult receive_some(int fd, std::span<std::byte> buffer, Counters& counters) {
  for (;;) {
    counters.count(Syscall::recv);
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n > 0) {
      return IoResult{IoStatus::ok, static_cast<std::size_t>(n), 0};
    }
    if (n == 0) {
      return IoResult{IoStatus::closed, 0, 0};
    }
    if (errno != EINTR) {
      return failure(errno);
    }
  }
}

IoResult send_some(int fd, std::span<const std::byte> data, Counters& counters) {
  for (;;) {
    counters.count(Syscall::send);
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      return IoResult{IoStatus::ok, static_cast<std::size_t>(n), 0};
    }
    if (errno != EINTR) {
      return failure(errno);
    }
  }
}

IoResult send_all(int fd, std::span<const std::byte> data, Counters& counters) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    IoResult result = send_some(fd, data.subspan(sent), counters);
    if (result.status != IoStatus::ok) {
      result.bytes = sent;
      return result;
    }
    sent += result.bytes;
  }
  return IoResult{IoStatus::ok, sent, 0};
}

DatagramResult receive_datagram(int fd, std::span<std::byte> buffer, SocketAddress& from,
                                Counters& counters) {
  for (;;) {
    from.length = sizeof(from.storage);
    counters.count(Syscall::recvfrom);
    const ssize_t n = ::recvfrom(fd, buffer.data(), buffer.size(), MSG_TRUNC, from.get(), &from.length);
    if (n >= 0) {
      const auto size = static_cast<std::size_t>(n);
      return DatagramResult{IoStatus::ok, size, size > buffer.size(), 0};
    }
    if (errno != EINTR) {
      return DatagramResult{classify(errno), 0, false, errno};
    }
  }
}

IoResult send_datagram(int fd, std::span<const std::byte> data, const SocketAddress& to,
                       Counters& counters) {
  for (;;) {
    counters.count(Syscall::sendto);
    const ssize_t n =
        ::sendto(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT, to.get(), to.length);
    if (n >= 0) {
      return IoResult{IoStatus::ok, static_cast<std::size_t>(n), 0};
    }
    if (errno != EINTR) {
      return failure(errno);
    }
  }
}

BatchResult receive_datagram_batch(int fd, std::span<mmsghdr> messages, Counters& counters) {
  for (;;) {
    counters.count(Syscall::recvmmsg);
    const int n = ::recvmmsg(fd, messages.data(), static_cast<unsigned>(messages.size()),
                             MSG_WAITFORONE | MSG_TRUNC, nullptr);
    if (n >= 0) {
      return BatchResult{IoStatus::ok, static_cast<std::size_t>(n), 0};
    }
    if (errno != EINTR) {
      return BatchResult{classify(errno), 0, errno};
    }
  }
}

BatchSendResult send_datagram_batch(int fd, std::span<mmsghdr> messages, Counters& counters) {
  BatchSendResult result;
  std::size_t next = 0;
  while (next < messages.size()) {
    counters.count(Syscall::sendmmsg);
    const int n = ::sendmmsg(fd, messages.data() + next, static_cast<unsigned>(messages.size() - next),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      for (std::size_t i = next; i < next + static_cast<std::size_t>(n); ++i) {
        result.bytes += messages[i].msg_len;
      }
      result.sent += static_cast<std::size_t>(n);
      next += static_cast<std::size_t>(n);
      continue;  // a short count: the head of the rest is tried once more, for its error
    }
    const int err = n == 0 ? EIO : errno;
    if (err == EINTR) {
      continue;
    }
    // The reply at the head failed on its own (a call that sent others before it stopped
    // there without saying why): given up, and the rest still go.
    if (undeliverable(err)) {
      ++result.undelivered;
    } else {
      ++result.failed;
    }
    result.last_error = err;
    ++next;
  }
  return result;
}

bool undeliverable(int err) {
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ECONNREFUSED:  // a unix client closed its socket, or an ICMP error was queued
    case ENOENT:        // a unix client's socket file was removed
    case EPERM:         // a unix client connected to another socket; or a firewall rule
    case ENOBUFS:
    case ENOMEM:
    case ECONNRESET:
    case ENOTCONN:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
      return true;
    default:
      return false;
  }
}

bool read_side_shut(int fd, Counters& counters) {
  pollfd state{fd, POLLRDHUP, 0};
  counters.count(Syscall::poll);
  return ::poll(&state, 1, 0) > 0 && (state.revents & POLLRDHUP) != 0;
}

AcceptResult accept_connection(int listen_fd, Counters& counters, bool nonblocking) {
  const int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  const bool logging = g_log_connections.load(std::memory_order_relaxed);
  SocketAddress peer;
  for (;;) {
    counters.count(Syscall::accept);
    peer.length = sizeof(peer.storage);
    const int fd = logging ? ::accept4(listen_fd, peer.get(), &peer.length, flags)
                           : ::accept4(listen_fd, nullptr, nullptr, flags);
    if (fd >= 0) {
      if (stop_requested()) {
        // The connection came in as the stop did (its signal handler ran as accept returned):
        // a client that connected after the stop is closed unanswered, never served, and
        // counted refused, not accepted, as one refused for want of descriptors is.
        ::close(fd);
        ++counters.connections_refused;
        return AcceptResult{Fd(), EINVAL, true};
      }
      ++counters.connections_accepted;
      if (logging) {
        log_peer(peer);
      }
      return AcceptResult{Fd(fd), 0, false};
    }
    const int err = errno;
    if (err == EINTR) {
      continue;
    }
    if (err == EINVAL) {
      // The listener was shut down: how a stop wakes blocked acceptors, not a failure.
      return AcceptResult{Fd(), err, true};
    }
    if (err != EAGAIN && err != EWOULDBLOCK) {
      ++counters.accept_errors;
    }
    if (err == EMFILE || err == ENFILE) {
      refuse_with_spare(listen_fd, counters);
      return AcceptResult{Fd(), err, false};
    }
    return AcceptResult{Fd(), err, !is_transient_accept_error(err)};
  }
}

void reserve_spare_fd() {
  std::lock_guard lock(g_spare_mutex);
  if (g_spare_fd < 0) {
    g_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
}

void ignore_sigpipe() {
  struct sigaction action {};
  action.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &action, nullptr);
}

}  // namespace echolab
