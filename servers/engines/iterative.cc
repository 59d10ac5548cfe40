// iterative: the lecture's TCP server. One process, one thread: accept a client, echo it until
// it leaves, then accept the next. Concurrency: none; every other client waits in the listen
// backlog, so one slow client stalls them all. Costs nothing per connection beyond accept.
// Try it: echolab-server --engine iterative --protocol raw & nc 127.0.0.1 7007
#include "core/io.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {

void run_iterative(EngineContext& context) {
  context.announce_ready();
  Counters counters;
  while (!stop_requested()) {
    AcceptResult accepted = accept_connection(context.socket, counters);
    if (!accepted.fd) {
      if (!continue_after_accept_failure(accepted)) {
        break;
      }
      continue;
    }
    serve_connection(std::move(accepted.fd), context, counters);
    context.stats.add(counters, 0);
    counters = Counters{};
  }
  context.stats.add(counters, 0);
}

}  // namespace echolab
