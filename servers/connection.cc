#include "servers/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "core/error.h"
#include "core/io.h"
#include "core/stop.h"

namespace echolab {
namespace {

void echo_until_done(int fd, const ProtocolConfig& config, Counters& counters) {
  StreamSession session(config);
  for (;;) {
    if (session.has_output()) {
      const IoResult sent = send_all(fd, session.output(), counters);
      session.commit_sent(sent.bytes, counters);
      if (sent.status != IoStatus::ok) {
        ++(sent.status == IoStatus::reset ? counters.peer_resets : counters.io_errors);
        return;
      }
    }
    if (stop_requested()) {
      return;
    }
    const IoResult received = receive_some(fd, session.receive_buffer(), counters);
    switch (received.status) {
      case IoStatus::ok:
        if (!session.commit_received(received.bytes, counters)) {
          return;  // protocol error, counted by the session: close this connection only
        }
        break;
      case IoStatus::closed:
        // The peer is done sending (or a stop shut our read side): answer what is complete.
        if (session.has_output()) {
          const IoResult sent = send_all(fd, session.output(), counters);
          session.commit_sent(sent.bytes, counters);
        }
        return;
      case IoStatus::reset:
        ++counters.peer_resets;
        return;
      case IoStatus::would_block:
      case IoStatus::error:
        ++counters.io_errors;
        return;
    }
  }
}

std::atomic<bool> g_engine_failed{false};

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
}

void ConnectionRegistry::shut_down_all_reads() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (int fd : fds_) {
    ::shutdown(fd, SHUT_RD);
  }
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
  echo_until_done(fd, context.config.protocol, counters);
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

bool continue_after_accept_failure(const AcceptResult& result) {
  // EINVAL: the listener was shut down, which only a stop does (possibly a sibling worker's
  // stop, a moment before this process hears of its own).
  if (stop_requested() || result.error == EINVAL) {
    return false;
  }
  if (result.fatal) {
    fail_engine(describe_errno("accept", result.error));
    return false;
  }
  if (result.error == EMFILE || result.error == ENFILE || result.error == ENOBUFS ||
      result.error == ENOMEM) {
    // Out of a resource: back off briefly instead of spinning on a backlog we cannot take.
    const timespec pause{0, 10'000'000};
    ::nanosleep(&pause, nullptr);
  }
  return true;
}

}  // namespace echolab
