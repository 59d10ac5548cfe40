#pragma once
// Opening sockets: servers bind (and listen) on the first resolved address that works,
// clients connect to the first that answers. Options come from the command line.
#include <sys/types.h>

#include <string>

#include "core/address.h"
#include "core/fd.h"

namespace echolab {

struct SocketOptions {
  bool reuse_address = true;  // SO_REUSEADDR: restart a server without waiting out TIME_WAIT
  bool no_delay = true;       // TCP_NODELAY: echo small messages now, not after Nagle's delay
  int send_buffer = 0;        // SO_SNDBUF in bytes; 0 keeps the kernel's default
  int receive_buffer = 0;     // SO_RCVBUF in bytes; 0 keeps the kernel's default
  int backlog = 1024;         // listen(2) backlog (the kernel caps it at somaxconn)
  // SO_REUSEPORT (tcp and udp only): other sockets of this user with it may bind the same
  // address, and the kernel spreads new connections over them. Off by default: with it, a
  // second server started by mistake on the same port shares the traffic instead of failing.
  bool reuse_port = false;
};

// A bound server socket. For unix endpoints it removes its socket file when destroyed if
// that file is still the one it bound (same device and inode, still a socket), so a forked
// child must leave with _exit() rather than run destructors.
class Listener {
 public:
  Listener() = default;
  // `unix_path` is empty for inet sockets; for unix ones, call right after bind: the file
  // found there now is the one the destructor may remove.
  Listener(Fd fd, std::string address, std::string unix_path);
  Listener(Listener&&) noexcept = default;
  Listener& operator=(Listener&&) noexcept = default;
  ~Listener();

  [[nodiscard]] int fd() const { return fd_.get(); }
  // Numeric address actually bound (port 0 resolved), as format_address prints it.
  [[nodiscard]] const std::string& address() const { return address_; }

 private:
  Fd fd_;
  std::string address_;
  std::string unix_path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;  // 0: nothing of ours to remove
};

// socket + options + bind (+ listen for streams) on each resolved address until one works.
// IPv6 sockets get IPV6_V6ONLY off, so "[::]" serves IPv4 clients too. A stale unix socket
// file (nobody accepting on it) is removed first; a live one is an error. Throws
// std::system_error naming the failing call, or UsageError.
[[nodiscard]] Listener open_listener(const Endpoint& endpoint, Transport transport,
                                     const SocketOptions& options);

// Another listening socket bound to the address `listener` is bound to (its port 0 already
// resolved), with SO_REUSEPORT, which `listener` must have been opened with too: the kernel
// then spreads new connections over the two. Inet stream listeners only. Throws
// std::system_error naming the failing call.
[[nodiscard]] Fd open_listener_beside(int listener, const SocketOptions& options);

// socket + connect to each resolved address until one answers. Datagram unix clients are
// auto-bound so that the server can reply. Throws std::system_error / UsageError.
[[nodiscard]] Fd open_client(const Endpoint& endpoint, Transport transport,
                             const SocketOptions& options);

// Applies the per-connection options (TCP_NODELAY, buffer sizes) to a socket.
// Returns 0 or the errno of the first option that failed.
int apply_connection_options(int fd, Transport transport, const SocketOptions& options);

// O_NONBLOCK on or off; returns 0 or errno.
int set_nonblocking(int fd, bool on);

}  // namespace echolab
