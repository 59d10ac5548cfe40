#include "servers/readiness/work_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/error.h"
#include "core/stop.h"

namespace echolab {

WorkPool::WorkPool(const WorkSpec& work, int workers)
    : work_(work), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_) {
    throw_sys_error("eventfd");
  }
  for (int i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Worker>());
  }
}

WorkPool::~WorkPool() { join_all(); }

void WorkPool::start() {
  for (auto& worker : workers_) {
    spawn_counters_.count(Syscall::thread_create);
    Worker* self = worker.get();
    worker->thread = std::thread([this, self] {
      block_stop_signals_in_this_thread();
      serve(*self);
    });
  }
}

int WorkPool::bind_connection() {
  const int chosen = next_worker_;
  next_worker_ = (next_worker_ + 1) % static_cast<int>(workers_.size());
  ++workers_[static_cast<std::size_t>(chosen)]->connections;
  return chosen;
}

void WorkPool::submit(int worker_index, WorkJob job, std::size_t count) {
  Worker& worker = *workers_[static_cast<std::size_t>(worker_index)];
  bool was_idle = false;
  {
    std::lock_guard lock(worker.mutex);
    was_idle = worker.queue.empty();
    worker.queue.insert(worker.queue.end(), count, job);
  }
  if (was_idle) {
    worker.wake.notify_one();  // a busy worker looks at its queue again before it sleeps
  }
}

void WorkPool::serve(Worker& worker) {
  std::vector<WorkJob> batch;
  for (;;) {
    {
      std::unique_lock lock(worker.mutex);
      worker.wake.wait(lock, [&] { return !worker.queue.empty() || worker.closed; });
      if (worker.queue.empty()) {
        return;  // closed, and every job queued before was run
      }
      batch.swap(worker.queue);
    }
    for (const WorkJob& job : batch) {
      // The same rule as inline work (StreamSession::work_on_message): past the cutoff a
      // job is not started, so what was done can still be sent before the drain ends.
      const bool done = !work_cutoff_passed() && perform_work(work_);
      ++(done ? worker.counters.messages : worker.counters.messages_unanswered);
      report(job, done, worker.counters);
    }
    batch.clear();
  }
}

void WorkPool::report(const WorkJob& job, bool done, Counters& counters) {
  bool first = false;
  {
    std::lock_guard lock(finished_mutex_);
    first = finished_.empty();
    finished_.push_back({job.fd, job.serial, done});
  }
  if (first) {
    // A non-empty list means the reactor was already woken and has not collected it yet.
    counters.count(Syscall::eventfd_write);
    const std::uint64_t one = 1;
    if (::write(wake_.get(), &one, sizeof(one)) != static_cast<ssize_t>(sizeof(one))) {
      ++counters.io_errors;  // cannot happen short of 2^64 - 1 unread wake-ups
    }
  }
}

void WorkPool::take_finished(std::vector<WorkDone>& finished, Counters& counters) {
  // Read before taking the list: a job finished after the read either lands in the list
  // taken now or writes the eventfd again, so no finished job waits for a wake-up.
  counters.count(Syscall::eventfd_read);
  std::uint64_t ignored = 0;
  if (::read(wake_.get(), &ignored, sizeof(ignored)) < 0 && errno != EAGAIN) {
    ++counters.io_errors;
  }
  std::lock_guard lock(finished_mutex_);
  finished.swap(finished_);
}

void WorkPool::join_all() {
  for (auto& worker : workers_) {
    {
      std::lock_guard lock(worker->mutex);
      worker->closed = true;
    }
    worker->wake.notify_one();
  }
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
}

void WorkPool::finish(ServerStats& stats) {
  join_all();
  stats.add(spawn_counters_);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    stats.add(workers_[i]->counters, static_cast<int>(i));
    stats.add_connection_share(static_cast<int>(i), workers_[i]->connections);
  }
}

}  // namespace echolab
