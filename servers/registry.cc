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

constexpr TransportSet kStreams{Transport::tcp, Transport::unix_stream};
constexpr TransportSet kTcp{Transport::tcp};
constexpr TransportSet kDatagrams{Transport::udp, Transport::unix_dgram};

// The io-uring engine is built only where liburing is found. Without it its row stays, so
// that every layer still knows the engine: it is listed, refused and skipped as unavailable,
// saying what it needs, and never run.
struct OptionalEngine {
  bool (*available)();
  std::string_view needs;
  void (*run)(EngineContext& context);
};
#if ECHOLAB_WITH_URING
constexpr OptionalEngine kIoUring{
    io_uring_available,
    "io_uring with multishot recv and provided buffer rings (Linux 6.0), not forbidden by a seccomp policy",
    run_io_uring};
#else
bool not_built() { return false; }
constexpr OptionalEngine kIoUring{
    not_built, "a build with liburing (Debian: liburing-dev; the CMake option ECHOLAB_WITH_URING)", nullptr};
#endif

constexpr std::array kEngines = {
    EngineInfo{
     .name = "iterative",
     .pattern = "accept one client, echo until it leaves, accept the next (the lecture's TCP server)",
     .concurrency_source = "none: other clients wait in the listen backlog",
     .costs = "nothing per connection; one slow client stalls everyone",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::one_at_a_time,
     .run = run_iterative},
    EngineInfo{
     .name = "iterative-udp",
     .pattern = "one thread in `recvfrom`/`sendto` (the lecture's UDP server)",
     .concurrency_source = "none, and none is needed while each datagram is cheap",
     .costs = "any service time delays every client; overflow is dropped by the socket buffer",
     .serves = Serves::datagrams,
     .transports = kDatagrams,
     .concurrency = Concurrency::one_at_a_time,
     .run = run_iterative_udp},
    EngineInfo{
     .name = "udp-pool",
     .pattern = "`--workers` threads blocking in `recvfrom` on one shared socket",
     .concurrency_source = "the pool: the kernel hands each datagram to one waiting thread",
     .costs = "threads contend on one receive queue",
     .serves = Serves::datagrams,
     .transports = kDatagrams,
     .concurrency = Concurrency::pool,
     .cap_option = "--workers",
     .run = run_udp_pool},
    EngineInfo{
     .name = "udp-batch",
     .pattern =
         "`--workers` threads, each with its own `SO_REUSEPORT` socket, moving up to `--batch` "
         "datagrams per `recvmmsg`/`sendmmsg`",
     .concurrency_source = "the pool: the kernel spreads datagrams over the sockets by flow hash",
     .costs =
         "a system call per batch, not per datagram; a batch's replies wait for all its work "
         "(`--work`); one busy flow stays on one thread; UDP only",
     .serves = Serves::datagrams,
     .transports = TransportSet{Transport::udp},
     .concurrency = Concurrency::pool,
     .cap_option = "--workers",
     .reuse_port_listener = true,
     .run = run_udp_batch},
    EngineInfo{
     .name = "prefork",
     .pattern =
         "`--workers` processes forked at start, all blocking in `accept()` on one socket, or "
         "taking turns there behind a process-shared mutex (`--accept-lock`)",
     .concurrency_source = "the processes: at most `--workers` clients served at once",
     .costs = "a process per worker; nothing per connection",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::pool,
     .cap_option = "--workers",
     .connections_in_children = true,
     .offers_accept_lock = true,
     .run = run_prefork},
    EngineInfo{
     .name = "prethread",
     .pattern = "the same with threads (`--accept-lock`: a mutex)",
     .concurrency_source = "the threads: at most `--workers` clients at once",
     .costs = "a stack per worker; nothing per connection",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::pool,
     .cap_option = "--workers",
     .offers_accept_lock = true,
     .run = run_prethread},
    EngineInfo{
     .name = "fork",
     .pattern = "accept, then `fork()` a child per connection; SIGCHLD-driven reaping",
     .concurrency_source = "one process per client, capped by `--max-children` (the rest wait in the backlog)",
     .costs = "a `fork()` per connection",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::per_connection,
     .cap_option = "--max-children",
     .connections_in_children = true,
     .run = run_fork},
    EngineInfo{
     .name = "thread",
     .pattern = "accept, then a thread per connection",
     .concurrency_source = "one thread per client, capped by `--max-threads`",
     .costs = "a thread creation and a stack per connection",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::per_connection,
     .cap_option = "--max-threads",
     .run = run_thread},
    EngineInfo{
     .name = "select",
     .pattern = "one thread, non-blocking sockets, `select()` with a buffer per client",
     .concurrency_source = "readiness multiplexing: many clients share one thread",
     .costs =
         "each call scans every descriptor; fds ≥ FD_SETSIZE (1024) are refused and counted; any "
         "service time stalls everyone",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::multiplexed,
     .descriptors = DescriptorLimit{FD_SETSIZE, "FD_SETSIZE"},
     .run = run_select},
    EngineInfo{
     .name = "poll",
     .pattern = "select's loop over `poll()`, one entry per descriptor",
     .concurrency_source = "readiness multiplexing: many clients share one thread",
     .costs =
         "each call hands the kernel every watched descriptor; no FD_SETSIZE limit; any service "
         "time stalls everyone",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::multiplexed,
     .run = run_poll},
    EngineInfo{
     .name = "epoll",
     .pattern = "one thread, level-triggered `epoll`, interest changed only when it changes",
     .concurrency_source = "readiness multiplexing: many clients share one thread",
     .costs = "a wait costs what is ready, not what is watched; any service time stalls everyone",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::multiplexed,
     .run = run_epoll},
    EngineInfo{
     .name = "epoll-reuseport",
     .pattern =
         "`--workers` threads, each its own epoll loop and its own `SO_REUSEPORT` listener on the "
         "same port",
     .concurrency_source = "one readiness loop per thread; the kernel hashes each new connection to one listener",
     .costs =
         "no shared accept queue and no thundering herd; the hash ignores load, so shares are "
         "uneven; connections queued on a listener are reset when it closes",
     .serves = Serves::streams,
     .transports = kTcp,
     .concurrency = Concurrency::multiplexed,
     .cap_option = "--workers",
     .reuse_port_listener = true,
     .available = reuse_port_available,
     .run = run_epoll_reuseport},
    EngineInfo{
     .name = "epoll-exclusive",
     .pattern =
         "`--workers` threads, each its own epoll loop, all watching one listener with "
         "`EPOLLEXCLUSIVE`",
     .concurrency_source = "one readiness loop per thread; the kernel wakes one waiting loop per new connection",
     .costs =
         "no thundering herd, but wake-ups favour the most recent waiter (LIFO), so a few loops "
         "take most connections",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::multiplexed,
     .cap_option = "--workers",
     .available = epoll_exclusive_available,
     .run = run_epoll_exclusive},
    EngineInfo{
     .name = "reactor-pool",
     .pattern =
         "one epoll thread does all socket I/O and framing; each complete message's work "
         "(`--work`) runs on one of `--workers` threads, which hand the reply back through an "
         "`eventfd`",
     .concurrency_source =
         "readiness multiplexing for the I/O, the pool for the service work: `--workers` messages "
         "worked on at once",
     .costs =
         "a hand-off per message (two thread switches, an `eventfd` round trip per batch) even "
         "with no work; a connection's messages stay on one worker, so a busy connection cannot "
         "borrow an idle one",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::multiplexed,
     .cap_option = "--workers",
     .run = run_reactor_pool},
    EngineInfo{
     .name = "io-uring",
     .pattern =
         "`--workers` threads, each its own `io_uring` and `SO_REUSEPORT` listener: a multishot "
         "accept, a multishot recv per connection into a provided buffer ring, sends from the "
         "session's output",
     .concurrency_source =
         "completions, not readiness: each loop enters the kernel once per batch, to submit and "
         "wait in one call",
     .costs =
         "one copy of received bytes out of the ring's buffers; Linux 6.0, and no seccomp policy "
         "forbidding `io_uring`; shares as uneven as epoll-reuseport's",
     .serves = Serves::streams,
     .transports = kStreams,
     .concurrency = Concurrency::multiplexed,
     .cap_option = "--workers",
     .reuse_port_listener = true,
     .socket_io_through_libc = false,
     .available = kIoUring.available,
     .needs = kIoUring.needs,
     .run = kIoUring.run},
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

std::string unavailable_reason(const EngineInfo& engine) {
  std::string reason = "engine " + std::string(engine.name) + " is not available on this machine";
  if (!engine.needs.empty()) {
    reason += ": it needs " + std::string(engine.needs);
  }
  return reason;
}

}  // namespace echolab
