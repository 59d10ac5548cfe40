#pragma once
// The child processes of the process engines (prefork, fork): spawning, reaping, and
// terminating them, so that no child is ever left a zombie or an orphan.
#include <sys/types.h>

#include <chrono>
#include <exception>
#include <unordered_set>
#include <vector>

#include "core/stats.h"
#include "servers/connection.h"

namespace echolab {

class ChildProcesses {
 public:
  ChildProcesses() = default;
  ChildProcesses(const ChildProcesses&) = delete;
  ChildProcesses& operator=(const ChildProcesses&) = delete;
  // Never leaves children behind, even when the engine unwinds with an error.
  ~ChildProcesses() { terminate_all(); }

  // Forks a child that runs body() and leaves with _exit: status 1 if body threw or the
  // child failed (fail_engine); if it stopped because it was signalled (SIGTERM, SIGHUP,
  // SIGINT, its parent's death), it dies of that signal once done; status 0 otherwise.
  // A child never returns into the parent's code, never runs its destructors (which would
  // remove the unix socket file) and never flushes its stdio buffers. The child stops when
  // its parent dies (see reset_stop_state_after_fork). Returns the child's pid, or -1 with
  // errno set when fork() failed (counted in spawn_errors). Call from the main thread.
  template <typename Body>
  pid_t spawn(Body&& body, Counters& counters);

  struct Exit {
    pid_t pid;
    int status;  // as waitpid reports it
  };
  // Reaps every child that has exited, without blocking.
  std::vector<Exit> reap_exited();

  [[nodiscard]] std::size_t live() const { return live_.size(); }

  // SIGTERM to every live child, up to `grace` for them to finish, then SIGKILL; reaps all.
  void terminate_all(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  pid_t fork_child(Counters& counters);
  [[noreturn]] static void leave_child(int status);

  std::unordered_set<pid_t> live_;
};

template <typename Body>
pid_t ChildProcesses::spawn(Body&& body, Counters& counters) {
  const pid_t pid = fork_child(counters);
  if (pid != 0) {
    return pid;
  }
  int status = 0;
  try {
    body();
  } catch (const std::exception&) {
    status = 1;
  }
  if (engine_failed()) {
    status = 1;
  }
  leave_child(status);
}

}  // namespace echolab
