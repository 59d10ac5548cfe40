#pragma once
// The readiness loop, written once for every engine that multiplexes non-blocking stream
// connections on one thread (select, poll, epoll and the multi-loop epoll engines). It owns
// accepting, one StreamSession per client, idle deadlines, flushing, the half-close and
// protocol-error endings, and the drain at stop; a Poller only says what is ready.
#include "servers/engine.h"
#include "servers/readiness/poller.h"

namespace echolab {

struct LoopPlace {
  int listener;     // the listening socket this loop accepts from (made non-blocking)
  int worker = 0;   // this loop's index in the stats' per-worker spread
};

// Serves until stop_requested(), then stops reading and accepting, sends what it owes for
// up to kDrainTime, closes every connection and adds its counters to context.stats. Call
// from the thread that owns `poller`. Throws std::runtime_error before serving when the
// poller cannot watch the loop's own descriptors (select past FD_SETSIZE).
void run_readiness_loop(EngineContext& context, Poller& poller, LoopPlace place);

}  // namespace echolab
