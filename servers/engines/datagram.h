#pragma once
// The receive-echo loop that both datagram engines run, on one or many threads.
#include "servers/engine.h"

namespace echolab {

// recvfrom / sendto on the shared bound socket until a stop is requested; adds its counters
// to the stats under `worker`.
void serve_datagrams(EngineContext& context, int worker);

}  // namespace echolab
