#include "servers/readiness/loop.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/socket.h"
#include "core/stop.h"
#include "servers/connection.h"
#include "servers/readiness/work_pool.h"

namespace echolab {
namespace {

using Clock = std::chrono::steady_clock;

// How often a draining loop looks at the clock while it waits for slow readers.
constexpr std::chrono::milliseconds kDrainSlice{100};

struct Client {
  Client(Fd socket, const ProtocolConfig& protocol, Clock::time_point idle_deadline)
      : fd(std::move(socket)), session(protocol), deadline(idle_deadline) {}

  Fd fd;
  StreamSession session;
  Clock::time_point deadline;  // with --idle-timeout: closed when no progress is made by then
  std::uint64_t serial = 0;    // with a pool: tells this connection from a later one on its fd
  int worker = 0;              // with a pool: the worker that runs its jobs
  bool touched = false;        // with a pool: has replies back in the batch being applied
  bool working = false;        // with a pool: has work in flight, since working_since
  Clock::time_point working_since;
  // Nothing more is read: the peer ended its input (a half-close, as `nc -N` does), or the
  // session ended the connection (a protocol error, a stop's work cutoff). What is owed is
  // still sent, as the peer reads it, and then the connection closes.
  bool input_ended = false;
};

class ReadinessLoop {
 public:
  ReadinessLoop(EngineContext& context, Poller& poller, LoopPlace place)
      : context_(context), poller_(poller), place_(place) {}

  void run() {
    if (int err = set_nonblocking(place_.listener, true)) {
      throw sys_error("fcntl(O_NONBLOCK)", err);
    }
    watch_own(wake_fd());
    if (place_.pool != nullptr) {
      watch_own(place_.pool->wake_fd());
    }
    if (!place_.listener_watched) {
      watch_own(place_.listener);
    }
    context_.announce_ready();
    while (!stop_requested()) {
      wait_and_dispatch(timed() ? time_to_next_deadline() : std::chrono::milliseconds(-1));
    }
    stopping_ = true;
    poller_.forget(place_.listener);
    ::shutdown(place_.listener, SHUT_RD);
    // The pipe stays readable for the other loops (see wait_and_dispatch): watched while
    // draining, it would wake this loop at once, again and again, until the drain ends.
    poller_.forget(wake_fd());
    drain_before_closing();
    for (auto& client : clients_) {
      if (client) {
        close_client(*client);
      }
    }
    poller_.take_counts(counters_);
    context_.stats.add(counters_, place_.worker);
  }

 private:
  // main refuses an engine whose own descriptors are past what its registry row says it can
  // watch, before the ready line; a poller refusing one anyway still stops the loop here.
  void watch_own(int fd) {
    if (const std::error_code error = poller_.watch(fd, /*read=*/true, /*write=*/false)) {
      throw std::system_error(error, "watch descriptor " + std::to_string(fd));
    }
  }

  void wait_and_dispatch(std::chrono::milliseconds timeout) {
    poller_.wait(timeout, ready_, counters_);
    if (timed()) {
      close_idle_clients();
    }
    for (const Readiness& event : ready_) {
      if (event.fd == wake_fd()) {
        drain_wake_fd();
        // Loops of other threads may watch the same pipe: a stop must stay visible to them.
        if (stop_requested()) {
          notify_wake();
        }
      } else if (event.fd == place_.listener) {
        if (!stopping_) {
          accept_one();
        }
      } else if (Client* client = find(event.fd)) {
        settle(*client, serve(*client, event));
      } else if (place_.pool != nullptr && event.fd == place_.pool->wake_fd()) {
        apply_finished_work();
      }
    }
  }

  // After serving a client: close it (`keep` false), or watch it for what it now waits for.
  void settle(Client& client, bool keep) {
    if (!keep) {
      close_client(client);
    } else if (const std::error_code error =
                   poller_.watch(client.fd.get(), wants_read(client), client.session.has_output())) {
      ++counters_.io_errors;
      close_client(client);
    }
  }

  // One readiness event of a client; false when the connection must close now.
  bool serve(Client& client, const Readiness& event) {
    if ((event.readable || event.hangup) && wants_read(client) && !on_readable(client)) {
      return false;
    }
    if ((event.writable || event.hangup) && client.session.has_output() && !flush(client)) {
      return false;
    }
    if (client.session.has_output()) {
      return true;
    }
    if (client.input_ended && !client.session.owes_work()) {
      return false;  // all owed is sent and nothing more will be read
    }
    if (event.hangup && !wants_read(client)) {
      // Both directions are gone (a reset, or a unix peer's close): with work in flight,
      // its replies can never be sent, as the send would find (EPIPE, ECONNRESET).
      if (client.session.owes_work()) {
        ++counters_.peer_resets;
      }
      return false;
    }
    return true;
  }

  // Reactor-pool: every message completed since the last read goes to the client's worker.
  void hand_off(Client& client) {
    if (const std::size_t fresh = client.session.take_new_work(); fresh > 0) {
      if (!client.working) {
        client.working = true;
        client.working_since = Clock::now();
      }
      place_.pool->submit(client.worker, {client.fd.get(), client.serial}, fresh);
    }
  }

  // Reactor-pool: the replies the workers finished, each put in its session's output in
  // order (one worker per connection, first in first out), then each client flushed once.
  void apply_finished_work() {
    place_.pool->take_finished(finished_, counters_);
    const Clock::time_point now = Clock::now();
    for (const WorkDone& item : finished_) {
      Client* client = find(item.fd);
      if (client == nullptr || client->serial != item.serial) {
        continue;  // closed meanwhile (a reset, a hang-up): the worker counted its job
      }
      client->session.finish_work(item.done);
      if (!item.done) {
        client->input_ended = true;  // a stop cut the work off: what was done is sent, then close
      }
      if (!client->session.owes_work() && client->working) {
        // The idle clock stood still while the server worked: the peer gets back the time
        // it had left (not a fresh timeout: a raw trickler's byte is work too).
        client->working = false;
        client->deadline += now - client->working_since;
      }
      if (!client->touched) {
        client->touched = true;
        touched_.push_back(item.fd);
      }
    }
    finished_.clear();
    for (const int fd : touched_) {
      Client& client = *find(fd);  // only this loop closes clients, and not in between
      client.touched = false;
      const bool sent = flush(client);
      const bool over = !client.session.has_output() && !client.session.owes_work() && client.input_ended;
      settle(client, sent && !over);
    }
    touched_.clear();
  }

  [[nodiscard]] bool wants_read(const Client& client) const {
    return !stopping_ && !client.input_ended && client.session.wants_input();
  }

  void accept_one() {
    AcceptResult accepted = accept_connection(place_.listener, counters_, /*nonblocking=*/true);
    if (!accepted.fd) {
      // No pause: the poller reports the listener again only while a client is waiting.
      continue_after_accept_failure(accepted, /*pause=*/false);
      return;
    }
    const int fd = accepted.fd.get();
    if (!poller_.can_watch(fd) || poller_.watch(fd, /*read=*/true, /*write=*/false)) {
      // Past what the poller can watch (select: FD_SETSIZE): refused, never watched.
      ++counters_.connections_refused;
      ++counters_.connections_closed;
      return;  // accepted.fd closes it
    }
    if (static_cast<std::size_t>(fd) >= clients_.size()) {
      clients_.resize(static_cast<std::size_t>(fd) + 1);
    }
    context_.stats.connection_opened();
    auto& client = clients_[static_cast<std::size_t>(fd)];
    client = std::make_unique<Client>(std::move(accepted.fd), context_.config.protocol,
                                      Clock::now() + context_.config.idle_timeout);
    if (place_.pool != nullptr) {
      client->session.defer_work();
      client->serial = ++serial_;
      client->worker = place_.pool->bind_connection();
    }
  }

  [[nodiscard]] Client* find(int fd) const {
    return fd >= 0 && static_cast<std::size_t>(fd) < clients_.size() ? clients_[static_cast<std::size_t>(fd)].get()
                                                                      : nullptr;
  }

  // One recv per readiness, as the classic loop does; the echo is sent at once if it can be,
  // saving a wait for the common case of a reply that fits the socket buffer.
  bool on_readable(Client& client) {
    const IoResult received = receive_some(client.fd.get(), client.session.receive_buffer(), counters_);
    switch (received.status) {
      case IoStatus::ok: {
        const bool more = client.session.commit_received(received.bytes, counters_);
        if (place_.pool != nullptr) {
          hand_off(client);
        }
        if (!more) {
          client.input_ended = true;  // the frames complete before the reason are still sent
        } else if (client.session.take_progress()) {
          client.deadline = Clock::now() + context_.config.idle_timeout;
        }
        return flush(client);
      }
      case IoStatus::would_block:
        return true;
      case IoStatus::closed:
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
        return true;  // the poller tells when the peer has read some
      }
      if (sent.status != IoStatus::ok) {
        ++(sent.status == IoStatus::reset ? counters_.peer_resets : counters_.io_errors);
        return false;
      }
      client.session.commit_sent(sent.bytes, counters_);
    }
    return true;
  }

  void close_client(Client& client) {
    const int fd = client.fd.get();
    poller_.forget(fd);
    ++counters_.connections_closed;
    context_.stats.connection_closed();
    clients_[static_cast<std::size_t>(fd)].reset();
  }

  [[nodiscard]] bool timed() const { return context_.config.idle_timeout.count() > 0; }

  [[nodiscard]] std::chrono::milliseconds time_to_next_deadline() const {
    Clock::time_point next = Clock::time_point::max();
    for (const auto& client : clients_) {
      if (client && !client->session.owes_work()) {
        next = std::min(next, client->deadline);
      }
    }
    return wait_for_deadline(next);
  }

  // A client whose work is in flight is not idle: the server, not the peer, is slow.
  void close_idle_clients() {
    const Clock::time_point now = Clock::now();
    for (auto& client : clients_) {
      if (client && client->deadline <= now && !client->session.owes_work()) {
        ++counters_.idle_timeouts;
        close_client(*client);
      }
    }
  }

  // On stop: no more reading or accepting, but echoes already owed are sent, for a while.
  void drain_before_closing() {
    for (auto& client : clients_) {
      if (client && poller_.watch(client->fd.get(), false, client->session.has_output())) {
        close_client(*client);
      }
    }
    // With a pool, replies still being worked on are owed too (the pool's eventfd stays
    // watched); core/stop.h's work cutoff ends that work well before the deadline.
    const auto deadline = Clock::now() + kDrainTime;
    while (owes_output() && Clock::now() < deadline) {
      wait_and_dispatch(kDrainSlice);
    }
  }

  [[nodiscard]] bool owes_output() const {
    return std::any_of(clients_.begin(), clients_.end(), [](const auto& client) {
      return client && (client->session.has_output() || client->session.owes_work());
    });
  }

  EngineContext& context_;
  Poller& poller_;
  const LoopPlace place_;
  Counters counters_;
  std::vector<std::unique_ptr<Client>> clients_;  // indexed by descriptor
  std::vector<Readiness> ready_;
  std::vector<WorkDone> finished_;  // with a pool: reused for each batch of finished jobs
  std::vector<int> touched_;        // with a pool: clients with replies back in that batch
  std::uint64_t serial_ = 0;
  bool stopping_ = false;
};

}  // namespace

void run_readiness_loop(EngineContext& context, Poller& poller, LoopPlace place) {
  ReadinessLoop(context, poller, place).run();
}

void run_loop_threads(EngineContext& context, std::vector<LoopThread>& loops) {
  context.announce_ready();  // every loop's listener and poller exists by now
  std::vector<std::jthread> threads;
  try {
    for (LoopThread& loop : loops) {
      threads.emplace_back([&context, &loop] {
        block_stop_signals_in_this_thread();
        try {
          run_readiness_loop(context, *loop.poller, loop.place);
        } catch (const std::exception& error) {
          fail_engine(error.what());  // an exception must not leave a thread: that aborts
        }
      });
    }
  } catch (...) {
    request_stop();  // the loops already started drain and join before the error leaves
    throw;
  }
  // Joined as they return (the stop signals still run their handlers on this thread). Not
  // wait_for_stop(): it drains the wake-up pipe, and a loop that had not yet read it (a stop
  // requested by a failing loop, or a signal between its checks) would sleep on.
}

}  // namespace echolab
