#include "servers/accept_wait.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>

#include "core/error.h"
#include "core/stop.h"

namespace echolab {
namespace {

AcceptResult wait_for_connection(int listener, AcceptWait wait, Counters& counters) {
  if (wait == AcceptWait::poll) {
    // A stop wakes this poll(): the listener is shut down (threads) or replaced by a socket
    // that reports a hang-up (a prefork worker, whose poll() the signal also interrupts).
    pollfd waiter{listener, POLLIN, 0};
    counters.count(Syscall::poll);
    if (::poll(&waiter, 1, -1) < 0) {
      const int err = errno;
      return AcceptResult{Fd(), err, err != EINTR && err != ENOMEM};
    }
  }
  return accept_connection(listener, counters);
}

// Times the calling thread has gone to sleep so far: each sleep ends in a wake-up.
long sleeps_so_far() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

}  // namespace

void prepare_listener(int listener, AcceptWait wait) {
  if (wait != AcceptWait::poll) {
    return;
  }
  const int flags = ::fcntl(listener, F_GETFL);
  if (flags < 0 || ::fcntl(listener, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw sys_error("fcntl");
  }
}

AcceptResult wait_and_accept(int listener, AcceptWait wait, Counters& counters) {
  const long sleeps_before = sleeps_so_far();
  AcceptResult accepted = wait_for_connection(listener, wait, counters);
  const long sleeps = sleeps_so_far() - sleeps_before;
  // Every wake-up of this wait brought nothing, but the last when it brought a connection (or
  // a stop). One that poll() or accept() absorbed, finding the queue already emptied by
  // another worker, slept again inside the kernel: it shows only here, as a sleep.
  const bool useful_end = accepted.fd.valid() || stop_requested();
  long idle = useful_end ? sleeps - 1 : sleeps;
  if (!useful_end && (accepted.error == EAGAIN || accepted.error == EWOULDBLOCK)) {
    idle = std::max(idle, 1L);  // readable when polled, taken by another worker before accept()
  }
  counters.accept_wakeups_idle += static_cast<std::uint64_t>(std::max(idle, 0L));
  return accepted;
}

}  // namespace echolab
