#include "tests/support/socket_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

bool is_timeout(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS; }
bool is_reset(int err) { return err == ECONNRESET || err == EPIPE; }

IoResult failure(int err, std::size_t bytes) {
  if (is_timeout(err)) {
    return {IoOutcome::timeout, bytes, err};
  }
  if (is_reset(err)) {
    return {IoOutcome::reset, bytes, err};
  }
  return {IoOutcome::error, bytes, err};
}

int parse_port(std::string_view text) {
  int port = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (error != std::errc() || end != text.data() + text.size() || port < 0 || port > 65535) {
    throw std::invalid_argument("bad port in address: " + std::string(text));
  }
  return port;
}

int milliseconds_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<long long>(left, 0));
}

std::string first_difference(std::span<const std::byte> got, std::span<const std::byte> want) {
  const auto mismatch = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  return "echo of " + std::to_string(got.size()) + " bytes for " + std::to_string(want.size()) +
         " sent differs at byte " + std::to_string(mismatch.first - got.begin());
}

}  // namespace

SocketAddress parse_socket_address(std::string_view text) {
  SocketAddress address;
  if (text.starts_with("unix:")) {
    const auto path = text.substr(5);
    sockaddr_un un{};
    if (path.empty() || path.size() >= sizeof un.sun_path) {
      throw std::invalid_argument("bad unix socket path: " + std::string(text));
    }
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&address.storage, &un, sizeof un);
    address.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return address;
  }
  const bool bracketed = text.starts_with("[");
  const auto colon = bracketed ? text.find("]:") + 1 : text.rfind(':');
  if (colon == 0 || colon == text.npos) {
    throw std::invalid_argument("address without a port: " + std::string(text));
  }
  const std::string host(text.substr(bracketed ? 1 : 0, colon - (bracketed ? 2 : 0)));
  const auto port = static_cast<std::uint16_t>(parse_port(text.substr(colon + 1)));
  if (bracketed) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    if (::inet_pton(AF_INET6, host.c_str(), &in6.sin6_addr) != 1) {
      throw std::invalid_argument("bad IPv6 address: " + std::string(text));
    }
    std::memcpy(&address.storage, &in6, sizeof in6);
    address.length = sizeof in6;
  } else {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1) {
      throw std::invalid_argument("bad IPv4 address: " + std::string(text));
    }
    std::memcpy(&address.storage, &in, sizeof in);
    address.length = sizeof in;
  }
  return address;
}

namespace {
int port_of(const sockaddr_storage& storage) {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}
}  // namespace

int local_port(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return 0;
  }
  return port_of(storage);
}

int address_port(const SocketAddress& address) { return port_of(address.storage); }

bool ipv6_loopback_available() {
  Fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return false;
  }
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback) == 0;
}

void set_io_timeouts(int fd, milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    throw_errno("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)");
  }
}

Fd connect_socket(const SocketAddress& address, int type, milliseconds io_timeout) {
  Fd fd(::socket(address.family(), type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    throw_errno("socket");
  }
  set_io_timeouts(fd.get(), io_timeout);  // connect(2) honours SO_SNDTIMEO too
  if (address.family() == AF_UNIX && type == SOCK_DGRAM) {
    // Autobind: an address length of just the family picks a unique abstract name.
    sockaddr_un autobind{};
    autobind.sun_family = AF_UNIX;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&autobind), sizeof(sa_family_t)) != 0) {
      throw_errno("bind (autobind)");
    }
  }
  if (address.family() != AF_UNIX && type == SOCK_STREAM) {
    const int on = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  int r;
  do {
    r = ::connect(fd.get(), address.get(), address.length);
  } while (r != 0 && errno == EINTR);
  if (r != 0) {
    throw_errno("connect");
  }
  return fd;
}

std::string IoResult::describe() const {
  const std::string after = " after " + std::to_string(bytes) + " bytes";
  switch (outcome) {
    case IoOutcome::ok:
      return "ok";
    case IoOutcome::closed:
      return "connection closed by peer" + after;
    case IoOutcome::timeout:
      return "timed out" + after;
    case IoOutcome::reset:
    case IoOutcome::error:
      return std::string(std::strerror(error)) + after;
  }
  return "?";
}

IoResult send_all(int fd, std::span<const std::byte> data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return failure(errno, sent);
    }
    sent += static_cast<std::size_t>(n);
  }
  return {IoOutcome::ok, sent, 0};
}

IoResult receive_exact(int fd, std::span<std::byte> buffer) {
  std::size_t got = 0;
  while (got < buffer.size()) {
    const ssize_t n = ::recv(fd, buffer.data() + got, buffer.size() - got, 0);
    if (n == 0) {
      return {IoOutcome::closed, got, 0};
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return failure(errno, got);
    }
    got += static_cast<std::size_t>(n);
  }
  return {IoOutcome::ok, got, 0};
}

IoResult wait_for_peer_close(int fd, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::byte> sink(65536);
  std::size_t discarded = 0;
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, milliseconds_until(deadline));
    if (ready == 0) {
      return {IoOutcome::timeout, discarded, 0};
    }
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      return {IoOutcome::error, discarded, errno};
    }
    const ssize_t n = ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
    if (n == 0) {
      return {IoOutcome::closed, discarded, 0};
    }
    if (n > 0) {
      discarded += static_cast<std::size_t>(n);
    } else if (errno != EINTR && errno != EAGAIN) {
      return failure(errno, discarded);
    }
  }
}

void close_with_reset(Fd& fd) {
  const linger abort{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  fd.reset();
}

void write_be32(std::uint32_t value, std::byte* out) {
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<std::byte>(value >> (24 - 8 * i) & 0xff);
  }
}

void append_frame(std::vector<std::byte>& out, std::span<const std::byte> payload) {
  const auto at = out.size();
  out.resize(at + 4);
  write_be32(static_cast<std::uint32_t>(payload.size()), out.data() + at);
  out.insert(out.end(), payload.begin(), payload.end());
}

std::vector<std::byte> make_frame(std::span<const std::byte> payload) {
  std::vector<std::byte> frame;
  frame.reserve(4 + payload.size());
  append_frame(frame, payload);
  return frame;
}

std::uint32_t read_be32(const std::byte* in) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value = value << 8 | std::to_integer<std::uint32_t>(in[i]);
  }
  return value;
}

std::string check_echo(int fd, std::span<const std::byte> frames, std::vector<std::byte>& scratch) {
  if (const auto sent = send_all(fd, frames); !sent.ok()) {
    return "send: " + sent.describe();
  }
  scratch.resize(frames.size());
  if (const auto got = receive_exact(fd, scratch); !got.ok()) {
    return "receive echo of " + std::to_string(frames.size()) + " bytes: " + got.describe();
  }
  if (!std::equal(scratch.begin(), scratch.end(), frames.begin())) {
    return first_difference(scratch, frames);
  }
  return {};
}

ExchangeResult exchange_datagram(int fd, std::span<const std::byte> request, std::size_t id_bytes,
                                 const ResendPolicy& policy, std::vector<std::byte>& scratch) {
  ExchangeResult result;
  scratch.resize(65536);
  id_bytes = std::min(id_bytes, request.size());
  auto timeout = policy.first_timeout;
  for (int attempt = 1; attempt <= policy.max_attempts; ++attempt) {
    result.attempts = attempt;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0 && errno != EINTR &&
        !is_timeout(errno) && errno != ENOBUFS) {
      // ECONNREFUSED and the like: nobody is bound there any more, resending is pointless.
      result.error = std::string("send: ") + std::strerror(errno);
      return result;
    }  // a send that timed out on a full queue is a loss like any other
    const auto deadline = Clock::now() + timeout;
    pollfd pfd{fd, POLLIN, 0};
    while (::poll(&pfd, 1, milliseconds_until(deadline)) != 0) {
      const ssize_t n = ::recv(fd, scratch.data(), scratch.size(), MSG_TRUNC | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
          continue;
        }
        result.error = std::string("receive: ") + std::strerror(errno);
        return result;
      }
      const auto size = static_cast<std::size_t>(n);
      const std::span<const std::byte> reply(scratch.data(), std::min(size, scratch.size()));
      if (size < id_bytes ||
          !std::equal(request.begin(), request.begin() + id_bytes, reply.begin())) {
        ++result.stale_replies;
        continue;
      }
      if (size != request.size() || !std::equal(reply.begin(), reply.end(), request.begin())) {
        result.error =
            first_difference(reply, request) + " (attempt " + std::to_string(attempt) + ")";
        return result;
      }
      result.ok = true;
      return result;
    }
    timeout = std::min(timeout * 2, policy.max_timeout);
  }
  result.error = "no echo after " + std::to_string(policy.max_attempts) + " attempts (" +
                 std::to_string(result.stale_replies) + " stale replies skipped)";
  return result;
}

}  // namespace echolab::test
