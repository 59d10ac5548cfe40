#pragma once
// What /proc says about a process tree: children by PPid, open descriptors, and whether a
// recorded process (PID plus start time, so a recycled PID is never mistaken for it) is
// still there, zombie or alive.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace echolab::test {

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';              // R, S, D, Z (zombie), ...
  std::uint64_t start_time = 0;  // clock ticks after boot: with pid, identifies a process
  std::string name;              // comm

  [[nodiscard]] std::string describe() const;  // "1234 (echolab-server) state Z ppid 1200"
};

[[nodiscard]] std::optional<ProcStat> read_proc_stat(pid_t pid);

// Every process whose parent chain leads to `root` (root itself excluded).
[[nodiscard]] std::vector<ProcStat> list_descendants(pid_t root);

// The process `recorded` describes, if it still exists (a zombie counts).
[[nodiscard]] std::optional<ProcStat> still_present(const ProcStat& recorded);

// Sends `signal` to `recorded` only if its PID still names that same process.
bool kill_if_same_process(const ProcStat& recorded, int signal);

// If `recorded` was re-parented to this process (see adopt_orphans), reaps it; otherwise
// waits up to `timeout` for it to disappear.
void reap_if_adopted(const ProcStat& recorded, std::chrono::milliseconds timeout);

// Entries of /proc/PID/fd, or -1 when the process is gone.
[[nodiscard]] int count_open_fds(pid_t pid);

// The descriptor count of a process that has finished setting itself up: every thread
// asleep (blocked, say, in accept) with the same count on two reads 20 ms apart, or
// whatever it is when `timeout` passes. A pool worker counted while it is still opening its
// own descriptors would otherwise look as if it leaked one later.
[[nodiscard]] int settled_fd_count(pid_t pid, std::chrono::milliseconds timeout);

// Polls until count_open_fds(pid) == expected or `timeout` passes; returns the last count.
[[nodiscard]] int wait_for_fd_count(pid_t pid, int expected, std::chrono::milliseconds timeout);

// Whether a thread of `root`, or of a process below it, is blocked in one of `syscalls`
// (numbers from <sys/syscall.h>), as /proc/PID/task/TID/syscall says. This is how a test
// knows a server has got somewhere (a worker asleep in its --work, a child back in accept)
// rather than guessing with a fixed sleep that a slow or sanitized build outlasts.
[[nodiscard]] bool a_thread_is_in(pid_t root, const std::vector<long>& syscalls);

// Polls a_thread_is_in until it is true or `timeout` passes; the last answer.
[[nodiscard]] bool wait_for_a_thread_in(pid_t root, const std::vector<long>& syscalls,
                                        std::chrono::milliseconds timeout);

// Connections waiting to be accepted on every TCP listener bound to `port` (all of the
// listeners SO_REUSEPORT lets share it, each with its own queue), from /proc/net/tcp and
// /proc/net/tcp6 of this network namespace; -1 when neither can be read.
[[nodiscard]] int accept_queue_length(int port);

// Polls until accept_queue_length(port) is 0 or `timeout` passes; returns the last length.
// A test that counts accepted connections waits for this: with several listeners, a client
// served on one says nothing of the queue of another.
int wait_for_empty_accept_queues(int port, std::chrono::milliseconds timeout);

// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): processes orphaned by a
// server under test are re-parented here rather than to PID 1. A child the server failed to
// reap then stays visible as a zombie whatever PID 1 does, and can be reaped by the harness.
void adopt_orphans();

// Records, from a background thread, every descendant of `root` seen while it runs: the
// children of a fork engine live only as long as their connection, so one look at the end
// would miss them. On destruction it kills (by PID) and reaps any still present, so a test
// that fails never leaves them behind.
class DescendantTracker {
 public:
  explicit DescendantTracker(pid_t root,
                             std::chrono::milliseconds interval = std::chrono::milliseconds(10));
  ~DescendantTracker();
  DescendantTracker(const DescendantTracker&) = delete;
  DescendantTracker& operator=(const DescendantTracker&) = delete;

  // Stops sampling (call once the root exited, before checking for leftovers).
  void stop();
  [[nodiscard]] std::vector<ProcStat> seen() const;
  // The recorded descendants that still exist: leftovers once the root has exited.
  [[nodiscard]] std::vector<ProcStat> still_present_now() const;

 private:
  void sample();

  pid_t root_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::vector<ProcStat> seen_;
  std::atomic<bool> stopping_{false};
  std::thread sampler_;
};

}  // namespace echolab::test
