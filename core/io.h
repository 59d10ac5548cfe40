#pragma once
// System calls of the serving path, made robust once for every engine: EINTR is retried,
// SIGPIPE is never raised (MSG_NOSIGNAL), short counts are reported rather than hidden, and
// each call is counted by kind in the caller's Counters.
#include <sys/socket.h>

#include <cstddef>
#include <span>

#include "core/address.h"
#include "core/fd.h"
#include "core/stats.h"

namespace echolab {

enum class IoStatus {
  ok,           // `bytes` transferred (may be fewer than asked: a short count)
  would_block,  // EAGAIN on a non-blocking socket: wait for readiness
  closed,       // orderly end of stream from the peer (recv returned 0)
  reset,        // ECONNRESET / EPIPE: the peer is gone; close this connection only
  error,        // anything else; `error` holds errno
};

struct IoResult {
  IoStatus status = IoStatus::ok;
  std::size_t bytes = 0;
  int error = 0;
};

[[nodiscard]] IoResult receive_some(int fd, std::span<std::byte> buffer, Counters& counters);
[[nodiscard]] IoResult send_some(int fd, std::span<const std::byte> data, Counters& counters);

// Blocking sockets: sends all of `data`, looping over short writes. On failure, `bytes` says
// how much was sent.
[[nodiscard]] IoResult send_all(int fd, std::span<const std::byte> data, Counters& counters);

struct DatagramResult {
  IoStatus status = IoStatus::ok;
  std::size_t bytes = 0;  // the datagram's real length, even when truncated
  bool truncated = false;
  int error = 0;
};

// recvfrom with MSG_TRUNC, so a datagram larger than `buffer` is reported as truncated
// with its real size instead of silently cut.
[[nodiscard]] DatagramResult receive_datagram(int fd, std::span<std::byte> buffer,
                                              SocketAddress& from, Counters& counters);
// Never blocks (MSG_DONTWAIT), even on a blocking socket: a peer that does not read (a unix
// datagram client's queue holds about ten) must not stall a server serving everyone else.
// would_block (EAGAIN) then means the reply was not delivered; so does any failure for
// which undeliverable() holds.
[[nodiscard]] IoResult send_datagram(int fd, std::span<const std::byte> data,
                                     const SocketAddress& to, Counters& counters);

// recvmmsg(MSG_WAITFORONE | MSG_TRUNC): blocks for the first datagram only, then takes what
// else is queued, up to messages.size(), without waiting for a full batch. The caller sets
// each header's buffers and msg_namelen before the call. On ok, `count` headers are filled:
// msg_len is each datagram's real length (over the buffer: MSG_TRUNC in msg_flags), and
// msg_namelen its sender's address length (0: the sender has none).
struct BatchResult {
  IoStatus status = IoStatus::ok;
  std::size_t count = 0;
  int error = 0;
};
[[nodiscard]] BatchResult receive_datagram_batch(int fd, std::span<mmsghdr> messages,
                                                 Counters& counters);

// What send_datagram_batch did with each reply.
struct BatchSendResult {
  std::size_t sent = 0;
  std::size_t bytes = 0;
  std::size_t undelivered = 0;  // refused for reasons of their destination (undeliverable())
  std::size_t failed = 0;       // any other failure
  int last_error = 0;           // errno of the last failure, or 0
};
// sendmmsg(MSG_DONTWAIT): never blocks, like send_datagram. When a call sends only k of n,
// the reply it stopped at is tried once more, at the head of the next call, which names its
// error; a reply that fails twice is given up and the ones after it are still sent, so one
// peer that does not read costs only its own replies.
[[nodiscard]] BatchSendResult send_datagram_batch(int fd, std::span<mmsghdr> messages,
                                                  Counters& counters);

// A datagram reply failed because of its destination (its queue is full, it is gone, it is
// unreachable, or memory is short for now), not because of the server's own socket: the
// reply is dropped and the next datagram served.
[[nodiscard]] bool undeliverable(int err);

// True once the socket's read side has been shut down (poll reports POLLRDHUP): every
// further recvfrom returns 0 at once, and waiting for a datagram is over for good.
[[nodiscard]] bool read_side_shut(int fd, Counters& counters);

// The outcome of accept_connection.
struct AcceptResult {
  Fd fd;
  int error = 0;        // 0 on success
  bool fatal = false;   // the listening socket itself is unusable (or was shut down)
};

// accept4(SOCK_CLOEXEC) with errors sorted as muduo does: transient ones (EAGAIN, EINTR,
// ECONNABORTED, EPROTO, EPERM...) are retried by the caller; EINVAL means the listener was
// shut down (a stop) and is fatal but not counted; EMFILE/ENFILE are handled by
// briefly giving back a reserved descriptor, accepting the waiting connection and closing
// it (counted as refused), so the client is told at once instead of hanging in the backlog
// and an event loop does not spin on a readable listener it cannot accept from.
[[nodiscard]] AcceptResult accept_connection(int listen_fd, Counters& counters,
                                             bool nonblocking = false);

// Logs each accepted connection's peer on stderr ("echolab-server: accepted [::1]:5000").
void set_connection_logging(bool on);
// Whether it does: an engine that accepts without accept_connection must then use it.
[[nodiscard]] bool connection_logging();

// Reserves the spare descriptor accept_connection uses on EMFILE. Call once at start-up.
void reserve_spare_fd();

// Ignores SIGPIPE process-wide: belt and braces beside MSG_NOSIGNAL, for writes that are
// not sends.
void ignore_sigpipe();

}  // namespace echolab
