// epoll-reuseport: --workers threads, each its own level-triggered epoll loop and its own
// SO_REUSEPORT listener on the same port; the kernel hashes each new connection to one
// listener, so the loops share no accept queue and none is woken for another's client.
// Limits: tcp only; the hash ignores load, so shares are uneven at small counts; a listener
// that closes resets the connections still in its own queue (at a stop every loop stops
// accepting at once, shutting its listener, so only clients racing the stop are refused).
// Try it: echolab-server --engine epoll-reuseport --workers 4 & echolab-loadgen --mode connect
#include <sys/socket.h>

#include <vector>

#include "core/fd.h"
#include "core/socket.h"
#include "servers/engines/engines.h"
#include "servers/readiness/epoll_poller.h"
#include "servers/readiness/loop.h"

namespace echolab {

bool reuse_port_available() {
  Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  return probe && ::setsockopt(probe.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == 0;
}

void run_epoll_reuseport(EngineContext& context) {
  // Worker 0 accepts from main's listener, opened with SO_REUSEPORT (the registry row says
  // so); the others from listeners bound beside it. All are bound, and every epoll instance
  // made, before a loop starts: a failure here leaves nothing running.
  SocketOptions options = context.config.socket;
  options.reuse_port = true;
  std::vector<Fd> listeners;  // outlive the loops: declared before them
  std::vector<LoopThread> loops;
  for (int worker = 0; worker < context.config.workers; ++worker) {
    int listener = context.socket;
    if (worker > 0) {
      listeners.push_back(open_listener_beside(context.socket, options));
      listener = listeners.back().get();
    }
    loops.push_back({std::make_unique<EpollPoller>(), LoopPlace{listener, worker}});
  }
  run_loop_threads(context, loops);
}

}  // namespace echolab
