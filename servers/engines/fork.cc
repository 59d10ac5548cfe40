// fork: accept-and-fork, the lecture's concurrent TCP server. The parent accepts, forks a
// child per connection, and reaps children as they exit (SIGCHLD wakes it), never leaving a
// zombie. Concurrency: one process per client, capped at --max-children; over the cap, new
// connections wait in the backlog. Costs: a fork (~2 ms here) per connection.
// Try it: echolab-server --engine fork --max-children 32
#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#include "core/error.h"
#include "core/io.h"
#include "core/session.h"
#include "core/socket.h"
#include "core/stop.h"
#include "servers/children.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {

void run_fork(EngineContext& context) {
  context.announce_ready();
  // Non-blocking, so that a connection that vanished between poll and accept cannot block
  // the parent; the accepted sockets themselves are blocking.
  if (int err = set_nonblocking(context.socket, true)) {
    throw sys_error("fcntl(O_NONBLOCK)", err);
  }
  // Every child allocates its session's receive buffer and frees it before it exits. With
  // glibc's defaults each child grows the heap with brk for it and trims it back at the end:
  // two system calls and a consolidation per connection, measured at about 10 % of a
  // connection's cost here (bench/fidelity.py, twin-fork). Headroom made once in the parent
  // (a pad kept untrimmed) is inherited by every child instead.
  ::mallopt(M_TRIM_THRESHOLD, 1 << 20);
  ::mallopt(M_TOP_PAD, 256 << 10);
  ::free(::malloc(kSessionReceiveChunk));
  const auto cap = static_cast<std::size_t>(std::max(1, context.config.max_children));
  ChildProcesses children;
  Counters counters;
  while (!stop_requested()) {
    children.reap_exited();
    pollfd fds[2] = {{wake_fd(), POLLIN, 0},
                     {context.socket, static_cast<short>(children.live() < cap ? POLLIN : 0), 0}};
    counters.count(Syscall::poll);
    if (::poll(fds, 2, -1) < 0) {
      continue;  // EINTR: a signal; the loop re-checks the stop flag and reaps
    }
    if (fds[0].revents != 0) {
      drain_wake_fd();
      continue;  // reap first: that may make room under the cap
    }
    if ((fds[1].revents & POLLIN) == 0 || children.live() >= cap) {
      continue;
    }
    AcceptResult accepted = accept_connection(context.socket, counters);
    if (!accepted.fd) {
      if (!continue_after_accept_failure(accepted)) {
        break;
      }
      continue;
    }
    const pid_t pid = children.spawn(
        [&context, &accepted] {
          ::close(context.socket);  // the child serves one connection and never accepts
          Counters child_counters;
          serve_connection(std::move(accepted.fd), context, child_counters);
          context.stats.add(child_counters);
        },
        counters);
    if (pid < 0) {
      ++counters.connections_refused;  // fork failed: this client is closed, the server goes on
    }
    // The parent's copy of the connection closes here, as accepted.fd goes out of scope.
  }
  context.stats.add(counters);
  children.terminate_all();
}

}  // namespace echolab
