#pragma once
// How a pool worker (prefork, prethread) waits for its next connection on the listener it
// shares with the other workers, and where the thundering herd is counted.
//   AcceptWait::accept  block in accept(). Linux queues accept() waiters exclusively (since
//                       2.6), so a connection wakes one of them: no herd to see.
//   AcceptWait::poll    poll() the listener, then accept() without blocking, as servers
//                       that wait in select/poll/epoll do. poll() waiters are all woken by a
//                       connection, and all but one find nothing: the herd, counted in
//                       accept_wakeups_idle. An accept lock (--accept-lock) around the wait
//                       leaves one poller at a time, so no herd.
#include "core/io.h"
#include "core/stats.h"
#include "servers/engine.h"

namespace echolab {

// Readies the shared listener for `wait`: non-blocking for AcceptWait::poll (connections
// accepted from it stay blocking). Call once, before forking or starting the workers.
// Throws std::system_error naming fcntl.
void prepare_listener(int listener, AcceptWait wait);

// Waits for one connection as `wait` says and accepts it; call with the accept lock held, if
// the engine has one. A wake-up that finds nothing to accept (EAGAIN), outside a stop, is
// counted in counters.accept_wakeups_idle and returned as a transient failure, as is a poll()
// interrupted by a signal (EINTR): the caller's loop checks for a stop and waits again.
[[nodiscard]] AcceptResult wait_and_accept(int listener, AcceptWait wait, Counters& counters);

}  // namespace echolab
