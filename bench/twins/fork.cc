// twin-fork: accept, fork a child per connection, the child echoes and exits; the parent
// reaps with waitpid(WNOHANG) whenever SIGCHLD wakes it. SIGTERM stops the parent, which
// passes it on to its children and waits for them.
//
// The signals are blocked except inside ppoll, so a SIGTERM or SIGCHLD can never slip in
// between the check of the flag and the wait (a blocking accept would have that race).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <unordered_set>

#include "twin.h"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_signal(int signal) {
  if (signal == SIGTERM) g_stop = 1;
}
}  // namespace

int main(int argc, char** argv) {
  const int listener = twin::listen_and_announce(twin::parse(argc, argv));
  // Non-blocking, so a connection that vanished between ppoll and accept cannot block us.
  ::fcntl(listener, F_SETFL, O_NONBLOCK);
  struct sigaction action {};
  action.sa_handler = on_signal;  // no SA_RESTART: the signals interrupt ppoll
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGCHLD, &action, nullptr);
  sigset_t blocked, unblocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &blocked, &unblocked);
  std::unordered_set<pid_t> children;
  while (g_stop == 0) {
    for (pid_t pid; (pid = ::waitpid(-1, nullptr, WNOHANG)) > 0;) children.erase(pid);
    pollfd waiter{listener, POLLIN, 0};
    if (::ppoll(&waiter, 1, nullptr, &unblocked) <= 0) continue;  // EINTR: reap, check the flag
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);  // blocking, as accepted
    if (fd < 0) continue;
    twin::no_delay(fd);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::signal(SIGTERM, SIG_DFL);  // a child stops at once when its parent passes SIGTERM on
      ::signal(SIGCHLD, SIG_DFL);
      ::sigprocmask(SIG_SETMASK, &unblocked, nullptr);
      ::close(listener);
      twin::echo_blocking(fd);
      ::_exit(0);
    }
    if (pid > 0) children.insert(pid);
    ::close(fd);
  }
  for (pid_t pid : children) ::kill(pid, SIGTERM);
  for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
  return 0;
}
