// prefork: the classic pre-forked pool (Apache's prefork MPM). --workers processes forked at
// start-up all block in accept() on the one listening socket they inherited; each serves its
// connection to the end, then accepts again. The parent only replaces workers that die or
// are signalled (a worker's own stop ends that worker alone); only the parent's stop stops
// the server. Workers die with the parent. --accept-lock: the workers take turns in accept()
// behind a robust process-shared mutex (Stevens, UNP vol. 1 ch. 30), so one waits there and
// the rest wait on the lock; a worker that dies holding it does not wedge the pool.
// --accept-wait poll: the workers poll() the listener before accepting (servers/accept_wait.h).
// Concurrency: the processes, so at most --workers clients are served at once. Costs: a
// process per worker (memory), none per connection.
// Try it: echolab-server --engine prefork --workers 4
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/stop.h"
#include "servers/accept_wait.h"
#include "servers/children.h"
#include "servers/connection.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

// A pool whose workers keep dying as soon as they start would otherwise be respawned
// forever: past this many replacements within the window, the parent gives up and fails.
constexpr int kMaxReplacements = 16;
constexpr std::chrono::seconds kReplacementWindow{10};

// How often a worker waiting for the accept lock looks for a stop. pthread_mutex_lock is not
// interrupted by signals, and a stop sent to this worker alone (the parent then replaces it)
// must not wait for the holder to get a connection.
constexpr long kLockStopCheckNs = 100'000'000;

// The pool's accept lock: a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST mutex in an anonymous
// shared mapping, made before the workers are forked so that they (and their replacements)
// all map it. Robust: when its holder dies (SIGKILL in accept()), the next locker gets
// EOWNERDEAD, marks it consistent and goes on, instead of the whole pool blocking forever.
class SharedAcceptLock {
 public:
  SharedAcceptLock() {
    void* memory = ::mmap(nullptr, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      throw sys_error("mmap");
    }
    mutex_ = static_cast<pthread_mutex_t*>(memory);
    pthread_mutexattr_t attributes;
    ::pthread_mutexattr_init(&attributes);
    ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    const int result = ::pthread_mutex_init(mutex_, &attributes);
    ::pthread_mutexattr_destroy(&attributes);
    if (result != 0) {
      ::munmap(mutex_, sizeof(pthread_mutex_t));
      throw sys_error("pthread_mutex_init", result);
    }
  }
  ~SharedAcceptLock() {
    // Only the parent runs this, after its workers are gone: nobody holds the lock.
    ::pthread_mutex_destroy(mutex_);
    ::munmap(mutex_, sizeof(pthread_mutex_t));
  }
  SharedAcceptLock(const SharedAcceptLock&) = delete;
  SharedAcceptLock& operator=(const SharedAcceptLock&) = delete;

  // Takes the lock; false (not holding it) once a stop is requested or the lock is broken.
  [[nodiscard]] bool lock() {
    for (;;) {
      if (stop_requested()) {
        return false;
      }
      timespec deadline{};
      ::clock_gettime(CLOCK_MONOTONIC, &deadline);
      deadline.tv_nsec += kLockStopCheckNs;
      if (deadline.tv_nsec >= 1'000'000'000) {
        deadline.tv_nsec -= 1'000'000'000;
        ++deadline.tv_sec;
      }
      const int result = ::pthread_mutex_clocklock(mutex_, CLOCK_MONOTONIC, &deadline);
      if (result == ETIMEDOUT) {
        continue;
      }
      if (result == EOWNERDEAD) {
        // Its holder died; the lock guards no data, so it is consistent as it is.
        ::pthread_mutex_consistent(mutex_);
      } else if (result != 0) {
        fail_engine(describe_errno("pthread_mutex_clocklock", result));
        return false;
      }
      if (stop_requested()) {
        unlock();
        return false;
      }
      return true;
    }
  }
  void unlock() { ::pthread_mutex_unlock(mutex_); }

 private:
  pthread_mutex_t* mutex_ = nullptr;
};

void accept_and_serve(EngineContext& context, int worker, SharedAcceptLock* accept_lock) {
  // The listener is shared with the other workers: a stop of this worker alone (a signal
  // sent to it) must not shut it down for all of them.
  detach_on_stop(context.socket);
  Counters counters;
  while (!stop_requested()) {
    if (accept_lock != nullptr && !accept_lock->lock()) {
      break;
    }
    // With the lock, a stop reaches the holder's accept() (EINTR, then EINVAL on the detached
    // listener); it lets go, and each waiter in turn takes the lock, sees the stop, lets go.
    AcceptResult accepted = wait_and_accept(context.socket, context.config.accept_wait, counters);
    if (accept_lock != nullptr) {
      accept_lock->unlock();
    }
    if (!accepted.fd) {
      if (!continue_after_accept_failure(accepted)) {
        break;
      }
      continue;
    }
    serve_connection(std::move(accepted.fd), context, counters);
    context.stats.add(counters, worker);
    counters = Counters{};
  }
  context.stats.add(counters, worker);
}

}  // namespace

void run_prefork(EngineContext& context) {
  std::optional<SharedAcceptLock> accept_lock;
  if (context.config.accept_lock) {
    accept_lock.emplace();  // before any fork: every worker must map the same lock
  }
  SharedAcceptLock* const lock = accept_lock ? &*accept_lock : nullptr;
  prepare_listener(context.socket, context.config.accept_wait);
  context.announce_ready();
  // Only the workers accept; the parent's stop must reach them as a signal (terminate_all),
  // not by shutting the listener they share under their feet.
  watch_for_stop(StopSlot::listener, -1);
  ChildProcesses children;
  Counters parent_counters;
  std::vector<pid_t> worker_pids(static_cast<std::size_t>(context.config.workers), -1);
  auto start_worker = [&](int worker) {
    const pid_t pid = children.spawn([&context, worker, lock] { accept_and_serve(context, worker, lock); },
                                     parent_counters);
    if (pid < 0) {
      throw sys_error("fork");
    }
    worker_pids[static_cast<std::size_t>(worker)] = pid;
  };
  for (int worker = 0; worker < context.config.workers; ++worker) {
    start_worker(worker);
  }
  std::deque<std::chrono::steady_clock::time_point> recent_replacements;
  auto replace_worker = [&](std::size_t worker, const ChildProcesses::Exit& exit) {
    const auto now = std::chrono::steady_clock::now();
    recent_replacements.push_back(now);
    while (now - recent_replacements.front() > kReplacementWindow) {
      recent_replacements.pop_front();
    }
    if (recent_replacements.size() > static_cast<std::size_t>(kMaxReplacements)) {
      fail_engine("prefork workers keep dying (" + std::to_string(kMaxReplacements + 1) +
                  " within " + std::to_string(kReplacementWindow.count()) + " s); giving up");
      return;
    }
    const int signal = WTERMSIG(exit.status);
    const std::string line = "echolab-server: prefork worker " + std::to_string(worker) + " (pid " +
                             std::to_string(exit.pid) + ") ended by signal " + std::to_string(signal) +
                             " (" + ::strsignal(signal) + "); replaced\n";
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    ++parent_counters.workers_replaced;
    try {
      start_worker(static_cast<int>(worker));
    } catch (const std::system_error& error) {
      fail_engine(error.what());  // out of processes: serving on with a smaller pool would hide it
    }
  };
  while (!stop_requested()) {
    pollfd waiter{wake_fd(), POLLIN, 0};
    if (::poll(&waiter, 1, -1) > 0) {
      drain_wake_fd();
    }
    for (const ChildProcesses::Exit& exit : children.reap_exited()) {
      for (std::size_t worker = 0; worker < worker_pids.size(); ++worker) {
        if (worker_pids[worker] != exit.pid || stop_requested()) {
          continue;
        }
        // A worker killed or stopped by a signal is replaced, so the pool keeps its size;
        // one that failed on its own (its listener broke) would only fail again.
        if (WIFSIGNALED(exit.status)) {
          replace_worker(worker, exit);
        } else {
          fail_engine("prefork worker " + std::to_string(worker) + " exited with status " +
                      std::to_string(WEXITSTATUS(exit.status)));
        }
      }
    }
  }
  children.terminate_all();
  context.stats.add(parent_counters);
}

}  // namespace echolab
