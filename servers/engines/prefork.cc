// prefork: the classic pre-forked pool (Apache's prefork MPM). --workers processes forked at
// start-up all block in accept() on the one listening socket they inherited; each serves its
// connection to the end, then accepts again. The parent only replaces workers that die or
// are signalled (a worker's own stop ends that worker alone); only the parent's stop stops
// the server. Workers die with the parent.
// Concurrency: the processes, so at most --workers clients are served at once. Costs: a
// process per worker (memory), none per connection.
// Try it: echolab-server --engine prefork --workers 4
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/stop.h"
#include "servers/children.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

// A pool whose workers keep dying as soon as they start would otherwise be respawned
// forever: past this many replacements within the window, the parent gives up and fails.
constexpr int kMaxReplacements = 16;
constexpr std::chrono::seconds kReplacementWindow{10};

void accept_and_serve(EngineContext& context, int worker) {
  // The listener is shared with the other workers: a stop of this worker alone (a signal
  // sent to it) must not shut it down for all of them.
  detach_on_stop(context.socket);
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
    context.stats.add(counters, worker);
    counters = Counters{};
  }
  context.stats.add(counters, worker);
}

}  // namespace

void run_prefork(EngineContext& context) {
  context.announce_ready();
  // Only the workers accept; the parent's stop must reach them as a signal (terminate_all),
  // not by shutting the listener they share under their feet.
  watch_for_stop(StopSlot::listener, -1);
  ChildProcesses children;
  Counters parent_counters;
  std::vector<pid_t> worker_pids(static_cast<std::size_t>(context.config.workers), -1);
  auto start_worker = [&](int worker) {
    const pid_t pid = children.spawn([&context, worker] { accept_and_serve(context, worker); },
                                     parent_counters);
    if (pid < 0) {
      throw sys_error("fork");
    }
    worker_pids[static_cast<std::size_t>(worker)] = pid;
  };
  for (int worker = 0; worker < context.config.workers; ++worker) {
    start_worker(worker);
  }
  std::deque<std::chrono::steady_clock::time_point> recent_replacements;
  auto replace_worker = [&](std::size_t worker, const ChildProcesses::Exit& exit) {
    const auto now = std::chrono::steady_clock::now();
    recent_replacements.push_back(now);
    while (now - recent_replacements.front() > kReplacementWindow) {
      recent_replacements.pop_front();
    }
    if (recent_replacements.size() > static_cast<std::size_t>(kMaxReplacements)) {
      fail_engine("prefork workers keep dying (" + std::to_string(kMaxReplacements + 1) +
                  " within " + std::to_string(kReplacementWindow.count()) + " s); giving up");
      return;
    }
    const int signal = WTERMSIG(exit.status);
    const std::string line = "echolab-server: prefork worker " + std::to_string(worker) + " (pid " +
                             std::to_string(exit.pid) + ") ended by signal " + std::to_string(signal) +
                             " (" + ::strsignal(signal) + "); replaced\n";
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    ++parent_counters.workers_replaced;
    try {
      start_worker(static_cast<int>(worker));
    } catch (const std::system_error& error) {
      fail_engine(error.what());  // out of processes: serving on with a smaller pool would hide it
    }
  };
  while (!stop_requested()) {
    pollfd waiter{wake_fd(), POLLIN, 0};
    if (::poll(&waiter, 1, -1) > 0) {
      drain_wake_fd();
    }
    for (const ChildProcesses::Exit& exit : children.reap_exited()) {
      for (std::size_t worker = 0; worker < worker_pids.size(); ++worker) {
        if (worker_pids[worker] != exit.pid || stop_requested()) {
          continue;
        }
        // A worker killed or stopped by a signal is replaced, so the pool keeps its size;
        // one that failed on its own (its listener broke) would only fail again.
        if (WIFSIGNALED(exit.status)) {
          replace_worker(worker, exit);
        } else {
          fail_engine("prefork worker " + std::to_string(worker) + " exited with status " +
                      std::to_string(WEXITSTATUS(exit.status)));
        }
      }
    }
  }
  children.terminate_all();
  context.stats.add(parent_counters);
}

}  // namespace echolab
