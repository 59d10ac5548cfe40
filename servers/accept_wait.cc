#include "servers/accept_wait.h"

#include <fcntl.h>
#include <poll.h>

#include <cerrno>

#include "core/error.h"
#include "core/stop.h"

namespace echolab {

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
  AcceptResult accepted = accept_connection(listener, counters);
  if (!accepted.fd && (accepted.error == EAGAIN || accepted.error == EWOULDBLOCK) && !stop_requested()) {
    ++counters.accept_wakeups_idle;
  }
  return accepted;
}

}  // namespace echolab
