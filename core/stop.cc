#include "core/stop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <ctime>

#include "core/clock.h"
#include "core/error.h"

namespace echolab {
namespace {

std::atomic<bool> g_stop{false};
int g_wake_read = -1;
int g_wake_write = -1;
std::atomic<int> g_watched[2] = {-1, -1};
// detach_on_stop(): the shared listener's descriptor number, and the socket put in its place.
std::atomic<int> g_detached{-1};
int g_stand_in = -1;
std::atomic<int> g_stop_signal{0};
// CLOCK_MONOTONIC nanoseconds of the first stop request; 0 while none.
std::atomic<std::int64_t> g_stop_time_ns{0};

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "used from a signal handler");

void shut_watched(int how) {
  for (auto& slot : g_watched) {
    const int fd = slot.load();
    if (fd >= 0) {
      ::shutdown(fd, how);
    }
  }
}

void detach_shared_listener() {
  const int fd = g_detached.load();
  if (fd >= 0 && g_stand_in >= 0) {
    ::dup2(g_stand_in, fd);  // async-signal-safe; the shared socket itself is not touched
  }
}

void stop_now(int signal) {
  if (!g_stop.exchange(true)) {
    g_stop_signal.store(signal);
    g_stop_time_ns.store(monotonic_ns());
    ::alarm(static_cast<unsigned>(kDrainTime.count()));
  }
  detach_shared_listener();
  shut_watched(SHUT_RD);
  notify_wake();
}

void on_stop_signal(int signal) {
  const int saved = errno;
  stop_now(signal);
  errno = saved;
}

// Only the alarm that stop_now() armed means anything: a stray SIGALRM (a kill, no stop
// pending, or one before the deadline) must not shut the sockets of a serving process.
void on_drain_deadline(int) {
  const int saved = errno;
  const std::int64_t stopped = g_stop_time_ns.load();
  if (g_stop.load() && stopped != 0 &&
      monotonic_ns() - stopped >= std::chrono::nanoseconds(kDrainTime).count()) {
    shut_watched(SHUT_RDWR);
    notify_wake();
  }
  errno = saved;
}

void on_child_signal(int) {
  const int saved = errno;
  notify_wake();
  errno = saved;
}

void install(int signal, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and see the flag
  if (::sigaction(signal, &action, nullptr) != 0) {
    throw_sys_error("sigaction");
  }
}

// Signals whose default action ends the process and that nothing here arms: ignored, so a
// stray kill neither ends the service nor interrupts a blocking call.
void ignore_if_default(int signal) {
  struct sigaction current {};
  if (::sigaction(signal, nullptr, &current) != 0) {
    return;  // a number this system does not have (or that the C library keeps to itself)
  }
  if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(signal, &ignore, nullptr);
  }
}

}  // namespace

void install_stop_handlers() {
  if (g_wake_read < 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw_sys_error("pipe2");
    }
    g_wake_read = fds[0];
    g_wake_write = fds[1];
  }
  install(SIGINT, on_stop_signal);
  install(SIGTERM, on_stop_signal);
  install(SIGHUP, on_stop_signal);
  install(SIGCHLD, on_child_signal);
  install(SIGALRM, on_drain_deadline);
  for (int signal : {SIGUSR1, SIGUSR2, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT}) {
    ignore_if_default(signal);
  }
  for (int signal = SIGRTMIN; signal <= SIGRTMAX; ++signal) {
    ignore_if_default(signal);
  }
}

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }

bool work_cutoff_passed() {
  if (!g_stop.load(std::memory_order_relaxed)) {
    return false;
  }
  const std::int64_t stopped = g_stop_time_ns.load();
  return stopped != 0 && monotonic_ns() - stopped >= std::chrono::nanoseconds(kWorkCutoff).count();
}

int stop_signal() { return g_stop_signal.load(); }

void request_stop() {
  const int saved = errno;
  stop_now(0);
  errno = saved;
}

int wake_fd() { return g_wake_read; }

void drain_wake_fd() {
  char sink[64];
  while (::read(g_wake_read, sink, sizeof(sink)) > 0) {
  }
}

void notify_wake() {
  if (g_wake_write >= 0) {
    const char byte = 1;
    // A full pipe already guarantees a wake-up; EAGAIN is fine.
    [[maybe_unused]] ssize_t ignored = ::write(g_wake_write, &byte, 1);
  }
}

void watch_for_stop(StopSlot slot, int fd) {
  auto& cell = g_watched[static_cast<int>(slot)];
  cell.store(fd);
  // A stop that arrived before this fd was watched must still reach it.
  if (fd >= 0 && g_stop.load()) {
    ::shutdown(fd, SHUT_RD);
  }
}

void detach_on_stop(int fd) {
  if (fd >= 0 && g_stand_in < 0) {
    // Unconnected and not listening: accept() on it fails with EINVAL.
    g_stand_in = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g_stand_in < 0) {
      throw_sys_error("socket");
    }
  }
  g_detached.store(fd);
  // A stop that arrived before this fd was registered must still reach it.
  if (fd >= 0 && g_stop.load()) {
    detach_shared_listener();
  }
}

void block_stop_signals_in_this_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGALRM);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void reset_stop_state_after_fork(int parent) {
  // First, so that no window is left where the parent could die unnoticed: if it died
  // before the prctl, getppid() no longer names it.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) {
    ::_exit(0);
  }
  // The child gets its own pipe so that its notifications never wake the parent.
  ::close(g_wake_read);
  ::close(g_wake_write);
  g_wake_read = g_wake_write = -1;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
    g_wake_read = fds[0];
    g_wake_write = fds[1];
  }
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &action, nullptr);
  g_watched[0].store(-1);
  g_watched[1].store(-1);
  g_detached.store(-1);
}

}  // namespace echolab
