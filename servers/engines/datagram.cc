#include "servers/engines/datagram.h"

#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "core/io.h"
#include "core/stop.h"

namespace echolab {

void serve_datagrams(EngineContext& context, int worker) {
  const ProtocolConfig& config = context.config.protocol;
  std::vector<std::byte> buffer(config.datagram_buffer);
  Counters counters;
  SocketAddress peer;
  // Adding to the shared stats every few thousand datagrams keeps the hot path free of
  // atomics while a long run's counters still appear if a worker is killed.
  constexpr std::uint64_t kFlushEvery = 4096;
  while (!stop_requested()) {
    const DatagramResult received = receive_datagram(context.socket, buffer, peer, counters);
    if (received.status != IoStatus::ok) {
      ++counters.io_errors;
      continue;
    }
    if (received.bytes == 0 && stop_requested()) {
      break;  // the stop handler shut the socket's read side
    }
    const std::span<const std::byte> datagram(buffer.data(), std::min(received.bytes, buffer.size()));
    if (!accept_datagram(datagram, received.truncated, config, counters)) {
      continue;
    }
    if (peer.length <= sizeof(sa_family_t)) {
      ++counters.datagrams_dropped;  // an unbound unix client: there is no address to reply to
      continue;
    }
    const IoResult sent = send_datagram(context.socket, datagram, peer, counters);
    if (sent.status == IoStatus::ok) {
      counters.bytes_out += sent.bytes;
    } else {
      ++counters.io_errors;
    }
    if (counters.syscalls[static_cast<int>(Syscall::recvfrom)] >= kFlushEvery) {
      context.stats.add(counters, worker);
      counters = Counters{};
    }
  }
  context.stats.add(counters, worker);
}

}  // namespace echolab
