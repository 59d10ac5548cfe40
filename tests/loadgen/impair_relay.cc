#include "tests/loadgen/impair_relay.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>

#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr int kToServer = 0;
constexpr int kToClient = 1;
constexpr int kBufferBytes = 4 << 20;  // the relay must never be the one that loses

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void fail(const char* call) { throw std::system_error(errno, std::generic_category(), call); }

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  return address;
}

Fd udp_socket() {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) fail("socket");
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kBufferBytes, sizeof(kBufferBytes));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &kBufferBytes, sizeof(kBufferBytes));
  return fd;
}

}  // namespace

struct ImpairRelay::Client {
  sockaddr_in address{};
  Fd upstream;  // connected to the server
  bool exempt = false;
  std::int64_t last_release[2] = {0, 0};
};

struct ImpairRelay::Pending {
  std::int64_t release = 0;
  std::uint64_t order = 0;  // ties: first queued, first sent
  int direction = kToServer;
  std::size_t client = 0;
  int holds_left = -1;  // >= 0: held until that many later datagrams of its way passed
  std::vector<std::byte> bytes;
};

ImpairRelay::ImpairRelay(ImpairConfig config) : config_(std::move(config)), listener_(udp_socket()) {
  const sockaddr_in address = loopback(0);
  if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    fail("bind");
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail("pipe2");
  wake_read_.reset(pipe_fds[0]);
  wake_write_.reset(pipe_fds[1]);
  thread_ = std::thread([this] { run(); });
}

ImpairRelay::~ImpairRelay() { stop(); }

std::string ImpairRelay::address() const {
  return "127.0.0.1:" + std::to_string(local_port(listener_.get()));
}

void ImpairRelay::stop() {
  if (stopped_) return;
  stopped_ = true;
  const char byte = 0;
  (void)!::write(wake_write_.get(), &byte, 1);
  thread_.join();
}

void ImpairRelay::run() {
  std::mt19937_64 rng(config_.seed);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<Client> clients;
  std::vector<Pending> pending;
  std::uint64_t order = 0;
  std::uint64_t requests = 0;
  bool stopping = false;
  std::vector<std::byte> buffer(70'000);

  auto deliver = [&](const Pending& p) {
    Client& client = clients[p.client];
    if (p.direction == kToServer) {
      (void)::send(client.upstream.get(), p.bytes.data(), p.bytes.size(), 0);
    } else {
      (void)::sendto(listener_.get(), p.bytes.data(), p.bytes.size(), 0,
                     reinterpret_cast<const sockaddr*>(&client.address), sizeof(client.address));
      flows_[p.client].deliveries.push_back(p.bytes);
    }
    ++counts_[p.direction].delivered;
    for (Pending& other : pending) {
      // Only datagrams that came in after the held one overtake it.
      if (other.holds_left > 0 && other.client == p.client && other.direction == p.direction &&
          other.order < p.order && --other.holds_left == 0) {
        other.release = std::min(other.release, now_ns());
      }
    }
  };
  auto deliver_due = [&](std::int64_t now) {
    for (;;) {
      auto due = pending.end();
      for (auto it = pending.begin(); it != pending.end(); ++it) {
        if ((it->release <= now || stopping) &&
            (due == pending.end() || std::tie(it->release, it->order) < std::tie(due->release, due->order))) {
          due = it;
        }
      }
      if (due == pending.end()) return;
      const Pending p = std::move(*due);
      pending.erase(due);
      deliver(p);
    }
  };
  auto enqueue = [&](int direction, std::size_t index, std::span<const std::byte> bytes) {
    Client& client = clients[index];
    ImpairCounts& counts = counts_[direction];
    ++counts.received;
    if (direction == kToServer) {
      flows_[index].requests.emplace_back(bytes.begin(), bytes.end());
      if (!client.exempt && config_.exempt && config_.exempt(bytes)) client.exempt = true;
    }
    const Impairment& how = direction == kToServer ? config_.to_server : config_.to_client;
    const bool impaired = !client.exempt && requests < config_.impaired_requests;
    if (direction == kToServer && !client.exempt) ++requests;
    const std::int64_t now = now_ns();
    if (impaired && coin(rng) < how.drop) {
      ++counts.dropped;
      return;
    }
    const int copies = impaired && coin(rng) < how.duplicate ? 2 : 1;
    counts.duplicated += static_cast<std::uint64_t>(copies - 1);
    for (int i = 0; i < copies; ++i) {
      Pending p{0, order++, direction, index, -1, std::vector<std::byte>(bytes.begin(), bytes.end())};
      if (impaired && coin(rng) < how.hold) {
        ++counts.held;
        p.holds_left = how.hold_behind;
        p.release = now + std::chrono::nanoseconds(how.max_hold).count();
      } else {
        p.release = std::max(now + std::chrono::nanoseconds(how.delay).count(),
                             client.last_release[direction]);
        if (!impaired) {
          // Never overtake what is still held or delayed, whoever it is for.
          for (const Pending& other : pending) p.release = std::max(p.release, other.release);
        }
        client.last_release[direction] = p.release;
      }
      pending.push_back(std::move(p));
    }
  };

  for (;;) {
    deliver_due(now_ns());
    if (stopping) break;
    std::int64_t wait_ns = 50'000'000;
    for (const Pending& p : pending) wait_ns = std::min(wait_ns, p.release - now_ns());
    std::vector<pollfd> fds{{wake_read_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    for (const Client& client : clients) fds.push_back({client.upstream.get(), POLLIN, 0});
    const int timeout_ms = static_cast<int>(std::max<std::int64_t>(0, (wait_ns + 999'999) / 1'000'000));
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) {
      counts_[kToClient].left_at_stop = counts_[kToServer].left_at_stop = 0;
      for (const Pending& p : pending) ++counts_[p.direction].left_at_stop;
      stopping = true;
      continue;
    }
    for (;;) {
      sockaddr_in from{};
      socklen_t length = sizeof(from);
      const ssize_t n = ::recvfrom(listener_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&from), &length);
      if (n < 0) break;
      auto it = std::find_if(clients.begin(), clients.end(), [&](const Client& c) {
        return c.address.sin_port == from.sin_port && c.address.sin_addr.s_addr == from.sin_addr.s_addr;
      });
      if (it == clients.end()) {
        Client client;
        client.address = from;
        client.upstream = udp_socket();
        const sockaddr_in server = loopback(config_.server_port);
        if (::connect(client.upstream.get(), reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0) {
          return;
        }
        clients.push_back(std::move(client));
        flows_.emplace_back();
        it = clients.end() - 1;
      }
      enqueue(kToServer, static_cast<std::size_t>(it - clients.begin()),
              std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)));
    }
    for (std::size_t i = 0; i < clients.size(); ++i) {
      for (;;) {
        const ssize_t n = ::recv(clients[i].upstream.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) break;
        enqueue(kToClient, i, std::span<const std::byte>(buffer.data(), static_cast<std::size_t>(n)));
      }
    }
  }
}

}  // namespace echolab::test
