// prethread: --workers threads created at start-up, all blocking in accept() on the one
// listening socket; each serves the connection it got to the end, then accepts again.
// Concurrency: the pool, so at most --workers clients are served at once and the rest wait
// in the backlog. Costs: no thread creation per connection; a stack per worker.
// Try it: echolab-server --engine prethread --workers 8
#include <thread>
#include <vector>

#include "core/io.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

void accept_and_serve(EngineContext& context, ConnectionRegistry& registry, int worker) {
  block_stop_signals_in_this_thread();
  Counters counters;
  while (!stop_requested()) {
    AcceptResult accepted = accept_connection(context.socket, counters);
    if (!accepted.fd) {
      if (!continue_after_accept_failure(accepted)) {
        break;  // a stop shut the listener down, or it failed
      }
      continue;
    }
    serve_connection(std::move(accepted.fd), context, counters, &registry);
    context.stats.add(counters, worker);
    counters = Counters{};
  }
  context.stats.add(counters, worker);
}

}  // namespace

void run_prethread(EngineContext& context) {
  context.announce_ready();
  ConnectionRegistry registry;
  std::vector<std::jthread> pool;
  try {
    for (int worker = 0; worker < context.config.workers; ++worker) {
      pool.emplace_back(accept_and_serve, std::ref(context), std::ref(registry), worker);
    }
  } catch (...) {
    request_stop();
    registry.stop_all();
    throw;
  }
  wait_for_stop();
  registry.stop_all();
}

}  // namespace echolab
