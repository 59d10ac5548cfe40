// epoll-exclusive: --workers threads, each its own level-triggered epoll loop, all watching
// the one listener with EPOLLEXCLUSIVE (Linux 4.5): the kernel wakes one waiting loop per new
// connection instead of every loop (the thundering herd). Limits: the woken loop is the most
// recent waiter (LIFO), so under light load a few loops take most connections (the stats'
// "workers" spread shows it); the listener's interest cannot be modified, only removed.
// Try it: echolab-server --engine epoll-exclusive --workers 4 --stats-json - & echolab-loadgen --mode connect
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <system_error>
#include <vector>

#include "core/fd.h"
#include "servers/engines/engines.h"
#include "servers/readiness/epoll_poller.h"
#include "servers/readiness/loop.h"

namespace echolab {

bool epoll_exclusive_available() {
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  int pipe_fds[2];
  if (!epoll || ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return false;
  }
  const Fd read_end(pipe_fds[0]);
  const Fd write_end(pipe_fds[1]);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLEXCLUSIVE;
  return ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, read_end.get(), &event) == 0;
}

void run_epoll_exclusive(EngineContext& context) {
  std::vector<LoopThread> loops;
  for (int worker = 0; worker < context.config.workers; ++worker) {
    auto poller = std::make_unique<EpollPoller>();
    if (const std::error_code error = poller->watch_exclusive(context.socket)) {
      throw std::system_error(error, "epoll_ctl(EPOLLEXCLUSIVE)");
    }
    // listener_watched: the loop must neither add the listener again nor modify it.
    loops.push_back({std::move(poller), LoopPlace{context.socket, worker, /*listener_watched=*/true}});
  }
  run_loop_threads(context, loops);
}

}  // namespace echolab
