#pragma once
// The readiness loop, written once for every engine that multiplexes non-blocking stream
// connections on one thread (select, poll, epoll and the multi-loop epoll engines). It owns
// accepting, one StreamSession per client, idle deadlines, flushing, the half-close and
// protocol-error endings, and the drain at stop; a Poller only says what is ready.
#include <memory>
#include <vector>

#include "servers/engine.h"
#include "servers/readiness/poller.h"

namespace echolab {

class WorkPool;

struct LoopPlace {
  int listener;     // the listening socket this loop accepts from (made non-blocking)
  int worker = 0;   // this loop's index in the stats' per-worker spread
  // The engine already watches the listener in the loop's poller, in a way the loop must not
  // change (EPOLLEXCLUSIVE, which epoll_ctl cannot modify): the loop only forgets it at stop.
  bool listener_watched = false;
  // A pool to run the service work on (reactor-pool), or none: the work is done inline, as
  // each message completes. With a pool, sessions defer their work, the loop hands each
  // completed message to the connection's worker and sends the reply once it is back; a
  // connection with work in flight is neither timed out idle nor closed at its end of
  // input before its replies are sent, and the drain at stop waits for them too.
  WorkPool* pool = nullptr;
};

// Serves until stop_requested(), then stops reading and accepting (it shuts the listener's
// read side, as the stop handler does main's, so that a listener of its own, such as an
// SO_REUSEPORT one, refuses new clients too instead of queueing them), sends what it owes for
// up to kDrainTime, closes every connection and adds its counters to context.stats. Call
// from the thread that owns `poller`. Throws std::system_error before serving when the
// poller refuses the loop's own descriptors (main checks the registry's limit first).
void run_readiness_loop(EngineContext& context, Poller& poller, LoopPlace place);

// One loop of a multi-loop engine: its own poller, and where it accepts.
struct LoopThread {
  std::unique_ptr<Poller> poller;
  LoopPlace place;
};

// Runs each loop on a thread of its own (stop signals blocked there); the calling main thread
// joins them, so returns once every loop has stopped, drained and ended. A thread that
// cannot be started stops those already running and its error is rethrown; a loop that fails
// while serving prints its error and fails the engine (fail_engine), stopping the others.
void run_loop_threads(EngineContext& context, std::vector<LoopThread>& loops);

}  // namespace echolab
