// udp-batch: --workers threads, each with its own SO_REUSEPORT UDP socket on the one address
// (the kernel spreads datagrams by flow hash), receiving with recvmmsg and replying with
// sendmmsg, up to --batch datagrams per call. Limits: UDP only; one busy flow stays on one
// worker; another server of the same user binding the port with SO_REUSEPORT joins the group.
// Try it: echolab-server --engine udp-batch --workers 4 --batch 64 --transport udp
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/io.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

// A worker's receive buffers are batch × --datagram-buffer; past this the batch is smaller,
// so that --batch 1024 with 16 MiB datagrams cannot ask for 16 GiB per thread.
constexpr std::size_t kBatchMemory = 64 * 1024 * 1024;

// A failure of recvmmsg that no retry can cure: the socket itself is unusable.
bool fatal_receive_error(int err) {
  return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL || err == EOPNOTSUPP;
}

// One worker's batch: buffers, addresses and headers, allocated once; the hot path only
// fills them in.
class Batch {
 public:
  Batch(std::size_t capacity, std::size_t buffer_size)
      : buffer_size_(buffer_size),
        // Not zero-filled: a page costs memory only once a datagram lands in it.
        buffers_(new std::byte[capacity * buffer_size]),
        peers_(capacity),
        received_iov_(capacity),
        reply_iov_(capacity),
        received_(capacity),
        replies_(capacity) {
    for (std::size_t i = 0; i < capacity; ++i) {
      received_iov_[i] = iovec{buffers_.get() + i * buffer_size, buffer_size};
      received_[i].msg_hdr.msg_iov = &received_iov_[i];
      received_[i].msg_hdr.msg_iovlen = 1;
      received_[i].msg_hdr.msg_name = peers_[i].get();
    }
  }

  // The headers for recvmmsg, their address lengths reset (the kernel overwrites them).
  std::span<mmsghdr> armed() {
    for (mmsghdr& message : received_) {
      message.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      message.msg_hdr.msg_flags = 0;
    }
    return received_;
  }
  [[nodiscard]] const mmsghdr& received(std::size_t i) const { return received_[i]; }
  // Writable: the protocol core may turn a datagram into its reply in place.
  [[nodiscard]] std::span<std::byte> datagram(std::size_t i) const {
    return {buffers_.get() + i * buffer_size_, std::min<std::size_t>(received_[i].msg_len, buffer_size_)};
  }
  [[nodiscard]] bool truncated(std::size_t i) const {
    return (received_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || received_[i].msg_len > buffer_size_;
  }

  // Queues received datagram i, whole, as reply number `slot` to its sender.
  void queue_reply(std::size_t slot, std::size_t i) {
    const std::span<std::byte> data = datagram(i);
    reply_iov_[slot] = iovec{data.data(), data.size()};
    msghdr& header = replies_[slot].msg_hdr;
    header = msghdr{};
    header.msg_name = peers_[i].get();
    header.msg_namelen = received_[i].msg_hdr.msg_namelen;
    header.msg_iov = &reply_iov_[slot];
    header.msg_iovlen = 1;
  }
  [[nodiscard]] std::span<mmsghdr> replies(std::size_t count) { return {replies_.data(), count}; }

 private:
  std::size_t buffer_size_;
  std::unique_ptr<std::byte[]> buffers_;
  std::vector<SocketAddress> peers_;
  std::vector<iovec> received_iov_;
  std::vector<iovec> reply_iov_;
  std::vector<mmsghdr> received_;
  std::vector<mmsghdr> replies_;
};

std::size_t batch_capacity(const ServerConfig& config) {
  const std::size_t fits = std::max<std::size_t>(1, kBatchMemory / config.protocol.datagram_buffer);
  return std::min(static_cast<std::size_t>(config.batch), fits);
}

void serve_batches(EngineContext& context, int fd, int worker) {
  const ProtocolConfig& config = context.config.protocol;
  Batch batch(batch_capacity(context.config), config.datagram_buffer);
  Counters counters;
  // Adding to the shared stats every thousand calls keeps the hot path free of atomics while
  // a long run's counters still appear.
  constexpr std::uint64_t kFlushEvery = 1024;
  // After a transient receive failure (ENOMEM...): a pause, so that one repeating at once is
  // counted a thousand times a second, not a million.
  constexpr auto kErrorPause = std::chrono::milliseconds(1);
  bool read_side_done = false;
  while (!stop_requested() && !read_side_done) {
    if (counters.syscalls[static_cast<int>(Syscall::recvmmsg)] >= kFlushEvery) {
      context.stats.add(counters, worker);
      counters = Counters{};
    }
    const BatchResult received = receive_datagram_batch(fd, batch.armed(), counters);
    if (received.status != IoStatus::ok) {
      ++counters.io_errors;
      if (fatal_receive_error(received.error)) {
        fail_engine(std::string("recvmmsg: ") + std::strerror(received.error));
        break;
      }
      std::this_thread::sleep_for(kErrorPause);
      continue;
    }
    std::size_t queued = 0;
    for (std::size_t i = 0; i < received.count; ++i) {
      const std::span<std::byte> datagram = batch.datagram(i);
      // No sender address: the end of input a shut read side returns (how a stop wakes this
      // loop), or a datagram nobody can be answered at.
      const bool addressable = batch.received(i).msg_hdr.msg_namelen > sizeof(sa_family_t);
      if (batch.received(i).msg_len == 0 && !addressable && read_side_shut(fd, counters)) {
        read_side_done = true;  // the replies already queued still go
        continue;
      }
      if (!addressable) {
        counters.bytes_in += datagram.size();
        counters.datagrams_truncated += batch.truncated(i) ? 1 : 0;
        ++counters.datagrams_dropped;
        continue;
      }
      if (accept_datagram(datagram, batch.truncated(i), config, counters)) {
        batch.queue_reply(queued++, i);
      }
    }
    if (queued > 0) {
      const BatchSendResult sent = send_datagram_batch(fd, batch.replies(queued), counters);
      counters.bytes_out += sent.bytes;
      counters.replies_dropped += sent.undelivered;  // those clients' loss only
      counters.io_errors += sent.failed;
    }
  }
  if (read_side_done && !stop_requested()) {
    fail_engine("recvmmsg: the socket's read side was shut down; no datagram can arrive");
  }
  context.stats.add(counters, worker);
}

// The workers' own sockets past the first, which the stop handler does not know: shut here
// once a stop is requested, so that every worker blocked in recvmmsg wakes up.
class SiblingSockets {
 public:
  SiblingSockets(const EngineContext& context, int count) {
    SocketOptions options = context.config.socket;
    options.reuse_port = true;
    const Endpoint bound = parse_endpoint(local_address(context.socket));
    for (int i = 0; i < count; ++i) {
      sockets_.push_back(open_listener(bound, context.config.transport, options));
    }
  }
  [[nodiscard]] int fd(int i) const { return sockets_[static_cast<std::size_t>(i)].fd(); }
  void shut_read_sides() const {
    for (const Listener& socket : sockets_) {
      ::shutdown(socket.fd(), SHUT_RD);
    }
  }

 private:
  std::vector<Listener> sockets_;
};

}  // namespace

void run_udp_batch(EngineContext& context) {
  const SiblingSockets siblings(context, context.config.workers - 1);
  context.announce_ready();
  std::vector<std::jthread> pool;
  // Declared after the pool, so destroyed before it joins: on every way out.
  struct ShutOnExit {
    const SiblingSockets& siblings;
    ~ShutOnExit() { siblings.shut_read_sides(); }
  } shut_on_exit{siblings};
  try {
    for (int worker = 0; worker < context.config.workers; ++worker) {
      const int fd = worker == 0 ? context.socket : siblings.fd(worker - 1);
      pool.emplace_back([&context, fd, worker] {
        block_stop_signals_in_this_thread();
        serve_batches(context, fd, worker);
      });
    }
  } catch (...) {
    request_stop();  // let the threads already started finish before the error leaves
    throw;
  }
  // The stop handler shuts the listener's read side; the siblings are shut on the way out.
  wait_for_stop();
}

}  // namespace echolab
