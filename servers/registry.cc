// The one table of engines, and the only place that knows them. Explicit rather than
// self-registering: static registration silently drops engines that live in a static library.
// Everything else (the command line, bench specs, plots, the README table, the tests) reads
// these rows, through engines() or `echolab-server --list-engines --json`.
#include <sys/select.h>

#include <array>

#include "servers/engine.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

bool always_available() { return true; }

constexpr TransportSet kStreams{Transport::tcp, Transport::unix_stream};
constexpr TransportSet kTcp{Transport::tcp};
constexpr TransportSet kDatagrams{Transport::udp, Transport::unix_dgram};
constexpr DescriptorLimit kNoLimit{};
// EngineInfo::offers_accept_lock, named so that a row reads as what it means.
constexpr bool kAcceptLock = true;
constexpr bool kNoAcceptLock = false;

constexpr std::array kEngines = {
    EngineInfo{"iterative", "accept one client, echo until it leaves, accept the next (the lecture's TCP server)",
               "none: other clients wait in the listen backlog",
               "nothing per connection; one slow client stalls everyone", Serves::streams, kStreams,
               Concurrency::one_at_a_time, "", false, false, kNoAcceptLock, kNoLimit, always_available, run_iterative},
    EngineInfo{"iterative-udp", "one thread in `recvfrom`/`sendto` (the lecture's UDP server)",
               "none, and none is needed while each datagram is cheap",
               "any service time delays every client; overflow is dropped by the socket buffer",
               Serves::datagrams, kDatagrams, Concurrency::one_at_a_time, "", false, false, kNoAcceptLock, kNoLimit, always_available,
               run_iterative_udp},
    EngineInfo{"udp-pool", "`--workers` threads blocking in `recvfrom` on one shared socket",
               "the pool: the kernel hands each datagram to one waiting thread",
               "threads contend on one receive queue", Serves::datagrams, kDatagrams, Concurrency::pool,
               "--workers", false, false, kNoAcceptLock, kNoLimit, always_available, run_udp_pool},
    EngineInfo{"udp-batch",
               "`--workers` threads, each with its own `SO_REUSEPORT` socket, moving up to `--batch` "
               "datagrams per `recvmmsg`/`sendmmsg`",
               "the pool: the kernel spreads datagrams over the sockets by flow hash",
               "a system call per batch, not per datagram; a batch's replies wait for all its work "
               "(`--work`); one busy flow stays on one thread; UDP only",
               Serves::datagrams, TransportSet{Transport::udp}, Concurrency::pool, "--workers", false, true, kNoAcceptLock,
               kNoLimit, always_available, run_udp_batch},
    EngineInfo{"prefork",
               "`--workers` processes forked at start, all blocking in `accept()` on one socket, or taking "
               "turns there behind a process-shared mutex (`--accept-lock`)",
               "the processes: at most `--workers` clients served at once",
               "a process per worker; nothing per connection", Serves::streams, kStreams, Concurrency::pool,
               "--workers", true, false, kAcceptLock, kNoLimit, always_available, run_prefork},
    EngineInfo{"prethread", "the same with threads (`--accept-lock`: a mutex)", "the threads: at most `--workers` clients at once",
               "a stack per worker; nothing per connection", Serves::streams, kStreams, Concurrency::pool,
               "--workers", false, false, kAcceptLock, kNoLimit, always_available, run_prethread},
    EngineInfo{"fork", "accept, then `fork()` a child per connection; SIGCHLD-driven reaping",
               "one process per client, capped by `--max-children` (the rest wait in the backlog)",
               "a `fork()` per connection", Serves::streams, kStreams, Concurrency::per_connection,
               "--max-children", true, false, kNoAcceptLock, kNoLimit, always_available, run_fork},
    EngineInfo{"thread", "accept, then a thread per connection", "one thread per client, capped by `--max-threads`",
               "a thread creation and a stack per connection", Serves::streams, kStreams,
               Concurrency::per_connection, "--max-threads", false, false, kNoAcceptLock, kNoLimit, always_available, run_thread},
    EngineInfo{"select", "one thread, non-blocking sockets, `select()` with a buffer per client",
               "readiness multiplexing: many clients share one thread",
               "each call scans every descriptor; fds ≥ FD_SETSIZE (1024) are refused and counted; any "
               "service time stalls everyone",
               Serves::streams, kStreams, Concurrency::multiplexed, "", false, false, kNoAcceptLock, DescriptorLimit{FD_SETSIZE, "FD_SETSIZE"}, always_available,
               run_select},
    EngineInfo{"poll", "select's loop over `poll()`, one entry per descriptor", "readiness multiplexing: many clients share one thread",
               "each call hands the kernel every watched descriptor; no FD_SETSIZE limit; any service time "
               "stalls everyone",
               Serves::streams, kStreams, Concurrency::multiplexed, "", false, false, kNoAcceptLock, kNoLimit, always_available,
               run_poll},
    EngineInfo{"epoll", "one thread, level-triggered `epoll`, interest changed only when it changes",
               "readiness multiplexing: many clients share one thread",
               "a wait costs what is ready, not what is watched; any service time stalls everyone",
               Serves::streams, kStreams, Concurrency::multiplexed, "", false, false, kNoAcceptLock, kNoLimit, always_available,
               run_epoll},
    EngineInfo{"epoll-reuseport",
               "`--workers` threads, each its own epoll loop and its own `SO_REUSEPORT` listener on the same port",
               "one readiness loop per thread; the kernel hashes each new connection to one listener",
               "no shared accept queue and no thundering herd; the hash ignores load, so shares are uneven; "
               "connections queued on a listener are reset when it closes",
               Serves::streams, kTcp, Concurrency::multiplexed, "--workers", false, true, kNoAcceptLock, kNoLimit,
               reuse_port_available, run_epoll_reuseport},
    EngineInfo{"epoll-exclusive",
               "`--workers` threads, each its own epoll loop, all watching one listener with `EPOLLEXCLUSIVE`",
               "one readiness loop per thread; the kernel wakes one waiting loop per new connection",
               "no thundering herd, but wake-ups favour the most recent waiter (LIFO), so a few loops take "
               "most connections",
               Serves::streams, kStreams, Concurrency::multiplexed, "--workers", false, false, kNoAcceptLock, kNoLimit,
               epoll_exclusive_available, run_epoll_exclusive},
    EngineInfo{"reactor-pool",
               "one epoll thread does all socket I/O and framing; each complete message's work (`--work`) "
               "runs on one of `--workers` threads, which hand the reply back through an `eventfd`",
               "readiness multiplexing for the I/O, the pool for the service work: `--workers` messages "
               "worked on at once",
               "a hand-off per message (two thread switches, an `eventfd` round trip per batch) even with no "
               "work; a connection's messages stay on one worker, so a busy connection cannot borrow an idle one",
               Serves::streams, kStreams, Concurrency::multiplexed, "--workers", false, false, kNoAcceptLock,
               kNoLimit, always_available, run_reactor_pool},
};

}  // namespace

std::string_view to_string(Concurrency concurrency) {
  switch (concurrency) {
    case Concurrency::one_at_a_time:
      return "one-at-a-time";
    case Concurrency::pool:
      return "pool";
    case Concurrency::per_connection:
      return "per-connection";
    case Concurrency::multiplexed:
      return "multiplexed";
  }
  return "?";
}

std::span<const EngineInfo> engines() { return kEngines; }

const EngineInfo* find_engine(std::string_view name) {
  for (const EngineInfo& engine : kEngines) {
    if (engine.name == name) {
      return &engine;
    }
  }
  return nullptr;
}

bool serves_transport(const EngineInfo& engine, Transport transport) { return engine.transports.contains(transport); }

std::vector<Transport> served_transports(const EngineInfo& engine) {
  std::vector<Transport> served;
  for (Transport transport : {Transport::tcp, Transport::udp, Transport::unix_stream, Transport::unix_dgram}) {
    if (engine.transports.contains(transport)) {
      served.push_back(transport);
    }
  }
  return served;
}

std::string transport_list(const EngineInfo& engine) {
  std::string list;
  for (Transport transport : served_transports(engine)) {
    list += (list.empty() ? "" : ", ") + std::string(to_string(transport));
  }
  return list;
}

}  // namespace echolab
