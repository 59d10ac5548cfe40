// thread: accept-and-thread. The main thread accepts and starts a thread per connection,
// which serves it to the end and exits; finished threads are joined as they report back.
// Concurrency: one thread per client, capped at --max-threads; over the cap, new connections
// wait in the backlog. Costs: a thread creation (~tens of µs) and a stack per connection.
// Try it: echolab-server --engine thread --max-threads 256
#include <poll.h>

#include <atomic>
#include <list>
#include <system_error>
#include <thread>

#include "core/error.h"
#include "core/io.h"
#include "core/socket.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

struct ConnectionThread {
  std::atomic<bool> finished{false};
  std::thread thread;
};

// Joins the threads that said they finished; returns how many are still running.
std::size_t join_finished(std::list<ConnectionThread>& threads) {
  for (auto it = threads.begin(); it != threads.end();) {
    if (it->finished.load(std::memory_order_acquire)) {
      it->thread.join();
      it = threads.erase(it);
    } else {
      ++it;
    }
  }
  return threads.size();
}

}  // namespace

void run_thread(EngineContext& context) {
  context.announce_ready();
  if (int err = set_nonblocking(context.socket, true)) {
    throw sys_error("fcntl(O_NONBLOCK)", err);
  }
  const auto cap = static_cast<std::size_t>(std::max(1, context.config.max_threads));
  ConnectionRegistry registry;
  std::list<ConnectionThread> threads;
  Counters counters;
  while (!stop_requested()) {
    const std::size_t live = join_finished(threads);
    pollfd fds[2] = {{wake_fd(), POLLIN, 0},
                     {context.socket, static_cast<short>(live < cap ? POLLIN : 0), 0}};
    counters.count(Syscall::poll);
    if (::poll(fds, 2, -1) < 0) {
      continue;
    }
    if (fds[0].revents != 0) {
      drain_wake_fd();
      continue;
    }
    if ((fds[1].revents & POLLIN) == 0 || join_finished(threads) >= cap) {
      continue;
    }
    AcceptResult accepted = accept_connection(context.socket, counters);
    if (!accepted.fd) {
      if (!continue_after_accept_failure(accepted)) {
        break;
      }
      continue;
    }
    ConnectionThread& slot = threads.emplace_back();
    counters.count(Syscall::thread_create);
    try {
      slot.thread = std::thread([&context, &registry, &slot, fd = std::move(accepted.fd)]() mutable {
        block_stop_signals_in_this_thread();
        Counters thread_counters;
        serve_connection(std::move(fd), context, thread_counters, &registry);
        context.stats.add(thread_counters);
        slot.finished.store(true, std::memory_order_release);
        notify_wake();  // so the main thread joins it and may accept under the cap again
      });
    } catch (const std::system_error&) {
      // pthread_create failed (EAGAIN: RLIMIT_NPROC, memory): this client is closed by the
      // lambda's destruction, counted, and the server goes on.
      threads.pop_back();
      ++counters.spawn_errors;
      ++counters.connections_refused;
    }
  }
  registry.stop_all();
  for (ConnectionThread& connection : threads) {
    connection.thread.join();
  }
  context.stats.add(counters);
}

}  // namespace echolab
