#include "servers/engines/datagram.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/io.h"
#include "core/stop.h"
#include "servers/connection.h"

namespace echolab {
namespace {

// A failure of recvfrom that no retry can cure: the socket itself is unusable.
bool fatal_receive_error(int err) {
  return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL || err == EOPNOTSUPP;
}

}  // namespace

void serve_datagrams(EngineContext& context, int worker) {
  const ProtocolConfig& config = context.config.protocol;
  std::vector<std::byte> buffer(config.datagram_buffer);
  Counters counters;
  SocketAddress peer;
  // Adding to the shared stats every few thousand datagrams keeps the hot path free of
  // atomics while a long run's counters still appear if a worker is killed.
  constexpr std::uint64_t kFlushEvery = 4096;
  // After a transient receive failure (ENOMEM...): a pause, so that one repeating at once
  // is counted a thousand times a second, not a million.
  constexpr auto kErrorPause = std::chrono::milliseconds(1);
  while (!stop_requested()) {
    if (counters.syscalls[static_cast<int>(Syscall::recvfrom)] >= kFlushEvery) {
      context.stats.add(counters, worker);
      counters = Counters{};
    }
    const DatagramResult received = receive_datagram(context.socket, buffer, peer, counters);
    if (received.status != IoStatus::ok) {
      ++counters.io_errors;
      if (fatal_receive_error(received.error)) {
        fail_engine(std::string("recvfrom: ") + std::strerror(received.error));
        break;
      }
      std::this_thread::sleep_for(kErrorPause);
      continue;
    }
    // An unbound unix client has no address; neither has the end of input that recvfrom
    // returns, forever, once the socket's read side is shut (how a stop wakes this loop).
    const bool addressable = peer.length > sizeof(sa_family_t);
    if (received.bytes == 0 && !addressable && read_side_shut(context.socket, counters)) {
      if (!stop_requested()) {
        fail_engine("recvfrom: the socket's read side was shut down; no datagram can arrive");
      }
      break;
    }
    const std::span<std::byte> datagram(buffer.data(), std::min(received.bytes, buffer.size()));
    if (!addressable) {
      // No address to reply to: dropped before it counts as a message or costs its work.
      counters.bytes_in += datagram.size();
      counters.datagrams_truncated += received.truncated ? 1 : 0;
      ++counters.datagrams_dropped;
      continue;
    }
    if (!accept_datagram(datagram, received.truncated, config, counters)) {
      continue;
    }
    const IoResult sent = send_datagram(context.socket, datagram, peer, counters);
    if (sent.status == IoStatus::ok) {
      counters.bytes_out += sent.bytes;
    } else if (undeliverable(sent.error)) {
      ++counters.replies_dropped;  // that client's loss only: the next datagram is served
    } else {
      ++counters.io_errors;
    }
  }
  context.stats.add(counters, worker);
}

}  // namespace echolab
