#pragma once
// Figures of a server's process tree read from /proc: memory (RSS, peak RSS, PSS), CPU time,
// threads, live children, tasks of a user; and samplers that keep the peak over a run, since
// a fork child lives only as long as its connection and a look at the end would miss it.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

namespace echolab::test {

using std::chrono::milliseconds;

// /proc/PID/status fields in KiB (VmRSS, VmHWM) or a count (Threads); nullopt if gone.
[[nodiscard]] std::optional<std::uint64_t> proc_status_field(pid_t pid, std::string_view field);
// utime + stime of the process (all its threads), in clock ticks; 0 when gone.
[[nodiscard]] std::uint64_t cpu_ticks(pid_t pid);
// The process and its living descendants (zombies excluded).
[[nodiscard]] std::vector<pid_t> live_tree(pid_t root);
// Living (non-zombie) direct children of `parent`.
[[nodiscard]] int live_children(pid_t parent);
// Tasks (threads) on the machine whose real uid is `uid`: what RLIMIT_NPROC counts.
[[nodiscard]] int tasks_of_user(uid_t uid);

// Samples VmHWM of every process of the server tree until stopped: a fork child that
// allocated for a bogus frame would be gone before a look at the end.
class PeakRssSampler {
 public:
  explicit PeakRssSampler(pid_t root, milliseconds interval = milliseconds(5));
  ~PeakRssSampler();
  PeakRssSampler(const PeakRssSampler&) = delete;
  PeakRssSampler& operator=(const PeakRssSampler&) = delete;

  // Largest VmHWM (KiB) of any process of the tree seen so far.
  [[nodiscard]] std::uint64_t peak_kib() const { return peak_kib_.load(); }
  void stop();

 private:
  pid_t root_;
  std::atomic<std::uint64_t> peak_kib_{0};
  std::atomic<bool> stopping_{false};
  std::thread sampler_;
};

// Memory of a process tree from /proc/PID/smaps_rollup, in KiB. PSS splits a shared page
// among its users, so a forked child is charged only for what it made its own.
struct TreeMemory {
  std::uint64_t pss_kib = 0;
  std::uint64_t rss_kib = 0;
  int processes = 0;
};
[[nodiscard]] TreeMemory tree_memory(pid_t root);

// Samples tree_memory(root) from a background thread and keeps the peak PSS: a fork child
// lives only as long as its connection, so a look at the end would miss it.
class TreeMemorySampler {
 public:
  explicit TreeMemorySampler(pid_t root, milliseconds interval = milliseconds(20));
  ~TreeMemorySampler();
  TreeMemorySampler(const TreeMemorySampler&) = delete;
  TreeMemorySampler& operator=(const TreeMemorySampler&) = delete;

  [[nodiscard]] std::uint64_t peak_pss_kib() const { return peak_pss_kib_.load(); }
  [[nodiscard]] std::uint64_t peak_rss_kib() const { return peak_rss_kib_.load(); }
  void stop();

 private:
  pid_t root_;
  milliseconds interval_;
  std::atomic<std::uint64_t> peak_pss_kib_{0};
  std::atomic<std::uint64_t> peak_rss_kib_{0};
  std::atomic<bool> stopping_{false};
  std::thread sampler_;
};

}  // namespace echolab::test
