// iterative-udp: the lecture's UDP server. One thread in recvfrom / sendto on one socket.
// Concurrency: none, and none needed while each datagram is cheap; any service cost per
// message (--work) delays every client, and the socket buffer drops what overflows.
// Try it: echolab-server --engine iterative-udp --transport udp --protocol raw & nc -u 127.0.0.1 7007
#include "core/stop.h"
#include "servers/engines/datagram.h"
#include "servers/engines/engines.h"

namespace echolab {

void run_iterative_udp(EngineContext& context) {
  context.announce_ready();
  serve_datagrams(context, 0);
}

}  // namespace echolab
