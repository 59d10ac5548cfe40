#pragma once
// FaultyEchoServer: a framed TCP echo server, inside the test process, that misbehaves once
// on purpose, at the N-th message it receives (counted over all its connections):
//   flip   echoes it with one payload byte inverted
//   drop   never echoes it (later messages are echoed as usual)
//   stall  sleeps 200 ms before echoing it (and so before reading anything after it)
// Plain blocking sockets and a thread per connection: nothing from core/ or loadgen/, so a
// bug there cannot hide by being on both ends of the test.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"

namespace echolab::test {

class FaultyEchoServer {
 public:
  enum class Fault { none, flip, drop, stall };
  static constexpr std::chrono::milliseconds kStall{200};

  FaultyEchoServer(Fault fault, std::uint64_t at_message);
  ~FaultyEchoServer();
  FaultyEchoServer(const FaultyEchoServer&) = delete;
  FaultyEchoServer& operator=(const FaultyEchoServer&) = delete;

  [[nodiscard]] std::string address() const;  // "127.0.0.1:PORT"
  [[nodiscard]] std::uint64_t messages() const { return messages_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  Fault fault_;
  std::uint64_t at_message_;
  Fd listener_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> messages_{0};
  std::mutex mutex_;
  std::vector<int> connections_;  // open client sockets, shut down on stop
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// FaultyDatagramEchoServer: the same idea over UDP (framed or raw, it echoes datagrams
// whole), at the N-th datagram:
//   drop       never echoes it
//   late       echoes it 300 ms later (after a shorter client timeout: a late reply)
//   duplicate  echoes it twice
//   reorder    holds it until the next datagram has been echoed
class FaultyDatagramEchoServer {
 public:
  enum class Fault { drop, late, duplicate, reorder };
  static constexpr std::chrono::milliseconds kLate{300};

  FaultyDatagramEchoServer(Fault fault, std::uint64_t at_message);
  ~FaultyDatagramEchoServer();
  FaultyDatagramEchoServer(const FaultyDatagramEchoServer&) = delete;
  FaultyDatagramEchoServer& operator=(const FaultyDatagramEchoServer&) = delete;

  [[nodiscard]] std::string address() const;

 private:
  void serve();

  Fault fault_;
  std::uint64_t at_message_;
  Fd socket_;
  Fd stop_read_;
  Fd stop_write_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace echolab::test
