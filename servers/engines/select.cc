// select: the lecture's single-threaded multiplexed server. One thread, non-blocking sockets,
// select() over the listener and every connection, with a StreamSession buffer per client.
// Concurrency: readiness multiplexing, so many clients share one thread; any service cost
// (--work) stalls them all. Limits: select() cannot watch a descriptor >= FD_SETSIZE (1024):
// such a connection is refused (closed and counted), never put in an fd_set, and the engine
// refuses to start if its own listener or wake pipe is already past it (too many inherited
// descriptors). Costs: each call scans every watched descriptor, so per-message cost grows
// with the connection count.
// Try it: echolab-server --engine select --protocol raw & nc 127.0.0.1 7007
#include <sys/select.h>

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/error.h"
#include "core/io.h"
#include "core/socket.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

using Clock = std::chrono::steady_clock;

struct Client {
  Fd fd;
  StreamSession session;
  Clock::time_point deadline;  // with --idle-timeout: closed if no message completes by then
  // The peer shut its sending side (end of input): nothing more to read, but the echo owed
  // is still sent before the connection closes.
  bool input_ended = false;
};

// FD_SET on a descriptor >= FD_SETSIZE writes past the fd_set: one the engine needs for
// itself there means it cannot run at all.
void require_watchable(int fd, const char* what) {
  if (fd >= FD_SETSIZE) {
    throw std::runtime_error("select: its " + std::string(what) + " is descriptor " + std::to_string(fd) +
                             ", but select() can only watch descriptors below FD_SETSIZE (" +
                             std::to_string(FD_SETSIZE) + "); start it with fewer open descriptors");
  }
}

class SelectLoop {
 public:
  explicit SelectLoop(EngineContext& context) : context_(context) {}

  void run() {
    require_watchable(context_.socket, "listening socket");
    require_watchable(wake_fd(), "stop wake-up pipe");
    if (int err = set_nonblocking(context_.socket, true)) {
      throw sys_error("fcntl(O_NONBLOCK)", err);
    }
    while (!stop_requested()) {
      wait_and_dispatch(/*accepting=*/true, nullptr);
    }
    drain_before_closing();
    while (!clients_.empty()) {
      close_client(clients_.begin());
    }
    context_.stats.add(counters_, 0);
  }

 private:
  using ClientMap = std::map<int, std::unique_ptr<Client>>;

  void wait_and_dispatch(bool accepting, timeval* timeout) {
    fd_set readable;
    fd_set writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    int max_fd = wake_fd();
    FD_SET(wake_fd(), &readable);
    if (accepting) {
      FD_SET(context_.socket, &readable);
      max_fd = std::max(max_fd, context_.socket);
    }
    for (const auto& [fd, client] : clients_) {
      if (accepting && !client->input_ended && client->session.wants_input()) {
        FD_SET(fd, &readable);
      }
      if (client->session.has_output()) {
        FD_SET(fd, &writable);
      }
      max_fd = std::max(max_fd, fd);
    }
    timeval until_deadline{};
    if (timeout == nullptr && timed()) {
      timeout = time_to_next_deadline(until_deadline);
    }
    counters_.count(Syscall::select);
    const int ready = ::select(max_fd + 1, &readable, &writable, nullptr, timeout);
    if (timed()) {
      close_idle_clients();
    }
    if (ready <= 0) {
      return;  // EINTR (a signal) or a timeout: the caller re-checks
    }
    if (FD_ISSET(wake_fd(), &readable)) {
      drain_wake_fd();
    }
    for (auto it = clients_.begin(); it != clients_.end();) {
      const int fd = it->first;
      if (!FD_ISSET(fd, &readable) && !FD_ISSET(fd, &writable)) {
        ++it;
        continue;
      }
      Client& client = *it->second;
      const bool keep = (!FD_ISSET(fd, &readable) || on_readable(client)) &&
                        (!FD_ISSET(fd, &writable) || flush(client)) &&
                        !(client.input_ended && !client.session.has_output());
      it = keep ? std::next(it) : close_client(it);
    }
    if (accepting && FD_ISSET(context_.socket, &readable)) {
      accept_one();
    }
  }

  void accept_one() {
    AcceptResult accepted = accept_connection(context_.socket, counters_, /*nonblocking=*/true);
    if (!accepted.fd) {
      // No pause: select reports the listener again only if a client is still waiting.
      continue_after_accept_failure(accepted, /*pause=*/false);
      return;
    }
    const int fd = accepted.fd.get();
    if (fd >= FD_SETSIZE) {
      // FD_SET on it would write past the fd_set: refuse the client instead.
      ++counters_.connections_refused;
      ++counters_.connections_closed;
      return;  // accepted.fd closes it
    }
    context_.stats.connection_opened();
    clients_.emplace(fd, std::make_unique<Client>(Client{std::move(accepted.fd),
                                                         StreamSession(context_.config.protocol),
                                                         Clock::now() + context_.config.idle_timeout}));
  }

  [[nodiscard]] bool timed() const { return context_.config.idle_timeout.count() > 0; }

  timeval* time_to_next_deadline(timeval& out) const {
    if (clients_.empty()) {
      return nullptr;
    }
    Clock::time_point next = Clock::time_point::max();
    for (const auto& [fd, client] : clients_) {
      next = std::min(next, client->deadline);
    }
    const auto left = std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(next - Clock::now()).count());
    out = timeval{static_cast<time_t>(left / 1'000'000), static_cast<suseconds_t>(left % 1'000'000)};
    return &out;
  }

  void close_idle_clients() {
    const Clock::time_point now = Clock::now();
    for (auto it = clients_.begin(); it != clients_.end();) {
      if (it->second->deadline <= now) {
        ++counters_.idle_timeouts;
        it = close_client(it);
      } else {
        ++it;
      }
    }
  }

  // One recv per readiness, as the classic loop does; the echo is sent at once if it can be,
  // saving a select round for the common case of a reply that fits the socket buffer.
  bool on_readable(Client& client) {
    const IoResult received = receive_some(client.fd.get(), client.session.receive_buffer(), counters_);
    switch (received.status) {
      case IoStatus::ok: {
        if (!client.session.commit_received(received.bytes, counters_)) {
          // A protocol error or a stop's work cutoff: the frames complete before it are still
          // sent, as the peer reads them, before the connection closes.
          client.input_ended = true;
          return flush(client);
        }
        if (client.session.take_progress()) {
          client.deadline = Clock::now() + context_.config.idle_timeout;
        }
        return flush(client);
      }
      case IoStatus::would_block:
        return true;
      case IoStatus::closed:
        // The peer may have only half-closed (nc -N, socat): it still reads, so everything
        // complete is sent before closing, as select reports room, under the idle deadline.
        client.input_ended = true;
        return flush(client);
      case IoStatus::reset:
        ++counters_.peer_resets;
        return false;
      case IoStatus::error:
        ++counters_.io_errors;
        return false;
    }
    return false;
  }

  bool flush(Client& client) {
    while (client.session.has_output()) {
      const IoResult sent = send_some(client.fd.get(), client.session.output(), counters_);
      if (sent.status == IoStatus::would_block) {
        return true;  // select tells when the peer has read some
      }
      if (sent.status != IoStatus::ok) {
        ++(sent.status == IoStatus::reset ? counters_.peer_resets : counters_.io_errors);
        return false;
      }
      client.session.commit_sent(sent.bytes, counters_);
    }
    return true;
  }

  ClientMap::iterator close_client(ClientMap::iterator it) {
    ++counters_.connections_closed;
    context_.stats.connection_closed();
    return clients_.erase(it);
  }

  // On stop: no more reading or accepting, but echoes already owed are sent, for a while.
  void drain_before_closing() {
    const auto deadline = std::chrono::steady_clock::now() + kDrainTime;
    auto owes_output = [this] {
      for (const auto& [fd, client] : clients_) {
        if (client->session.has_output()) {
          return true;
        }
      }
      return false;
    };
    while (owes_output() && std::chrono::steady_clock::now() < deadline) {
      timeval slice{0, 100'000};
      wait_and_dispatch(/*accepting=*/false, &slice);
    }
  }

  EngineContext& context_;
  Counters counters_;
  ClientMap clients_;
};

}  // namespace

void run_select(EngineContext& context) { SelectLoop(context).run(); }

}  // namespace echolab
