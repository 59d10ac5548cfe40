// echolab-bare-client: the reference the load generator is measured against. The simplest
// epoll ping-pong loop there is: one thread, N non-blocking TCP connections, each sends SIZE
// bytes, waits until SIZE bytes came back, sends again. No verification, no histogram, no
// clock per message: whatever echolab-loadgen achieves beyond this is bookkeeping it must
// not pay for (bench/loadgen_overhead.py compares the two).
//
//   echolab-bare-client HOST:PORT CONNECTIONS SIZE WARMUP_S DURATION_S
// prints {"messages": N, "warmup_messages": W, "seconds": S, "msgs_per_s": R} on stdout
// (N counted in the measured window only; W lets a caller divide server CPU by all messages).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/address.h"
#include "core/error.h"

namespace {

struct Connection {
  int fd = -1;
  std::size_t received = 0;  // of the current echo
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "echolab-bare-client: %s\n", what.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    die("usage: echolab-bare-client HOST:PORT CONNECTIONS SIZE WARMUP_S DURATION_S");
  }
  const int count = std::atoi(argv[2]);
  const auto size = static_cast<std::size_t>(std::atol(argv[3]));
  const double warmup = std::atof(argv[4]);
  const double duration = std::atof(argv[5]);
  if (count < 1 || size < 1 || duration <= 0) die("bad arguments");
  std::vector<echolab::SocketAddress> addresses;
  try {
    addresses = echolab::resolve(echolab::parse_endpoint(argv[1]), echolab::Transport::tcp, false);
  } catch (const std::exception& e) {
    die(e.what());
  }
  const echolab::SocketAddress& target = addresses.front();

  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Connection> connections(static_cast<std::size_t>(count));
  std::vector<char> message(size, 'x');
  std::vector<char> buffer(64 * 1024);
  for (std::size_t i = 0; i < connections.size(); ++i) {
    const int fd = ::socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, target.get(), target.length) != 0) {
      die(echolab::describe_errno("connect", errno));
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = i;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
    connections[i].fd = fd;
  }
  for (const Connection& c : connections) {
    if (::send(c.fd, message.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) {
      die(echolab::describe_errno("send", errno));
    }
  }
  const double start = now_s();
  const double measure_start = start + warmup;
  const double end = measure_start + duration;
  std::uint64_t messages = 0;
  std::uint64_t warmup_messages = 0;
  std::vector<epoll_event> events(256);
  double now = start;
  while (now < end) {
    const int ready = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 100);
    now = now_s();
    for (int i = 0; i < ready; ++i) {
      Connection& c = connections[events[static_cast<std::size_t>(i)].data.u64];
      const ssize_t n = ::recv(c.fd, buffer.data(), buffer.size(), 0);
      if (n <= 0) die(echolab::describe_errno("recv", n == 0 ? ECONNRESET : errno));
      c.received += static_cast<std::size_t>(n);
      if (c.received >= size) {
        c.received -= size;
        (now < measure_start ? warmup_messages : messages) += 1;
        if (::send(c.fd, message.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) {
          die(echolab::describe_errno("send", errno));
        }
      }
    }
  }
  const double seconds = now - measure_start;
  std::printf("{\"messages\": %llu, \"warmup_messages\": %llu, \"seconds\": %.6f, \"msgs_per_s\": %.1f}\n",
              static_cast<unsigned long long>(messages), static_cast<unsigned long long>(warmup_messages), seconds,
              static_cast<double>(messages) / seconds);
  return 0;
}
