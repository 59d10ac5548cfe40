#pragma once
// The one interface between echolab-server and its engines. An engine owns concurrency and
// teardown (threads, processes, readiness loops, reaping, joining) and nothing else: bytes
// go through the core's StreamSession / accept_datagram, which alone know the protocol.
#include <chrono>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.h"
#include "core/session.h"
#include "core/socket.h"
#include "core/stats.h"

namespace echolab {

// How pool workers wait for a connection on their shared listener (see servers/accept_wait.h).
enum class AcceptWait { accept, poll };

struct ServerConfig {
  Endpoint listen;
  Transport transport = Transport::tcp;
  ProtocolConfig protocol;
  SocketOptions socket;
  int workers = 4;        // pool size or loop count of the engines whose cap_option it is
  int batch = 32;         // datagrams per recvmmsg / sendmmsg of udp-batch
  int max_children = 64;  // live children of fork
  int max_threads = 64;   // live threads of thread
  // Serialise accept() behind a lock (Stevens, UNP vol. 1 ch. 30), engines whose row
  // offers_accept_lock only: one worker at a time waits in accept(), the rest on the lock.
  bool accept_lock = false;
  AcceptWait accept_wait = AcceptWait::accept;  // the same engines only
  // A stream connection that completes no message for this long is closed and counted
  // (slow or stuck clients: slowloris, a peer that never reads). Zero: never.
  std::chrono::milliseconds idle_timeout{0};
};

struct EngineContext {
  const ServerConfig& config;
  int socket;          // listening (streams) or bound (datagrams) socket; owned by main
  ServerStats& stats;  // shared with forked children
  // Prints the ready line. Every engine calls it once it has opened all it serves with (its
  // extra listeners, its epoll instances), before it forks or starts threads: a caller that
  // sees the line may count on the server, and count its descriptors. Later calls do nothing.
  std::function<void()> announce_ready;
};

enum class Serves { streams, datagrams };

// How many clients an engine serves at once, and so what a test or a plot may expect of it.
enum class Concurrency {
  one_at_a_time,   // one client (or datagram) at a time; the rest wait (iterative, iterative-udp)
  pool,            // a fixed pool of --workers, each serving one client at a time
  per_connection,  // a process or thread per client, up to its cap_option
  multiplexed,     // readiness loops: every client at once on one or a few threads
};
[[nodiscard]] std::string_view to_string(Concurrency concurrency);

// A set of transports, one bit per Transport.
class TransportSet {
 public:
  constexpr TransportSet(std::initializer_list<Transport> transports) {
    for (Transport transport : transports) {
      bits_ |= bit(transport);
    }
  }
  [[nodiscard]] constexpr bool contains(Transport transport) const { return (bits_ & bit(transport)) != 0; }

 private:
  static constexpr unsigned bit(Transport transport) { return 1u << static_cast<unsigned>(transport); }
  unsigned bits_ = 0;
};

// The descriptor numbers an engine can watch: all of them, or those below a limit.
struct DescriptorLimit {
  int below = -1;             // -1: no limit
  std::string_view name;      // what the limit is called ("FD_SETSIZE")
};

[[nodiscard]] inline bool always_available() { return true; }

// One row of the engine table: everything the other layers (the command line, the bench
// specs, the plots, the README and the tests) know of an engine, so that none of them has
// to compare its name. `echolab-server --list-engines --json` prints the table.
struct EngineInfo {
  std::string_view name;                // --engine NAME and the key in JSON results
  std::string_view pattern;             // one line: what the server does
  std::string_view concurrency_source;  // where its concurrency comes from
  std::string_view costs;               // what it costs, and its known limits
  Serves serves;
  TransportSet transports;
  Concurrency concurrency;
  std::string_view cap_option{};        // the option bounding live clients ("--workers"...), or ""
  bool connections_in_children = false;  // its connections are served in forked processes
  // main opens the listener with SO_REUSEPORT, so that the engine can bind more sockets to
  // the same address and let the kernel spread the traffic over them.
  bool reuse_port_listener = false;
  // --accept-lock and --accept-wait apply: its workers share one listener and can take turns
  // waiting on it.
  bool offers_accept_lock = false;
  DescriptorLimit descriptors{};        // the descriptors it can watch at all
  // Its socket I/O is libc's send/recv family, which an LD_PRELOAD shim can intercept;
  // false when the kernel moves the bytes itself (io_uring), out of any shim's sight.
  bool socket_io_through_libc = true;
  // A real probe: can this engine run on this machine and build?
  bool (*available)() = always_available;
  // What `available` probes for, said when it fails ("" : nothing beyond the engine's own
  // system calls).
  std::string_view needs{};
  // Serves until stop_requested(), then closes or finishes its connections, reaps its
  // children and joins its threads before returning. Throws std::system_error only when it
  // cannot start (a failed pool spawn at start-up, say).
  void (*run)(EngineContext& context);
};

[[nodiscard]] std::span<const EngineInfo> engines();
[[nodiscard]] const EngineInfo* find_engine(std::string_view name);
[[nodiscard]] bool serves_transport(const EngineInfo& engine, Transport transport);
// The transports the engine serves, in Transport order.
[[nodiscard]] std::vector<Transport> served_transports(const EngineInfo& engine);
// "tcp, unix-stream": the same as text.
[[nodiscard]] std::string transport_list(const EngineInfo& engine);
// The one line said when `engine` cannot run here (its available() is false): which engine,
// and what it needs (its row's `needs`), for the server's refusal and the tests' skips.
[[nodiscard]] std::string unavailable_reason(const EngineInfo& engine);

}  // namespace echolab
