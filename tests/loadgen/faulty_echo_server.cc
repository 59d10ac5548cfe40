#include "tests/loadgen/faulty_echo_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <stdexcept>

#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

bool read_exact(int fd, std::byte* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::recv(fd, out + done, size - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      return false;
    }
  }
  return true;
}

bool write_all(int fd, const std::byte* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return false;
    }
  }
  return true;
}

}  // namespace

FaultyEchoServer::FaultyEchoServer(Fault fault, std::uint64_t at_message)
    : fault_(fault), at_message_(at_message) {
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!listener_.valid() ||
      ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener_.get(), 64) != 0) {
    throw std::runtime_error("faulty echo server: cannot listen");
  }
  port_ = local_port(listener_.get());
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultyEchoServer::~FaultyEchoServer() {
  stopping_ = true;
  ::shutdown(listener_.get(), SHUT_RDWR);
  {
    std::lock_guard lock(mutex_);
    for (const int fd : connections_) ::shutdown(fd, SHUT_RDWR);
  }
  acceptor_.join();
  for (auto& thread : threads_) thread.join();
}

std::string FaultyEchoServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

void FaultyEchoServer::accept_loop() {
  while (!stopping_) {
    const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    connections_.push_back(fd);
    threads_.emplace_back([this, fd] { serve(fd); });
  }
}

void FaultyEchoServer::serve(int fd) {
  std::vector<std::byte> frame;
  for (;;) {
    std::byte header[4];
    if (!read_exact(fd, header, sizeof(header))) break;
    const std::uint32_t length = read_be32(header);
    if (length > (16u << 20)) break;
    frame.resize(4 + length);
    std::copy(header, header + 4, frame.begin());
    if (!read_exact(fd, frame.data() + 4, length)) break;
    const std::uint64_t number = ++messages_;
    if (number == at_message_) {
      if (fault_ == Fault::drop) continue;
      if (fault_ == Fault::flip && length > 20) frame[4 + 20] ^= std::byte{0xFF};
      if (fault_ == Fault::stall) std::this_thread::sleep_for(kStall);
    }
    if (!write_all(fd, frame.data(), frame.size())) break;
  }
  std::lock_guard lock(mutex_);
  std::erase(connections_, fd);
  ::close(fd);
}

FaultyDatagramEchoServer::FaultyDatagramEchoServer(Fault fault, std::uint64_t at_message)
    : fault_(fault), at_message_(at_message) {
  socket_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fds[2];
  if (!socket_.valid() ||
      ::bind(socket_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error("faulty datagram server: cannot bind");
  }
  stop_read_.reset(fds[0]);
  stop_write_.reset(fds[1]);
  port_ = local_port(socket_.get());
  thread_ = std::thread([this] { serve(); });
}

FaultyDatagramEchoServer::~FaultyDatagramEchoServer() {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(stop_write_.get(), &byte, 1);
  thread_.join();
}

std::string FaultyDatagramEchoServer::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

void FaultyDatagramEchoServer::serve() {
  using Clock = std::chrono::steady_clock;
  struct Held {
    std::vector<std::byte> data;
    sockaddr_storage peer{};
    socklen_t peer_length = 0;
    Clock::time_point due{};
    bool waiting = false;
  } held;
  std::vector<std::byte> buffer(65536);
  std::uint64_t count = 0;
  auto send_to = [this](const std::vector<std::byte>& data, const sockaddr_storage& peer, socklen_t length) {
    ::sendto(socket_.get(), data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&peer), length);
  };
  for (;;) {
    int wait_ms = -1;
    if (held.waiting && fault_ == Fault::late) {
      wait_ms = static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(held.due - Clock::now()).count()));
    }
    pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, wait_ms);
    if (fds[1].revents != 0) return;
    if (held.waiting && fault_ == Fault::late && Clock::now() >= held.due) {
      send_to(held.data, held.peer, held.peer_length);
      held.waiting = false;
    }
    if (ready <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof(peer);
    const ssize_t n = ::recvfrom(socket_.get(), buffer.data(), buffer.size(), 0,
                                 reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (n < 0) continue;
    std::vector<std::byte> data(buffer.begin(), buffer.begin() + n);
    if (++count == at_message_) {
      switch (fault_) {
        case Fault::drop:
          continue;
        case Fault::duplicate:
          send_to(data, peer, peer_length);
          break;
        case Fault::late:
        case Fault::reorder:
          held = Held{std::move(data), peer, peer_length, Clock::now() + kLate, true};
          continue;
      }
    }
    send_to(data, peer, peer_length);
    if (held.waiting && fault_ == Fault::reorder) {
      send_to(held.data, held.peer, held.peer_length);
      held.waiting = false;
    }
  }
}

}  // namespace echolab::test
