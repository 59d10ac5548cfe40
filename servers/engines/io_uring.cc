// io-uring: --workers threads, each its own io_uring and (tcp) its own SO_REUSEPORT listener.
// Completions, not readiness: one multishot accept per ring hands over new connections, one
// multishot recv per connection fills buffers the kernel picks from a provided buffer ring,
// and each send is submitted from the session's output; a loop enters the kernel once per
// batch of completions, to submit and wait in the same call (io_uring_enter). A poll for the
// peer's end switches a connection to one-shot recvs (see Client::one_shot), as does
// back-pressure, which cancels its multishot recv.
// Limits: Linux 6.0 (multishot recv, buffer rings) unless seccomp forbids io_uring; received
// bytes are copied once from the ring's buffers into the session; an LD_PRELOAD shim on libc's
// send/recv sees none of its socket I/O. Shares and the reset-at-close of a listener's queue
// are those of epoll-reuseport; unix-stream loops share main's one listener.
// Try it: echolab-server --engine io-uring --workers 1 --protocol raw & nc 127.0.0.1 7007
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <latch>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/socket.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kSubmissionEntries = 1024;
constexpr unsigned kCompletionEntries = 8192;  // multishot requests post many completions
// The provided buffers: any connection's recv takes the next free one. Many small buffers,
// since a 64-byte message takes a whole one until its completion is handled and it returns.
constexpr unsigned kBufferCount = 256;  // a power of two, as the ring requires
constexpr std::size_t kBufferSize = 4096;
constexpr int kBufferGroup = 0;
// Bytes a connection may hold received but not yet in its session (they arrive while a
// send from the session is in flight): past this, its recv is cancelled until they are in.
constexpr std::size_t kPendingLimit = 64 * 1024;
// Spare pending blocks a loop keeps for reuse (1 MiB): enough for the bursts of a few
// connections under back-pressure, without holding a past peak's worth forever.
constexpr std::size_t kSpareBlocks = 256;
constexpr int kAcceptBurst = 16;  // accepts per wake-up of a polled listener
constexpr std::chrono::milliseconds kDrainSlice{100};
constexpr std::chrono::seconds kCancelWait{1};  // for cancelled requests to complete at the end

// user_data: a Client's address with the operation in its low bits, or one of these tags.
enum Tag : std::uint64_t { kIgnore = 0, kAccept = 1, kListenerPoll = 2, kWakePoll = 3 };
constexpr std::uint64_t kRecvOp = 1;
constexpr std::uint64_t kSendOp = 2;
constexpr std::uint64_t kEndOp = 3;
constexpr std::uint64_t kOpMask = 7;

// Blocks of kBufferSize bytes that a loop hands to its connections' pending input and takes
// back once it is fed in: a connection's pending memory follows what it holds, with no
// reallocation copies (a growing vector keeps up to twice its need, and the old copies).
class BlockPool {
 public:
  std::unique_ptr<std::byte[]> take() {
    if (spare_.empty()) {
      return std::make_unique_for_overwrite<std::byte[]>(kBufferSize);
    }
    auto block = std::move(spare_.back());
    spare_.pop_back();
    return block;
  }
  void give_back(std::unique_ptr<std::byte[]> block) {
    if (spare_.size() < kSpareBlocks) {
      spare_.push_back(std::move(block));
    }
  }

 private:
  std::vector<std::unique_ptr<std::byte[]>> spare_;
};

// Bytes received but not yet taken by the session, in order, in blocks from a BlockPool.
class PendingInput {
 public:
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t size() const { return size_; }

  void append(std::span<const std::byte> data, BlockPool& pool) {
    while (!data.empty()) {
      if (blocks_.empty() || blocks_.back().end == kBufferSize) {
        blocks_.push_back(Block{pool.take(), 0, 0});
      }
      Block& last = blocks_.back();
      const std::size_t n = std::min(data.size(), kBufferSize - last.end);
      std::memcpy(last.bytes.get() + last.end, data.data(), n);
      last.end += n;
      size_ += n;
      data = data.subspan(n);
    }
  }

  // The oldest contiguous run of pending bytes; empty when nothing is pending.
  [[nodiscard]] std::span<const std::byte> front() const {
    if (blocks_.empty()) {
      return {};
    }
    const Block& first = blocks_.front();
    return {first.bytes.get() + first.begin, first.end - first.begin};
  }

  // Drops `n` bytes (at most front().size()) from the front.
  void consume(std::size_t n, BlockPool& pool) {
    Block& first = blocks_.front();
    first.begin += n;
    size_ -= n;
    if (first.begin == first.end) {
      pool.give_back(std::move(first.bytes));
      blocks_.erase(blocks_.begin());
    }
  }

  void clear(BlockPool& pool) {
    for (Block& block : blocks_) {
      pool.give_back(std::move(block.bytes));
    }
    blocks_.clear();
    size_ = 0;
  }

 private:
  struct Block {
    std::unique_ptr<std::byte[]> bytes;
    std::size_t begin;
    std::size_t end;
  };
  std::vector<Block> blocks_;
  std::size_t size_ = 0;
};

struct Client {
  Client(Fd socket, const ProtocolConfig& protocol, Clock::time_point idle_deadline)
      : fd(std::move(socket)), session(protocol), deadline(idle_deadline) {}

  Fd fd;
  StreamSession session;
  Clock::time_point deadline;
  // Received while a send from the session's buffer was in flight (the session may move its
  // buffer as it receives) or while the session wanted no input; fed in before anything else.
  PendingInput pending;
  bool receiving = false;     // a multishot recv is armed, until a completion without F_MORE
  bool recv_cancelled = false;
  // One recv at a time instead of a multishot one, once back-pressure cancelled it or the
  // peer's end (FIN or RST) was seen: on Linux 6.18 a multishot recv was seen to miss an end
  // that came right after data (or after such a cancel) and wait forever, keeping the
  // connection open. A one-shot recv always reads what is left, then the end.
  bool one_shot = false;
  bool watching_end = false;  // a poll for the peer's end (POLLRDHUP, POLLHUP, POLLERR) is armed
  bool sending = false;       // a send from session.output() is in flight
  bool peer_done = false;     // the peer ended its input (recv returned 0)
  bool session_done = false;  // commit_received said close (protocol error, work cutoff)
  bool closing = false;       // its requests are being cancelled; freed once they complete
};

std::uint64_t tag_of(Client& client, std::uint64_t op) { return reinterpret_cast<std::uintptr_t>(&client) | op; }

// A ring of `entries` provided buffers (none added yet), registered with `ring` as
// kBufferGroup; mmap'd, since the kernel wants it page-aligned. Returns it, or nullptr and
// the error (a negative errno) in `error`. Free with unmap_buffer_ring.
io_uring_buf_ring* map_buffer_ring(io_uring& ring, unsigned entries, int& error) {
  void* mapped = ::mmap(nullptr, entries * sizeof(io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
                        -1, 0);
  if (mapped == MAP_FAILED) {
    error = -errno;
    return nullptr;
  }
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uintptr_t>(mapped);
  registration.ring_entries = entries;
  registration.bgid = kBufferGroup;
  error = io_uring_register_buf_ring(&ring, &registration, 0);
  if (error < 0) {
    ::munmap(mapped, entries * sizeof(io_uring_buf));
    return nullptr;
  }
  return static_cast<io_uring_buf_ring*>(mapped);
}

void unmap_buffer_ring(io_uring_buf_ring* buffers, unsigned entries) {
  if (buffers != nullptr) {
    ::munmap(buffers, entries * sizeof(io_uring_buf));
  }
}

class UringLoop {
 public:
  // Creates the ring and registers its buffers; throws std::system_error naming the call.
  UringLoop(EngineContext& context, int listener, int worker)
      : context_(context), listener_(listener), worker_(worker) {
    io_uring_params params{};
    // One thread submits and reaps (SINGLE_ISSUER), and completions are processed only when
    // it waits for them (DEFER_TASKRUN, Linux 6.1): no interrupting task work mid-batch.
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    params.cq_entries = kCompletionEntries;
    int result = io_uring_queue_init_params(kSubmissionEntries, &ring_, &params);
    if (result == -EINVAL) {  // an older kernel: the same loop without those two hints
      params = io_uring_params{};
      params.flags = IORING_SETUP_CQSIZE;
      params.cq_entries = kCompletionEntries;
      result = io_uring_queue_init_params(kSubmissionEntries, &ring_, &params);
    }
    if (result < 0) {
      throw sys_error("io_uring_queue_init", -result);
    }
    int error = 0;
    buffer_ring_ = map_buffer_ring(ring_, kBufferCount, error);
    if (buffer_ring_ == nullptr) {
      io_uring_queue_exit(&ring_);  // no destructor runs for a constructor that throws
      throw sys_error("io_uring_register_buf_ring", -error);
    }
    ring_ready_ = true;
    // Zeroed, so every page is touched now: the buffers are a fixed cost of the ring, paid at
    // start, not memory that seems to grow with the first connections that fill them.
    buffers_ = std::make_unique<std::byte[]>(kBufferCount * kBufferSize);
    io_uring_buf_ring_init(buffer_ring_);
    for (unsigned id = 0; id < kBufferCount; ++id) {
      io_uring_buf_ring_add(buffer_ring_, buffers_.get() + id * kBufferSize, kBufferSize, static_cast<unsigned short>(id),
                            io_uring_buf_ring_mask(kBufferCount), static_cast<int>(id));
    }
    io_uring_buf_ring_advance(buffer_ring_, kBufferCount);
  }

  ~UringLoop() {
    if (ring_ready_) {
      io_uring_queue_exit(&ring_);  // cancels whatever the bounded wait at the end left
    }
    unmap_buffer_ring(buffer_ring_, kBufferCount);
  }
  UringLoop(const UringLoop&) = delete;
  UringLoop& operator=(const UringLoop&) = delete;

  void run() {
    // Verbose: accept(2) itself, which gives each peer's address even for a client that reset.
    polling_listener_ = connection_logging();
    arm_listener();
    arm_wake_poll();
    while (!stop_requested()) {
      wait_and_dispatch(timed() ? time_to_next_deadline() : std::chrono::milliseconds(-1));
    }
    stopping_ = true;
    ::shutdown(listener_, SHUT_RD);  // as the stop handler does main's: refuse, not queue
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_cancel_fd(sqe, listener_, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(sqe, kIgnore);
    }
    for (auto& client : clients_) {
      if (client) {
        stop_receiving(*client);
      }
    }
    const auto deadline = Clock::now() + kDrainTime;
    while (owes_output() && Clock::now() < deadline) {
      wait_and_dispatch(kDrainSlice);
    }
    for (auto& client : clients_) {
      if (client) {
        close_client(*client);
        settle(*client);
      }
    }
    const auto cancel_deadline = Clock::now() + kCancelWait;
    while (live_clients_ > 0 && Clock::now() < cancel_deadline) {
      wait_and_dispatch(kDrainSlice);
    }
    context_.stats.add(counters_, worker_);
  }

 private:
  // The next submission entry; when the queue is full, what it holds is submitted first.
  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      counters_.count(Syscall::io_uring_enter);
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    if (sqe == nullptr) {
      fail_engine("io_uring: no submission entry free after a submit");
    }
    return sqe;
  }

  void arm_listener() {
    if (io_uring_sqe* sqe = next_sqe()) {
      if (polling_listener_) {
        io_uring_prep_poll_add(sqe, listener_, POLLIN);
        io_uring_sqe_set_data64(sqe, kListenerPoll);
      } else {
        io_uring_prep_multishot_accept(sqe, listener_, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(sqe, kAccept);
      }
    }
  }

  // The stop's wake-up pipe, shared with the other loops: read when readable, never drained
  // empty of a stop (see on_wake).
  void arm_wake_poll() {
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_poll_add(sqe, wake_fd(), POLLIN);
      io_uring_sqe_set_data64(sqe, kWakePoll);
    }
  }

  // Submits what was queued and waits for at least one completion (or the timeout), then
  // handles every completion there is: one io_uring_enter per batch.
  void wait_and_dispatch(std::chrono::milliseconds timeout) {
    counters_.count(Syscall::io_uring_enter);
    io_uring_cqe* first = nullptr;
    int result = 0;
    if (timeout.count() < 0) {
      result = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec wait{timeout.count() / 1000, (timeout.count() % 1000) * 1'000'000};
      result = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &wait, nullptr);
    }
    // A signal (EINTR), the timeout (ETIME) or a passing shortage (EAGAIN, EBUSY: completions
    // must be reaped first) ends this wait only; anything else would fail every later one.
    if (result < 0 && result != -EINTR && result != -ETIME && result != -EAGAIN && result != -EBUSY &&
        !engine_failed()) {
      fail_engine(describe_errno("io_uring_enter", -result));
    }
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      dispatch(*cqe);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    if (timed()) {
      close_idle_clients();
    }
  }

  void dispatch(const io_uring_cqe& cqe) {
    const std::uint64_t data = io_uring_cqe_get_data64(&cqe);
    switch (data) {
      case kIgnore:
        return;
      case kAccept:
        on_accept(cqe);
        return;
      case kListenerPoll:
        on_listener_readable();
        return;
      case kWakePoll:
        on_wake();
        return;
      default:
        break;
    }
    Client& client = *reinterpret_cast<Client*>(data & ~kOpMask);
    if ((data & kOpMask) == kEndOp) {
      on_peer_end(client);
    } else if ((data & kOpMask) == kRecvOp) {
      on_received(client, cqe);
    } else {
      on_sent(client, cqe.res);
    }
    settle(client);
  }

  void on_wake() {
    drain_wake_fd();
    if (stop_requested()) {
      notify_wake();  // the other loops watch the same pipe: the stop must stay visible
    } else {
      arm_wake_poll();
    }
  }

  void on_accept(const io_uring_cqe& cqe) {
    if (cqe.res >= 0) {
      if (stopping_ || stop_requested()) {
        // Accepted as the stop came: closed unanswered and counted refused, as accept_connection does.
        ::close(cqe.res);
        ++counters_.connections_refused;
      } else {
        ++counters_.connections_accepted;
        add_client(Fd(cqe.res));
      }
      if ((cqe.flags & IORING_CQE_F_MORE) == 0 && !stopping_) {
        arm_listener();  // the kernel ended the multishot (its completion queue overflowed)
      }
      return;
    }
    if (stopping_ || stop_requested()) {
      return;  // the listener was shut down or the accept cancelled: the stop
    }
    if (cqe.res != -EAGAIN && cqe.res != -EINTR && cqe.res != -ECANCELED) {
      ++counters_.accept_errors;
    }
    // Out of descriptors (EMFILE), or any other failure: the kernel's accept takes a
    // descriptor before it looks for a client, so re-arming it would fail again at once, a
    // spin. Poll the listener instead; accept_connection then refuses a waiting client with
    // the spare descriptor, or fails the engine if the listener is broken.
    polling_listener_ = true;
    arm_listener();
  }

  void on_listener_readable() {
    if (stopping_ || stop_requested()) {
      return;
    }
    bool accepted_one = false;
    for (int i = 0; i < kAcceptBurst; ++i) {
      AcceptResult accepted = accept_connection(listener_, counters_);
      if (!accepted.fd) {
        if (!continue_after_accept_failure(accepted, /*pause=*/false)) {
          return;  // a stop, or a broken listener (the engine failed)
        }
        break;
      }
      accepted_one = true;
      add_client(std::move(accepted.fd));
    }
    // A connection taken means descriptors are free again: back to the multishot accept.
    if (accepted_one && !connection_logging()) {
      polling_listener_ = false;
    }
    arm_listener();
  }

  void add_client(Fd fd) {
    const auto index = static_cast<std::size_t>(fd.get());
    if (index >= clients_.size()) {
      clients_.resize(index + 1);
    }
    context_.stats.connection_opened();
    ++live_clients_;
    clients_[index] = std::make_unique<Client>(std::move(fd), context_.config.protocol,
                                               Clock::now() + context_.config.idle_timeout);
    Client& client = *clients_[index];
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_poll_add(sqe, client.fd.get(), POLLRDHUP);
      io_uring_sqe_set_data64(sqe, tag_of(client, kEndOp));
      client.watching_end = true;
    }
    settle(client);
  }

  void on_received(Client& client, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
      client.receiving = false;  // ended: by the peer, an error, -ENOBUFS or our cancel
      client.recv_cancelled = false;
    }
    if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
      const unsigned id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
      std::byte* buffer = buffers_.get() + static_cast<std::size_t>(id) * kBufferSize;
      if (cqe.res > 0 && !client.closing) {
        absorb(client, std::span<const std::byte>(buffer, static_cast<std::size_t>(cqe.res)));
      }
      io_uring_buf_ring_add(buffer_ring_, buffer, kBufferSize, static_cast<unsigned short>(id),
                            io_uring_buf_ring_mask(kBufferCount), 0);
      io_uring_buf_ring_advance(buffer_ring_, 1);
    }
    if (cqe.res == 0) {
      client.peer_done = true;
    } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED && !client.closing) {
      // -ENOBUFS: every buffer was taken; they are back once this batch is handled, and
      // settle() re-arms the recv. Anything else ends the connection.
      fail_client(client, cqe.res);
    }
  }

  // The peer ended its input or reset: what it sent before is read by one-shot recvs, which
  // then see the end (see Client::one_shot).
  void on_peer_end(Client& client) {
    client.watching_end = false;
    if (!client.closing) {
      client.one_shot = true;
      stop_receiving(client);
    }  // settle() arms a one-shot recv once the multishot one has ended
  }

  void on_sent(Client& client, int result) {
    client.sending = false;
    if (result > 0) {
      // Short or whole: what was not sent stays at the front of output() for the next send.
      client.session.commit_sent(static_cast<std::size_t>(result), counters_);
    } else if (result < 0 && result != -ECANCELED && !client.closing) {
      fail_client(client, result);
    }
  }

  // A recv or send failed (a negative errno): counted as core/io.cc classifies it, then closed.
  void fail_client(Client& client, int result) {
    ++(result == -ECONNRESET || result == -EPIPE || result == -ETIMEDOUT || result == -ENOTCONN
           ? counters_.peer_resets
           : counters_.io_errors);
    close_client(client);
  }

  // Received bytes: into the session if it may take them now, else kept in `pending`.
  void absorb(Client& client, std::span<const std::byte> data) {
    if (client.session_done) {
      return;  // nothing more is read after a protocol error: dropped, as unread bytes are
    }
    if (!client.sending && client.pending.empty()) {
      data = data.subspan(feed(client, data));
    }
    client.pending.append(data, spare_blocks_);
    if (client.pending.size() >= kPendingLimit || client.session_done) {
      stop_receiving(client);
    }
  }

  // Copies as much of `data` into the session as it takes; returns how much it took.
  std::size_t feed(Client& client, std::span<const std::byte> data) {
    std::size_t taken = 0;
    while (taken < data.size() && !client.session_done && client.session.wants_input()) {
      const std::span<std::byte> room = client.session.receive_buffer();
      const std::size_t n = std::min(room.size(), data.size() - taken);
      std::memcpy(room.data(), data.data() + taken, n);
      taken += n;
      if (!client.session.commit_received(n, counters_)) {
        client.session_done = true;  // the frames complete before the reason are still sent
        client.pending.clear(spare_blocks_);
        return data.size();
      }
      if (client.session.take_progress()) {
        client.deadline = Clock::now() + context_.config.idle_timeout;
      }
    }
    return taken;
  }

  // After any event of a client: move it on, then free it if it is closing and the kernel
  // has given back its last request.
  void settle(Client& client) {
    if (!client.closing) {
      advance(client);
    }
    if (client.closing && !client.receiving && !client.sending && !client.watching_end) {
      free_client(client);
    }
  }

  // Feeds what is pending, sends what is owed, closes once done, and keeps a recv armed while
  // the session wants input.
  void advance(Client& client) {
    while (!client.sending && !client.pending.empty() && !client.session_done) {
      const std::span<const std::byte> oldest = client.pending.front();
      const std::size_t taken = feed(client, oldest);
      if (client.session_done) {
        break;  // feed() has dropped what was pending
      }
      client.pending.consume(taken, spare_blocks_);
      if (taken < oldest.size()) {
        break;  // the session takes no more for now
      }
    }
    if (!client.sending && client.session.has_output()) {
      start_send(client);
    }
    if (client.sending || client.session.has_output()) {
      if (!client.session.wants_input()) {
        stop_receiving(client);  // over the output cap: TCP back-pressure, not memory
      }
    } else if (client.session_done || (client.peer_done && client.pending.empty())) {
      close_client(client);  // all owed is sent and nothing more will be read
      return;
    }
    if (!client.receiving && !stopping_ && !client.peer_done && !client.session_done && client.pending.empty() &&
        client.session.wants_input()) {
      arm_recv(client);
    }
  }

  void arm_recv(Client& client) {
    if (io_uring_sqe* sqe = next_sqe()) {
      if (client.one_shot) {
        io_uring_prep_recv(sqe, client.fd.get(), nullptr, 0, 0);
      } else {
        io_uring_prep_recv_multishot(sqe, client.fd.get(), nullptr, 0, 0);
      }
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufferGroup;
      io_uring_sqe_set_data64(sqe, tag_of(client, kRecvOp));
      client.receiving = true;
    }
  }

  void stop_receiving(Client& client) {
    if (client.receiving && !client.recv_cancelled) {
      if (io_uring_sqe* sqe = next_sqe()) {
        io_uring_prep_cancel64(sqe, tag_of(client, kRecvOp), 0);
        io_uring_sqe_set_data64(sqe, kIgnore);
        client.recv_cancelled = true;
        client.one_shot = true;
      }
    }
  }

  void start_send(Client& client) {
    const std::span<const std::byte> output = client.session.output();
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_send(sqe, client.fd.get(), output.data(), std::min<std::size_t>(output.size(), 1u << 30),
                         MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, tag_of(client, kSendOp));
      client.sending = true;
    }
  }

  // Marks the client closing and cancels its requests; settle() frees it (closing its
  // descriptor) once none is left, since until then the kernel may still use its buffers.
  void close_client(Client& client) {
    if (client.closing) {
      return;
    }
    client.closing = true;
    if (client.receiving || client.sending || client.watching_end) {
      if (io_uring_sqe* sqe = next_sqe()) {
        io_uring_prep_cancel_fd(sqe, client.fd.get(), IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, kIgnore);
      }
    }
  }

  void free_client(Client& client) {
    ++counters_.connections_closed;
    context_.stats.connection_closed();
    --live_clients_;
    clients_[static_cast<std::size_t>(client.fd.get())].reset();
  }

  [[nodiscard]] bool timed() const { return context_.config.idle_timeout.count() > 0; }

  [[nodiscard]] std::chrono::milliseconds time_to_next_deadline() const {
    Clock::time_point next = Clock::time_point::max();
    for (const auto& client : clients_) {
      if (client && !client->closing) {
        next = std::min(next, client->deadline);
      }
    }
    return wait_for_deadline(next);
  }

  void close_idle_clients() {
    const Clock::time_point now = Clock::now();
    for (auto& client : clients_) {
      if (client && !client->closing && client->deadline <= now) {
        ++counters_.idle_timeouts;
        close_client(*client);
        settle(*client);
      }
    }
  }

  [[nodiscard]] bool owes_output() const {
    return std::any_of(clients_.begin(), clients_.end(), [](const auto& client) {
      return client && !client->closing && (client->sending || client->session.has_output());
    });
  }

  EngineContext& context_;
  const int listener_;
  const int worker_;
  io_uring ring_{};
  bool ring_ready_ = false;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  std::unique_ptr<std::byte[]> buffers_;
  BlockPool spare_blocks_;
  Counters counters_;
  std::vector<std::unique_ptr<Client>> clients_;  // indexed by descriptor
  std::size_t live_clients_ = 0;
  bool polling_listener_ = false;  // accept(2) on POLLIN instead of the multishot accept
  bool stopping_ = false;
};

}  // namespace

bool io_uring_available() {
  io_uring ring{};
  if (io_uring_queue_init(4, &ring, 0) != 0) {
    return false;  // no io_uring, or a seccomp policy forbids it
  }
  // Multishot recv came with Linux 6.0, as did IORING_OP_SEND_ZC, which a probe can see;
  // provided buffer rings (5.19) are tried for real.
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  const bool new_enough = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
  io_uring_free_probe(probe);
  int error = 0;
  io_uring_buf_ring* buffers = new_enough ? map_buffer_ring(ring, 4, error) : nullptr;
  io_uring_queue_exit(&ring);
  unmap_buffer_ring(buffers, 4);
  return buffers != nullptr;
}

void run_io_uring(EngineContext& context) {
  // Tcp: worker 0 accepts on main's listener (opened with SO_REUSEPORT, as the row says), the
  // others on listeners bound beside it. A unix socket cannot share its path: every loop's
  // multishot accept waits on main's listener, and the kernel gives each client to one.
  SocketOptions options = context.config.socket;
  options.reuse_port = true;
  const int workers = context.config.workers;
  std::vector<Fd> listeners;  // outlive the loops: declared before them
  std::vector<int> places;
  for (int worker = 0; worker < workers; ++worker) {
    int listener = context.socket;
    if (worker > 0 && context.config.transport == Transport::tcp) {
      listeners.push_back(open_listener_beside(context.socket, options));
      listener = listeners.back().get();
    }
    // accept_connection (a verbose server, or one out of descriptors) must never block.
    if (const int err = set_nonblocking(listener, true)) {
      throw sys_error("fcntl(O_NONBLOCK)", err);
    }
    places.push_back(listener);
  }
  // Each ring is made by the thread that uses it (SINGLE_ISSUER ties it to its creator); the
  // ready line waits until every one exists, and a ring that cannot be made fails the start.
  std::latch made(workers);
  std::vector<std::exception_ptr> setup_errors(static_cast<std::size_t>(workers));
  std::vector<std::jthread> threads;
  try {
    for (int worker = 0; worker < workers; ++worker) {
      threads.emplace_back([&, worker] {
        block_stop_signals_in_this_thread();
        std::unique_ptr<UringLoop> loop;
        try {
          loop = std::make_unique<UringLoop>(context, places[static_cast<std::size_t>(worker)], worker);
        } catch (...) {
          setup_errors[static_cast<std::size_t>(worker)] = std::current_exception();
          made.count_down();
          return;
        }
        made.count_down();
        try {
          loop->run();
        } catch (const std::exception& error) {
          fail_engine(error.what());  // an exception must not leave a thread: that aborts
        }
      });
    }
  } catch (...) {
    request_stop();  // the loops already started stop and join before the error leaves
    throw;
  }
  made.wait();
  for (const std::exception_ptr& error : setup_errors) {
    if (error) {
      request_stop();
      threads.clear();  // joins them
      std::rethrow_exception(error);
    }
  }
  context.announce_ready();
}

}  // namespace echolab
