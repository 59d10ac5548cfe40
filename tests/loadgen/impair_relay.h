#pragma once
// ImpairRelay: a user-space netem for UDP on loopback, for tests on kernels without
// sch_netem. It sits between clients and one server: each client address gets a socket of
// its own towards the server, so that replies find their way back. Each datagram, in either
// direction, may be dropped, duplicated, held back behind later ones (reordered) or delayed,
// decided by a seeded RNG, and the relay keeps exact counts of what it did and a log of
// every datagram it received from a client and delivered to one.
//
// Only the first `impaired_requests` client datagrams (and the replies that arrive while
// that lasts) are impaired. After that everything passes in order and never overtakes what
// is still held or delayed, so that a client that has its last reply has also received
// every duplicate and held datagram meant for it: nothing arrives after it stopped reading.
//
// Runs in a thread of its own; the log and counts are read after stop().
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.h"

namespace echolab::test {

// What happens to datagrams going one way.
struct Impairment {
  double drop = 0;       // probability a datagram is dropped
  double duplicate = 0;  // probability it is sent twice (the copy right after it)
  double hold = 0;       // probability it is held until `hold_behind` later ones passed it
  int hold_behind = 2;
  std::chrono::milliseconds max_hold{20};  // a held datagram goes anyway after this
  std::chrono::milliseconds delay{0};      // added to every datagram (order kept)
};

struct ImpairCounts {
  std::uint64_t received = 0;    // datagrams the relay read
  std::uint64_t dropped = 0;
  std::uint64_t duplicated = 0;  // extra copies made
  std::uint64_t held = 0;
  std::uint64_t delivered = 0;   // datagrams the relay sent on
  std::uint64_t left_at_stop = 0;  // still queued when stop() came (then sent anyway)
};

struct ImpairConfig {
  int server_port = 0;  // on 127.0.0.1
  Impairment to_server;
  Impairment to_client;
  std::uint64_t seed = 1;
  std::uint64_t impaired_requests = UINT64_MAX;
  // Datagrams from clients for which this holds pass untouched (a probe, say), and so do
  // their replies.
  std::function<bool(std::span<const std::byte>)> exempt;
};

// One client address: what it sent and, in order, what was delivered to it.
struct RelayFlow {
  std::vector<std::vector<std::byte>> requests;
  std::vector<std::vector<std::byte>> deliveries;
};

class ImpairRelay {
 public:
  // Binds 127.0.0.1:0 and starts the relay thread. Throws std::system_error on failure.
  explicit ImpairRelay(ImpairConfig config);
  ~ImpairRelay();
  ImpairRelay(const ImpairRelay&) = delete;
  ImpairRelay& operator=(const ImpairRelay&) = delete;

  // What --target takes: "127.0.0.1:PORT".
  [[nodiscard]] std::string address() const;
  // Delivers whatever is still queued, then stops the thread. Idempotent.
  void stop();

  // --- after stop() ---
  [[nodiscard]] const ImpairCounts& to_server() const { return counts_[0]; }
  [[nodiscard]] const ImpairCounts& to_client() const { return counts_[1]; }
  [[nodiscard]] const std::vector<RelayFlow>& flows() const { return flows_; }

 private:
  struct Pending;
  struct Client;
  void run();

  ImpairConfig config_;
  Fd listener_;
  Fd wake_read_;
  Fd wake_write_;
  ImpairCounts counts_[2];
  std::vector<RelayFlow> flows_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace echolab::test
