// prethread: --workers threads created at start-up, all blocking in accept() on the one
// listening socket; each serves the connection it got to the end, then accepts again.
// Concurrency: the pool, so at most --workers clients are served at once and the rest wait
// in the backlog. Costs: no thread creation per connection; a stack per worker.
// --accept-lock: the threads take turns in accept() behind a mutex (Stevens, UNP vol. 1
// ch. 30), so one waits in accept() and the rest on the mutex. --accept-wait poll: the threads
// poll() the listener before accepting (servers/accept_wait.h).
// Try it: echolab-server --engine prethread --workers 8
#include <mutex>
#include <thread>
#include <vector>

#include "core/io.h"
#include "core/stop.h"
#include "servers/accept_wait.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

// Takes one connection, through the accept lock if there is one. A stop shuts the listener
// down, so the holder's accept() returns and it lets go; each thread waiting on the mutex then
// takes it in turn, sees the stop and lets go, so no thread needs waking on its own.
AcceptResult accept_one(int listener, AcceptWait wait, Counters& counters, std::mutex* accept_lock) {
  if (accept_lock == nullptr) {
    return wait_and_accept(listener, wait, counters);
  }
  std::lock_guard hold(*accept_lock);
  if (stop_requested()) {
    return AcceptResult{Fd(), EINVAL, true};
  }
  return wait_and_accept(listener, wait, counters);
}

void accept_and_serve(EngineContext& context, ConnectionRegistry& registry, int worker,
                      std::mutex* accept_lock) {
  block_stop_signals_in_this_thread();
  Counters counters;
  while (!stop_requested()) {
    AcceptResult accepted = accept_one(context.socket, context.config.accept_wait, counters, accept_lock);
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
  prepare_listener(context.socket, context.config.accept_wait);
  context.announce_ready();
  ConnectionRegistry registry;
  std::mutex accept_lock;  // outlives the pool: the jthreads below join first
  std::mutex* const lock = context.config.accept_lock ? &accept_lock : nullptr;
  std::vector<std::jthread> pool;
  try {
    for (int worker = 0; worker < context.config.workers; ++worker) {
      pool.emplace_back(accept_and_serve, std::ref(context), std::ref(registry), worker, lock);
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
