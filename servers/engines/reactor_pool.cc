// reactor-pool: half-sync/half-async. One epoll thread, the reactor, does all socket I/O and
// framing for every connection (the readiness loop of servers/readiness/loop.cc); each
// complete message (a frame, or a raw read) goes to a pool of --workers threads that run the
// service work (--work) and hand the finished reply back through an eventfd
// (servers/readiness/work_pool.h). Concurrency: readiness multiplexing for the I/O, the pool
// for the work, so a blocking service (--work sleep:1ms) serves --workers messages at once
// where select serves one. Each connection is bound to one worker (round robin at accept),
// which keeps its replies in request order; a busy connection cannot borrow an idle worker.
// With --work none every message is still handed off: the engine then shows what the
// hand-off itself costs (two thread switches and an eventfd round trip per batch).
// Try it: echolab-server --engine reactor-pool --workers 4 --work sleep:1ms
#include "servers/engines/engines.h"
#include "servers/readiness/epoll_poller.h"
#include "servers/readiness/loop.h"
#include "servers/readiness/work_pool.h"

namespace echolab {

void run_reactor_pool(EngineContext& context) {
  WorkPool pool(context.config.protocol.work, context.config.workers);
  EpollPoller poller;
  pool.start();  // joined by finish(), or by the destructor if the loop cannot start
  // The reactor's own counters go to the totals only (worker -1): the spread over workers
  // is the pool's, each worker's connections and jobs.
  run_readiness_loop(context, poller, LoopPlace{.listener = context.socket, .worker = -1, .pool = &pool});
  pool.finish(context.stats);
}

}  // namespace echolab
