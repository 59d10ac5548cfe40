// epoll: one thread, level-triggered epoll, non-blocking sockets. The kernel keeps the
// interest list, so a wait costs what is ready rather than what is watched, and interest is
// changed only when it really changes. Concurrency: readiness multiplexing, as select, with
// no FD_SETSIZE limit; out of descriptors (EMFILE), the spare-descriptor defence of
// accept_connection closes the waiting client instead of spinning on the listener.
// Try it: echolab-server --engine epoll --protocol raw & nc 127.0.0.1 7007
#include "servers/engines/engines.h"
#include "servers/readiness/epoll_poller.h"
#include "servers/readiness/loop.h"

namespace echolab {

void run_epoll(EngineContext& context) {
  EpollPoller poller;
  run_readiness_loop(context, poller, {context.socket});
}

}  // namespace echolab
