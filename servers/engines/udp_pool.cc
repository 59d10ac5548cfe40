// udp-pool: --workers threads all blocking in recvfrom on one shared UDP socket; the kernel
// hands each datagram to one waiting thread. Concurrency: the pool; service time (--work)
// overlaps across threads. Costs: threads contend on the socket's receive queue lock.
// Try it: echolab-server --engine udp-pool --workers 4 --transport udp --work sleep:1ms
#include <thread>
#include <vector>

#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/datagram.h"
#include "servers/engines/engines.h"

namespace echolab {

void run_udp_pool(EngineContext& context) {
  context.announce_ready();
  std::vector<std::jthread> pool;
  try {
    for (int worker = 0; worker < context.config.workers; ++worker) {
      pool.emplace_back([&context, worker] {
        block_stop_signals_in_this_thread();
        serve_datagrams(context, worker);
      });
    }
  } catch (...) {
    request_stop();  // let the threads already started finish before the error leaves
    throw;
  }
  // The stop handler shuts the socket's read side, which wakes every thread in recvfrom.
  wait_for_stop();
}

}  // namespace echolab
