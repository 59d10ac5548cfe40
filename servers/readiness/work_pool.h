#pragma once
// The synchronous half of the half-sync/half-async pattern (reactor-pool): --workers threads
// that run the service work (--work) of messages a readiness loop (the reactor) received,
// and hand each finished one back to it. Workers never touch a socket or a session: a job
// names a connection, the reactor owns its bytes (an echo's reply is its request).
//
// Each connection is bound to one worker when it is accepted (round robin), and a worker
// runs its jobs first in, first out, so the replies of one connection finish in request
// order even with many of its frames in flight, and each worker's share of connections and
// jobs is its own. The price: a busy connection cannot borrow an idle worker.
//
// Workers wake the reactor through an eventfd it watches, written only when the list of
// finished jobs was empty (one wake-up per batch the reactor collects); the reactor wakes a
// worker through its condition variable, only when its queue was empty. Queues are vectors
// swapped between the two sides, so the hot path allocates nothing once they have grown.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/fd.h"
#include "core/stats.h"
#include "core/work.h"

namespace echolab {

struct WorkJob {
  int fd;                // the reactor's connection
  std::uint64_t serial;  // which connection on that descriptor (the number may be reused)
};

struct WorkDone {
  int fd;
  std::uint64_t serial;
  bool done;  // worked on; false when a stop's work cutoff (core/stop.h) came first
};

class WorkPool {
 public:
  // Makes the eventfd; throws std::system_error when it cannot. No thread yet (start()).
  WorkPool(const WorkSpec& work, int workers);
  // Closes the queues and joins the workers (each finishes its queue first: past a stop's
  // work cutoff, at once).
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Starts the workers, stop signals blocked in them. Throws std::system_error when a thread
  // cannot be created; the destructor joins those already started.
  void start();

  // The descriptor the reactor watches for reading: readable once some job is finished.
  [[nodiscard]] int wake_fd() const { return wake_.get(); }

  // Reactor thread only. The worker that will run every job of a new connection.
  [[nodiscard]] int bind_connection();
  // Queues `count` jobs of one connection on its worker, in order.
  void submit(int worker, WorkJob job, std::size_t count);
  // Moves the jobs finished so far, in the order each worker finished them, into `finished`
  // (which the caller empties between calls, keeping its capacity), after reading the eventfd.
  void take_finished(std::vector<WorkDone>& finished, Counters& counters);

  // After the reactor has stopped: joins the workers and adds what each did (jobs in
  // `messages` or `messages_unanswered`, its eventfd writes) and its share of connections
  // to `stats`' spread over workers.
  void finish(ServerStats& stats);

 private:
  struct Worker {
    std::mutex mutex;
    std::condition_variable wake;
    std::vector<WorkJob> queue;  // guarded by mutex
    bool closed = false;         // guarded by mutex
    std::uint64_t connections = 0;  // reactor thread only
    Counters counters;              // the worker's own thread only, read after join
    std::thread thread;
  };

  void serve(Worker& worker);
  void report(const WorkJob& job, bool done, Counters& counters);
  void join_all();

  const WorkSpec work_;
  Fd wake_;
  std::vector<std::unique_ptr<Worker>> workers_;
  int next_worker_ = 0;
  Counters spawn_counters_;
  std::mutex finished_mutex_;
  std::vector<WorkDone> finished_;  // guarded by finished_mutex_
};

}  // namespace echolab
