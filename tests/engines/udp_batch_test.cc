// udp-batch: datagrams really move in batches, and a batch changes nothing a client sees.
// The server is paused (SIGSTOP) while clients queue their datagrams, so that one recvmmsg
// finds them all: a malformed or truncated datagram then sits between good ones in the same
// batch, and a peer that never reads shares a sendmmsg with peers that do.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/io.h"
#include "tests/support/server_under_test.h"
#include "tests/support/process.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr milliseconds kReplyTimeout{3'000};

// A framed datagram whose payload names its client and sequence number.
std::vector<std::byte> framed(int client, int sequence, std::size_t payload_size = 48) {
  std::vector<std::byte> payload(payload_size);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<std::byte>((client * 131 + sequence * 7 + static_cast<int>(i)) & 0xff);
  }
  write_be32(static_cast<std::uint32_t>(client), payload.data());
  write_be32(static_cast<std::uint32_t>(sequence), payload.data() + 4);
  return make_frame(payload);
}

void send_datagram_or_fail(int fd, const std::vector<std::byte>& datagram) {
  ASSERT_EQ(::send(fd, datagram.data(), datagram.size(), 0), static_cast<ssize_t>(datagram.size()))
      << std::strerror(errno);
}

// The next datagram on `fd` (whose receive timeout is set), or empty after the timeout.
std::vector<std::byte> receive_datagram_within(int fd) {
  std::vector<std::byte> buffer(70'000);
  const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
  buffer.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return buffer;
}

// True once every thread of `pid` is stopped: kill(SIGSTOP) returns before they are, and a
// thread still running could take the first datagram alone.
bool all_threads_stopped(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') {
      return false;
    }
  }
  return !error;
}

// Pauses the server for as long as it lives, so that datagrams sent meanwhile queue up.
class Paused {
 public:
  explicit Paused(pid_t pid) : pid_(pid) {
    ::kill(pid_, SIGSTOP);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!all_threads_stopped(pid_) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(all_threads_stopped(pid_)) << "the server did not stop";
  }
  ~Paused() { ::kill(pid_, SIGCONT); }
  Paused(const Paused&) = delete;
  Paused& operator=(const Paused&) = delete;

 private:
  pid_t pid_;
};

std::uint64_t syscalls(const nlohmann::json& stats, const char* name) {
  return stats["syscalls"].value(name, std::uint64_t{0});
}

TEST(UdpBatch, BatchesAreRealAndEveryDatagramIsEchoedByteExact) {
  constexpr int kClients = 32;
  constexpr int kConcurrentRounds = 20;
  ServerUnderTest running("udp-batch", Listen::udp_v4, {"--workers", "4", "--batch", "32"});
  const SocketAddress address = running.address();
  std::vector<Fd> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_socket(address, SOCK_DGRAM, kReplyTimeout));
  }
  {
    Paused paused(running.server().pid());
    for (int i = 0; i < kClients; ++i) {
      send_datagram_or_fail(clients[static_cast<std::size_t>(i)].get(), framed(i, 0));
    }
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(receive_datagram_within(clients[static_cast<std::size_t>(i)].get()), framed(i, 0)) << "client " << i;
  }
  // Then all 32 at once, each from its own thread, with resends (loopback UDP may drop).
  std::vector<std::string> errors(kClients);
  std::vector<int> attempts(kClients, 0);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kClients; ++i) {
      threads.emplace_back([&, i] {
        std::vector<std::byte> scratch(70'000);
        for (int round = 1; round <= kConcurrentRounds && errors[static_cast<std::size_t>(i)].empty(); ++round) {
          const auto request = framed(i, round);
          const ExchangeResult result =
              exchange_datagram(clients[static_cast<std::size_t>(i)].get(), request, 12, ResendPolicy{}, scratch);
          errors[static_cast<std::size_t>(i)] = result.error;
          attempts[static_cast<std::size_t>(i)] += result.attempts;
        }
      });
    }
  }
  std::uint64_t sent = kClients;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(errors[static_cast<std::size_t>(i)], "") << "client " << i;
    sent += static_cast<std::uint64_t>(attempts[static_cast<std::size_t>(i)]);
  }
  const auto stats = running.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  const std::uint64_t messages = stats_counter(stats, "messages");
  EXPECT_GE(messages, std::uint64_t{kClients} * (kConcurrentRounds + 1));
  EXPECT_LE(messages, sent);
  EXPECT_LT(syscalls(stats, "recvmmsg"), messages) << stats["syscalls"].dump();
  EXPECT_LT(syscalls(stats, "sendmmsg"), messages) << stats["syscalls"].dump();
  EXPECT_EQ(syscalls(stats, "recvfrom"), 0u);
  EXPECT_EQ(stats_counter(stats, "io_errors"), 0u);
  EXPECT_EQ(stats_counter(stats, "bytes_out"), stats_counter(stats, "bytes_in"));
  // 32 flows over 4 sockets: more than one worker served some (all on one: 4^-31).
  int busy_workers = 0;
  for (const auto& worker : stats["workers"]) {
    busy_workers += worker.value("messages", 0) > 0 ? 1 : 0;
  }
  EXPECT_GE(busy_workers, 2) << stats["workers"].dump();
}

TEST(UdpBatch, BadDatagramsInsideABatchAreDroppedAndCountedAlone) {
  ServerUnderTest running("udp-batch", Listen::udp_v4,
                        {"--workers", "1", "--batch", "32", "--datagram-buffer", "256"});
  const SocketAddress address = running.address();
  Fd good = connect_socket(address, SOCK_DGRAM, kReplyTimeout);
  Fd truncating = connect_socket(address, SOCK_DGRAM, milliseconds(300));
  Fd malformed = connect_socket(address, SOCK_DGRAM, milliseconds(300));
  auto bad_prefix = framed(2, 0);
  write_be32(7, bad_prefix.data());
  {
    Paused paused(running.server().pid());
    send_datagram_or_fail(good.get(), framed(0, 0));
    send_datagram_or_fail(truncating.get(), framed(1, 0, 400));  // well framed, over the buffer
    send_datagram_or_fail(good.get(), framed(0, 1));
    send_datagram_or_fail(malformed.get(), bad_prefix);
    send_datagram_or_fail(good.get(), framed(0, 2));
  }
  for (int sequence = 0; sequence < 3; ++sequence) {
    EXPECT_EQ(receive_datagram_within(good.get()), framed(0, sequence)) << "datagram " << sequence;
  }
  EXPECT_TRUE(receive_datagram_within(truncating.get()).empty());
  EXPECT_TRUE(receive_datagram_within(malformed.get()).empty());
  const auto stats = running.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "messages"), 3u);
  EXPECT_EQ(stats_counter(stats, "datagrams_truncated"), 1u);
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 1u);
  EXPECT_EQ(stats_counter(stats, "datagrams_dropped"), 2u);
  EXPECT_EQ(stats_counter(stats, "io_errors"), 0u);
  // All five in one recvmmsg (plus the one that ends at the stop), answered by one sendmmsg.
  EXPECT_LE(syscalls(stats, "recvmmsg"), 2u) << stats["syscalls"].dump();
  EXPECT_EQ(syscalls(stats, "sendmmsg"), 1u) << stats["syscalls"].dump();
}

TEST(UdpBatch, PeerThatNeverReadsDoesNotHoldTheBatchForOthers) {
  constexpr int kClients = 8;
  constexpr int kFlood = 64;
  ServerUnderTest running("udp-batch", Listen::udp_v4, {"--workers", "1", "--batch", "32"});
  const SocketAddress address = running.address();
  Fd deaf = connect_socket(address, SOCK_DGRAM, milliseconds(100));
  const int tiny = 1;  // the kernel's minimum: a few replies fill it
  ASSERT_EQ(::setsockopt(deaf.get(), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny), 0);
  std::vector<Fd> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_socket(address, SOCK_DGRAM, kReplyTimeout));
  }
  {
    Paused paused(running.server().pid());
    for (int n = 0; n < kFlood; ++n) {
      send_datagram_or_fail(deaf.get(), framed(99, n, 1000));
      if (n % 8 == 0) {
        send_datagram_or_fail(clients[static_cast<std::size_t>(n / 8)].get(), framed(n / 8, n));
      }
    }
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(receive_datagram_within(clients[static_cast<std::size_t>(i)].get()), framed(i, i * 8)) << "client " << i;
  }
  int deaf_replies = 0;
  while (!receive_datagram_within(deaf.get()).empty()) {
    ++deaf_replies;
  }
  EXPECT_LT(deaf_replies, kFlood) << "the peer's queue never filled: the test proves nothing";
  const auto stats = running.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "messages"), std::uint64_t{kFlood + kClients});
  EXPECT_EQ(stats_counter(stats, "io_errors"), 0u);
}

// The reply path itself, where a full peer queue is reported (unix datagram sockets refuse a
// send to a full queue; loopback UDP drops silently): the refused reply is counted, the ones
// after it in the same call still go, and it costs one retry.
TEST(UdpBatch, SendBatchSkipsAReplyItsPeerRefusesAndSendsTheRest) {
  TempDir dir;
  const auto bound = [&dir](const std::string& name) {
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = dir.file(name);
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
    return std::pair{std::move(fd), address};
  };
  auto [server, server_address] = bound("server.sock");
  auto [first, first_address] = bound("first.sock");
  auto [deaf, deaf_address] = bound("deaf.sock");
  auto [last, last_address] = bound("last.sock");
  const std::byte filler[8]{};
  int queued = 0;
  while (::sendto(server.get(), filler, sizeof filler, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&deaf_address),
                  sizeof deaf_address) == static_cast<ssize_t>(sizeof filler)) {
    ASSERT_LT(++queued, 100'000);
  }
  ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
  std::vector<std::vector<std::byte>> payloads{framed(1, 0), framed(2, 0), framed(3, 0)};
  std::vector<sockaddr_un> to{first_address, deaf_address, last_address};
  std::vector<iovec> iov(3);
  std::vector<mmsghdr> replies(3);
  for (std::size_t i = 0; i < 3; ++i) {
    iov[i] = iovec{payloads[i].data(), payloads[i].size()};
    replies[i].msg_hdr.msg_name = &to[i];
    replies[i].msg_hdr.msg_namelen = sizeof(sockaddr_un);
    replies[i].msg_hdr.msg_iov = &iov[i];
    replies[i].msg_hdr.msg_iovlen = 1;
  }
  Counters counters;
  const BatchSendResult result = send_datagram_batch(server.get(), replies, counters);
  EXPECT_EQ(result.sent, 2u);
  EXPECT_EQ(result.undelivered, 1u);
  EXPECT_EQ(result.failed, 0u);
  EXPECT_EQ(result.last_error, EAGAIN);
  EXPECT_EQ(result.bytes, payloads[0].size() + payloads[2].size());
  EXPECT_EQ(counters.syscalls[static_cast<int>(Syscall::sendmmsg)], 3u);
  set_io_timeouts(first.get(), kReplyTimeout);
  set_io_timeouts(last.get(), kReplyTimeout);
  EXPECT_EQ(receive_datagram_within(first.get()), payloads[0]);
  EXPECT_EQ(receive_datagram_within(last.get()), payloads[2]);
}

TEST(UdpBatch, BatchOutOfRangeIsOneLineAndExitTwo) {
  for (const char* value : {"0", "1025", "-3", "many"}) {
    const CompletedProcess result =
        run_process({server_binary(), "--engine", "udp-batch", "--listen", "127.0.0.1:0", "--batch", value},
                    milliseconds(10'000));
    EXPECT_TRUE(result.status.exited && result.status.code == 2) << value << ": " << result.status.describe();
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_NE(result.err.find("--batch"), std::string::npos) << result.err;
    EXPECT_EQ(result.out, "");
  }
}

}  // namespace
}  // namespace echolab::test
