#include "core/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/error.h"

namespace echolab {
namespace {

int set_int_option(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

// How long the stale-socket probe waits for a unix server to answer. A unix connect
// completes or fails at once unless the kernel makes it wait; it never waits on a
// non-blocking socket, so this only bounds a kernel that would.
constexpr int kProbeTimeoutMs = 1000;

// A unix socket file nobody accepts on is left over from a crashed server: remove it. One
// that still answers belongs to a live server, and taking it over would steal its clients.
// The probe is non-blocking: a live server whose backlog is full would hold a blocking
// connect forever, and a full backlog (EAGAIN) proves someone is listening.
void remove_stale_unix_socket(const std::string& path, const SocketAddress& address, int type) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    return;  // nothing there
  }
  if (!S_ISSOCK(info.st_mode)) {
    throw UsageError(printable(path) + " exists and is not a socket; refusing to replace it");
  }
  Fd probe(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) {
    throw_sys_error("socket");
  }
  const auto in_use = [&path]() { return UsageError(printable(path) + " is in use by a running server"); };
  int err = ::connect(probe.get(), address.get(), address.length) == 0 ? 0 : errno;
  if (err == EINPROGRESS || err == EINTR) {
    pollfd waiter{probe.get(), POLLOUT, 0};
    int ready;
    while ((ready = ::poll(&waiter, 1, kProbeTimeoutMs)) < 0 && errno == EINTR) {
    }
    socklen_t length = sizeof(err);
    if (ready <= 0 || ::getsockopt(probe.get(), SOL_SOCKET, SO_ERROR, &err, &length) != 0) {
      throw in_use();  // it did not refuse: something holds the path
    }
  }
  if (err == 0 || err == EAGAIN) {
    throw in_use();
  }
  if (err == ECONNREFUSED || err == ENOENT) {
    ::unlink(path.c_str());
  }
}

// connect(2) interrupted by a signal goes on in the background and must not be retried
// (that gives EALREADY): wait for it to finish and read its outcome instead.
int connect_completely(int fd, const SocketAddress& address) {
  if (::connect(fd, address.get(), address.length) == 0) {
    return 0;
  }
  if (errno != EINTR) {
    return errno;
  }
  pollfd waiter{fd, POLLOUT, 0};
  while (::poll(&waiter, 1, -1) < 0) {
    if (errno != EINTR) {
      return errno;
    }
  }
  int err = 0;
  socklen_t length = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) {
    return errno;
  }
  return err;
}

}  // namespace

Listener::Listener(Fd fd, std::string address, std::string unix_path)
    : fd_(std::move(fd)), address_(std::move(address)), unix_path_(std::move(unix_path)) {
  struct stat info {};
  if (!unix_path_.empty() && ::lstat(unix_path_.c_str(), &info) == 0) {
    device_ = info.st_dev;
    inode_ = info.st_ino;
  }
}

Listener::~Listener() {
  if (unix_path_.empty() || !fd_.valid() || inode_ == 0) {
    return;
  }
  // Only the socket file this listener bound: another server may have replaced it since
  // (after finding this one's path stale, or after someone removed it), and its path
  // must outlive us.
  struct stat info {};
  if (::lstat(unix_path_.c_str(), &info) == 0 && S_ISSOCK(info.st_mode) && info.st_dev == device_ &&
      info.st_ino == inode_) {
    ::unlink(unix_path_.c_str());
  }
}

int apply_connection_options(int fd, Transport transport, const SocketOptions& options) {
  if (transport == Transport::tcp && options.no_delay) {
    if (int err = set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1)) {
      return err;
    }
  }
  if (options.send_buffer > 0) {
    if (int err = set_int_option(fd, SOL_SOCKET, SO_SNDBUF, options.send_buffer)) {
      return err;
    }
  }
  if (options.receive_buffer > 0) {
    if (int err = set_int_option(fd, SOL_SOCKET, SO_RCVBUF, options.receive_buffer)) {
      return err;
    }
  }
  return 0;
}

int set_nonblocking(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) {
    return errno;
  }
  const int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) {
    return errno;
  }
  return 0;
}

Listener open_listener(const Endpoint& endpoint, Transport transport, const SocketOptions& options) {
  const std::vector<SocketAddress> candidates = resolve(endpoint, transport, /*passive=*/true);
  const int type = socket_type(transport);
  if (endpoint.is_unix()) {
    remove_stale_unix_socket(endpoint.unix_path, candidates.front(), type);
  }
  // The last failure, thrown if no candidate works. Kept as an errno (read first: building
  // the call's name may change errno) and a call name rather than a std::system_error:
  // assigning one of those to a variable trips UBSan's vptr check (GCC 12).
  std::string failed_call = "bind";
  int failed_errno = EADDRNOTAVAIL;
  for (const SocketAddress& candidate : candidates) {
    Fd fd(::socket(candidate.family(), type | SOCK_CLOEXEC, 0));
    if (!fd) {
      failed_errno = errno;
      failed_call = "socket";
      continue;
    }
    if (candidate.family() != AF_UNIX) {
      // Streams only: on UDP, SO_REUSEADDR lets a second server bind the same port silently.
      if (type == SOCK_STREAM && options.reuse_address &&
          set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1) != 0) {
        failed_errno = errno;
        failed_call = "setsockopt(SO_REUSEADDR)";
        continue;
      }
      if (options.reuse_port && set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1) != 0) {
        failed_errno = errno;
        failed_call = "setsockopt(SO_REUSEPORT)";
        continue;
      }
      // "[::]" serves IPv4 clients too (seen as ::ffff:a.b.c.d), whatever the sysctl says.
      if (candidate.family() == AF_INET6 && set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0) != 0) {
        failed_errno = errno;
        failed_call = "setsockopt(IPV6_V6ONLY)";
        continue;
      }
    }
    // Listening sockets pass their buffer sizes on to accepted connections.
    if (int err = apply_connection_options(fd.get(), transport, options)) {
      failed_errno = err;
      failed_call = "setsockopt";
      continue;
    }
    if (::bind(fd.get(), candidate.get(), candidate.length) != 0) {
      failed_errno = errno;
      failed_call = "bind " + format_address(candidate);
      continue;
    }
    if (type == SOCK_STREAM && ::listen(fd.get(), options.backlog) != 0) {
      failed_errno = errno;
      failed_call = "listen";
      continue;
    }
    std::string bound = local_address(fd.get());
    return Listener(std::move(fd), std::move(bound), endpoint.unix_path);
  }
  throw_sys_error(failed_call, failed_errno);
}

Fd open_listener_beside(int listener, const SocketOptions& options) {
  SocketAddress address;
  if (::getsockname(listener, address.get(), &address.length) != 0) {
    throw_sys_error("getsockname");
  }
  if (address.family() != AF_INET && address.family() != AF_INET6) {
    throw_sys_error("open_listener_beside", EAFNOSUPPORT);
  }
  Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    throw_sys_error("socket");
  }
  if (options.reuse_address && set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1) != 0) {
    throw_sys_error("setsockopt(SO_REUSEADDR)");
  }
  // As open_listener set it: sockets of one SO_REUSEPORT group must agree on the family they serve.
  if (address.family() == AF_INET6 && set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0) != 0) {
    throw_sys_error("setsockopt(IPV6_V6ONLY)");
  }
  if (set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1) != 0) {
    throw_sys_error("setsockopt(SO_REUSEPORT)");
  }
  if (int err = apply_connection_options(fd.get(), Transport::tcp, options)) {
    throw_sys_error("setsockopt", err);
  }
  if (::bind(fd.get(), address.get(), address.length) != 0) {
    const int err = errno;
    throw_sys_error("bind " + format_address(address), err);
  }
  if (::listen(fd.get(), options.backlog) != 0) {
    throw_sys_error("listen");
  }
  return fd;
}

Fd open_client(const Endpoint& endpoint, Transport transport, const SocketOptions& options) {
  const std::vector<SocketAddress> candidates = resolve(endpoint, transport, /*passive=*/false);
  const int type = socket_type(transport);
  std::string failed_call = "connect";
  int failed_errno = EADDRNOTAVAIL;
  for (const SocketAddress& candidate : candidates) {
    Fd fd(::socket(candidate.family(), type | SOCK_CLOEXEC, 0));
    if (!fd) {
      failed_errno = errno;
      failed_call = "socket";
      continue;
    }
    if (int err = apply_connection_options(fd.get(), transport, options)) {
      failed_errno = err;
      failed_call = "setsockopt";
      continue;
    }
    if (transport == Transport::unix_dgram) {
      // Autobind to an abstract address: a unix datagram server can only reply to a
      // client that has an address.
      sa_family_t family = AF_UNIX;
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&family), sizeof(family)) != 0) {
        failed_errno = errno;
        failed_call = "bind";
        continue;
      }
    }
    if (int err = connect_completely(fd.get(), candidate)) {
      failed_errno = err;
      failed_call = "connect " + format_address(candidate);
      continue;
    }
    return fd;
  }
  throw_sys_error(failed_call, failed_errno);
}

}  // namespace echolab
