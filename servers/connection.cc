#include "servers/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "core/error.h"
#include "core/io.h"
#include "core/stop.h"

namespace echolab {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_engine_failed{false};

// With --idle-timeout, every blocking recv and send gets the time left until the
// connection's deadline (SO_RCVTIMEO / SO_SNDTIMEO), so that a peer trickling a byte now and
// then cannot hold a worker forever: only progress as the session defines it
// (StreamSession::take_progress) moves the deadline. Two extra system calls per recv, paid
// only when the option is on.
bool arm_deadline(int fd, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() <= 0) {
    return false;
  }
  const timeval limit{static_cast<time_t>(left.count() / 1'000'000),
                      static_cast<suseconds_t>(left.count() % 1'000'000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  return true;
}

// Sends the session's ready output; false when the connection must close (counted).
bool flush_output(int fd, StreamSession& session, Counters& counters) {
  const IoResult sent = send_all(fd, session.output(), counters);
  session.commit_sent(sent.bytes, counters);
  switch (sent.status) {
    case IoStatus::ok:
      return true;
    case IoStatus::would_block:
      ++counters.idle_timeouts;  // SO_SNDTIMEO: the peer stopped reading its echoes
      return false;
    case IoStatus::reset:
      ++counters.peer_resets;
      return false;
    default:
      ++counters.io_errors;
      return false;
  }
}

void echo_until_done(int fd, const ServerConfig& config, Counters& counters) {
  StreamSession session(config.protocol);
  const bool timed = config.idle_timeout.count() > 0;
  Clock::time_point deadline = Clock::now() + config.idle_timeout;
  for (;;) {
    if (timed && !arm_deadline(fd, deadline)) {
      ++counters.idle_timeouts;
      return;
    }
    if (session.has_output() && !flush_output(fd, session, counters)) {
      return;
    }
    if (stop_requested()) {
      return;
    }
    const IoResult received = receive_some(fd, session.receive_buffer(), counters);
    switch (received.status) {
      case IoStatus::ok:
        if (!session.commit_received(received.bytes, counters)) {
          // A protocol error or a stop's work cutoff (counted by the session): the frames
          // complete before it are still answered, then this connection only is closed.
          if (session.has_output()) {
            flush_output(fd, session, counters);
          }
          return;
        }
        if (timed && session.take_progress()) {
          deadline = Clock::now() + config.idle_timeout;
        }
        break;
      case IoStatus::closed:
        // The peer is done sending (or a stop shut our read side): answer what is complete.
        if (session.has_output()) {
          flush_output(fd, session, counters);
        }
        return;
      case IoStatus::would_block:
        ++counters.idle_timeouts;  // SO_RCVTIMEO fired: no message completed in time
        return;
      case IoStatus::reset:
        ++counters.peer_resets;
        return;
      case IoStatus::error:
        ++counters.io_errors;
        return;
    }
  }
}

}  // namespace

void fail_engine(const std::string& what) {
  const std::string line = "echolab-server: " + what + "\n";
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  g_engine_failed.store(true);
  request_stop();
}

bool engine_failed() { return g_engine_failed.load(); }

void ConnectionRegistry::add(int fd) {
  std::lock_guard lock(mutex_);
  fds_.insert(fd);
  if (stopping_) {
    ::shutdown(fd, SHUT_RD);
  }
}

void ConnectionRegistry::remove(int fd) {
  std::lock_guard lock(mutex_);
  fds_.erase(fd);
  if (fds_.empty()) {
    emptied_.notify_all();
  }
}

void ConnectionRegistry::shut_down_all(int how) {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (int fd : fds_) {
    ::shutdown(fd, how);
  }
}

void ConnectionRegistry::stop_all() {
  shut_down_all(SHUT_RD);
  {
    std::unique_lock lock(mutex_);
    emptied_.wait_for(lock, kDrainTime, [this] { return fds_.empty(); });
  }
  shut_down_all(SHUT_RDWR);
}

void serve_connection(Fd connection, EngineContext& context, Counters& counters,
                      ConnectionRegistry* registry) {
  const int fd = connection.get();
  context.stats.connection_opened();
  if (registry != nullptr) {
    registry->add(fd);
  } else {
    watch_for_stop(StopSlot::connection, fd);
  }
  echo_until_done(fd, context.config, counters);
  if (registry != nullptr) {
    registry->remove(fd);
  } else {
    watch_for_stop(StopSlot::connection, -1);
  }
  connection.reset();
  ++counters.connections_closed;
  context.stats.connection_closed();
}

void wait_for_stop() {
  while (!stop_requested()) {
    pollfd waiter{wake_fd(), POLLIN, 0};
    if (::poll(&waiter, 1, -1) > 0) {
      drain_wake_fd();
    }
  }
}

bool continue_after_accept_failure(const AcceptResult& result, bool pause) {
  // EINVAL: the listener was shut down (or, in a prefork worker, replaced), which only this
  // process's own stop does. Without a stop it is a broken listener, and fatal.
  if (stop_requested()) {
    return false;
  }
  if (result.fatal) {
    fail_engine(describe_errno("accept", result.error));
    return false;
  }
  if (pause && (result.error == EMFILE || result.error == ENFILE || result.error == ENOBUFS ||
                result.error == ENOMEM)) {
    // Out of a resource: back off briefly instead of spinning on a backlog we cannot take.
    const timespec backoff{0, 10'000'000};
    ::nanosleep(&backoff, nullptr);
  }
  return true;
}

std::chrono::milliseconds wait_for_deadline(std::chrono::steady_clock::time_point deadline) {
  if (deadline == std::chrono::steady_clock::time_point::max()) {
    return std::chrono::milliseconds(-1);
  }
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(std::chrono::milliseconds(0), left);
}

}  // namespace echolab
