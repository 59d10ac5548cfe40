#pragma once
// How a pool worker (prefork, prethread) waits for its next connection on the listener it
// shares with the other workers, and where the thundering herd is counted.
//   AcceptWait::accept  block in accept(). Linux queues accept() waiters exclusively (since
//                       2.6), so a connection wakes one of them: no herd to see.
//   AcceptWait::poll    poll() the listener, then accept() without blocking, as servers
//                       that wait in select/poll/epoll do. poll() waiters are all woken by a
//                       connection, and all but one find nothing: the herd. An accept lock
//                       (--accept-lock) around the wait leaves one poller at a time.
// The herd is counted in accept_wakeups_idle: wake-ups of the waiting thread that brought no
// connection, read from its count of voluntary sleeps (getrusage RUSAGE_THREAD, ru_nvcsw)
// around the wait, plus accepts that found the queue empty (EAGAIN). Most idle wake-ups never
// reach user space: poll() re-checks the listener after a wake-up and, finding its queue
// already emptied, sleeps again. Two getrusage() calls per connection are its cost.
#include "core/io.h"
#include "core/stats.h"
#include "servers/engine.h"

namespace echolab {

// Readies the shared listener for `wait`: non-blocking for AcceptWait::poll (connections
// accepted from it stay blocking). Call once, before forking or starting the workers.
// Throws std::system_error naming fcntl.
void prepare_listener(int listener, AcceptWait wait);

// Waits for one connection as `wait` says and accepts it; call with the accept lock held, if
// the engine has one. Adds the wait's idle wake-ups to counters.accept_wakeups_idle. Nothing
// to accept (EAGAIN), or a poll() interrupted by a signal (EINTR), is returned as a transient
// failure: the caller's loop checks for a stop and waits again.
[[nodiscard]] AcceptResult wait_and_accept(int listener, AcceptWait wait, Counters& counters);

}  // namespace echolab
