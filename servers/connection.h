#pragma once
// What the blocking engines (iterative, prefork, prethread, fork, thread) share: the echo
// loop of one blocking stream connection, and the bookkeeping around it.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_set>

#include "core/fd.h"
#include "core/io.h"
#include "servers/engine.h"

namespace echolab {

// The open connections of a multi-threaded engine, so that a stop can reach every thread
// blocked in recv(): shutdown(SHUT_RD) wakes it, and lets it still send what it owes.
class ConnectionRegistry {
 public:
  void add(int fd);
  void remove(int fd);  // call before closing fd, so a stop never touches a reused number

  // The stop of a threaded engine: shut every read side, give the threads kDrainTime to
  // answer what they owe, then shut the write sides too, so that a thread blocked sending
  // to a peer that never reads cannot keep the server from exiting.
  void stop_all();

 private:
  void shut_down_all(int how);

  std::mutex mutex_;
  std::condition_variable emptied_;
  std::unordered_set<int> fds_;
  bool stopping_ = false;
};

// Serves one connection on a blocking socket until the peer closes it, breaks the protocol,
// fails, or a stop is requested; then closes it. Frames already complete are answered first.
// With a registry (threads), the stop reaches the connection through it; without (a process
// serving one connection at a time), through the stop handler's connection slot.
void serve_connection(Fd connection, EngineContext& context, Counters& counters,
                      ConnectionRegistry* registry = nullptr);

// Parks the calling (main) thread until a stop is requested.
void wait_for_stop();

// Handles a failed accept_connection in an accept loop. Returns false when the loop must
// end: a stop was requested, or the listener is unusable (then the engine fails: see below).
// `pause` (blocking accept loops only): back off briefly when out of descriptors or memory,
// instead of retrying at once; an event loop must not stall its other clients that way.
bool continue_after_accept_failure(const AcceptResult& result, bool pause = true);

// An engine thread or process hit an error it cannot serve past: prints "echolab-server:
// WHAT" on stderr, marks the run failed and requests a stop. Callable from any thread.
void fail_engine(const std::string& what);
[[nodiscard]] bool engine_failed();

// The timeout of an event loop's wait for its earliest idle deadline (time_point::max():
// none, -1, wait for ever), rounded up so that a wait never ends just before the deadline it
// waits for, and never negative.
[[nodiscard]] std::chrono::milliseconds wait_for_deadline(std::chrono::steady_clock::time_point deadline);

}  // namespace echolab
