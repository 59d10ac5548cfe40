// twin-prefork: --workers processes forked at start, each blocking in accept() on the one
// listening socket and echoing the client it got. The parent sleeps until SIGTERM, passes
// it on to the workers and waits for them. A worker that dies is not replaced.
#include <signal.h>
#include <sys/wait.h>

#include <vector>

#include "twin.h"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_term(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  const twin::Args args = twin::parse(argc, argv);
  const int listener = twin::listen_and_announce(args);
  struct sigaction action {};
  action.sa_handler = on_term;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  sigset_t term, unblocked;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::sigprocmask(SIG_BLOCK, &term, &unblocked);  // no SIGTERM lost before sigsuspend
  std::vector<pid_t> workers;
  for (int i = 0; i < args.workers; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) twin::die("fork");
    if (pid == 0) {
      ::signal(SIGTERM, SIG_DFL);  // a worker stops at once: nothing to finish, no race
      ::sigprocmask(SIG_SETMASK, &unblocked, nullptr);
      for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;  // ECONNABORTED, EMFILE...
        twin::no_delay(fd);
        twin::echo_blocking(fd);
      }
    }
    workers.push_back(pid);
  }
  while (g_stop == 0) ::sigsuspend(&unblocked);
  for (pid_t pid : workers) ::kill(pid, SIGTERM);
  for (pid_t pid : workers) ::waitpid(pid, nullptr, 0);
  return 0;
}
