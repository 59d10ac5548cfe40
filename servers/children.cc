#include "servers/children.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/stop.h"
#include "servers/connection.h"

namespace echolab {

pid_t ChildProcesses::fork_child(Counters& counters) {
  counters.count(Syscall::fork);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ++counters.spawn_errors;
    return -1;
  }
  if (pid == 0) {
    reset_stop_state_after_fork(parent);
    return 0;
  }
  live_.insert(pid);
  return pid;
}

void ChildProcesses::leave_child(int status) {
  // A child that stopped because it was signalled (not by its own failure) dies of that
  // signal, so that its parent's waitpid tells a stop apart from a failure.
  if (status == 0 && stop_signal() != 0 && !engine_failed()) {
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(stop_signal(), &fallback, nullptr);
    ::raise(stop_signal());
  }
  ::_exit(status);
}

std::vector<ChildProcesses::Exit> ChildProcesses::reap_exited() {
  std::vector<Exit> exits;
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      break;  // 0: children still running; -1: ECHILD, none left
    }
    live_.erase(pid);
    exits.push_back({pid, status});
  }
  return exits;
}

void ChildProcesses::terminate_all(std::chrono::milliseconds grace) {
  for (pid_t pid : live_) {
    ::kill(pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!live_.empty() && std::chrono::steady_clock::now() < deadline) {
    reap_exited();
    if (!live_.empty()) {
      // SIGCHLD wakes this poll through the wake pipe; the timeout re-checks the deadline.
      pollfd waiter{wake_fd(), POLLIN, 0};
      if (::poll(&waiter, 1, 50) > 0) {
        drain_wake_fd();
      }
    }
  }
  for (pid_t pid : live_) {
    ::kill(pid, SIGKILL);
  }
  while (!live_.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0 && errno != EINTR) {
      live_.clear();  // ECHILD: nothing left to reap
    } else if (pid > 0) {
      live_.erase(pid);
    }
  }
}

}  // namespace echolab
