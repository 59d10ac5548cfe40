#include "tests/support/proc_fs.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string_view>
#include <thread>

#include "tests/support/eventually.h"

namespace echolab::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

bool same_process(const ProcStat& a, const ProcStat& b) {
  return a.pid == b.pid && a.start_time == b.start_time;
}

std::optional<pid_t> parse_pid(const std::string& text) {
  pid_t pid = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return pid;
}

}  // namespace

std::string ProcStat::describe() const {
  return std::to_string(pid) + " (" + name + ") state " + state + " ppid " + std::to_string(ppid);
}

namespace {

// A stat file of /proc: a process's (/proc/PID/stat) or one of its threads'
// (/proc/PID/task/TID/stat), which have the same layout.
std::optional<ProcStat> read_stat_file(const std::string& path, pid_t pid) {
  std::ifstream file(path);
  std::string line;
  if (!std::getline(file, line)) {
    return std::nullopt;
  }
  // "pid (comm) state ppid ...": comm may itself contain spaces and parentheses, so split
  // at the last ')'.
  const auto open = line.find('(');
  const auto close = line.rfind(')');
  if (open == line.npos || close == line.npos || close < open) {
    return std::nullopt;
  }
  ProcStat stat;
  stat.pid = pid;
  stat.name = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields{std::istream_iterator<std::string>(rest),
                                  std::istream_iterator<std::string>()};
  // fields[0] is field 3 of proc(5) (state), fields[1] field 4 (ppid), fields[19] field 22
  // (starttime).
  if (fields.size() < 20) {
    return std::nullopt;
  }
  stat.state = fields[0].empty() ? '?' : fields[0][0];
  stat.ppid = static_cast<pid_t>(std::stol(fields[1]));
  stat.start_time = std::stoull(fields[19]);
  return stat;
}

// Every thread asleep: a pool's main thread waits while its workers may still be starting.
bool every_thread_asleep(pid_t pid) {
  std::error_code error;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  bool any = false;
  for (const auto& entry : std::filesystem::directory_iterator(tasks, error)) {
    const auto tid = parse_pid(entry.path().filename().string());
    // A thread gone since the listing has no stat: it is not starting up either.
    const auto stat = tid ? read_stat_file(entry.path() / "stat", *tid) : std::nullopt;
    if (stat && stat->state != 'S') {
      return false;
    }
    any = any || stat.has_value();
  }
  return any;
}

}  // namespace

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  return read_stat_file("/proc/" + std::to_string(pid) + "/stat", pid);
}

std::vector<ProcStat> list_descendants(pid_t root) {
  std::multimap<pid_t, ProcStat> children_of;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const auto pid = parse_pid(entry.path().filename().string());
    if (!pid) {
      continue;
    }
    if (auto stat = read_proc_stat(*pid)) {  // it may have exited since the listing
      children_of.emplace(stat->ppid, *stat);
    }
  }
  std::vector<ProcStat> descendants;
  std::vector<pid_t> parents{root};
  while (!parents.empty()) {
    const pid_t parent = parents.back();
    parents.pop_back();
    const auto [first, last] = children_of.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      descendants.push_back(it->second);
      parents.push_back(it->second.pid);
    }
  }
  return descendants;
}

std::optional<ProcStat> still_present(const ProcStat& recorded) {
  auto now = read_proc_stat(recorded.pid);
  if (now && same_process(*now, recorded)) {
    return now;
  }
  return std::nullopt;
}

bool kill_if_same_process(const ProcStat& recorded, int signal) {
  return still_present(recorded) && ::kill(recorded.pid, signal) == 0;
}

void reap_if_adopted(const ProcStat& recorded, milliseconds timeout) {
  (void)eventually(
      [&] {
        int status = 0;
        const pid_t r = ::waitpid(recorded.pid, &status, WNOHANG);
        // Not ours when ECHILD: then its own parent or PID 1 reaps it.
        return r == recorded.pid || (r < 0 && errno == ECHILD && !still_present(recorded));
      },
      timeout);
}

int accept_queue_length(int port) {
  constexpr std::string_view kListen = "0A";  // TCP_LISTEN in /proc/net/tcp's st column
  int waiting = 0;
  bool read_any = false;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    if (!in) {
      continue;
    }
    read_any = true;
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx_queue:rx_queue ...; for a listener, rx_queue is
      // its accept queue.
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues;
      if (!(fields >> slot >> local >> remote >> state >> queues) || state != kListen) {
        continue;
      }
      const auto colon = local.rfind(':');
      const auto queue_colon = queues.find(':');
      if (colon == std::string::npos || queue_colon == std::string::npos ||
          std::stoi(local.substr(colon + 1), nullptr, 16) != port) {
        continue;
      }
      waiting += std::stoi(queues.substr(queue_colon + 1), nullptr, 16);
    }
  }
  return read_any ? waiting : -1;
}

int wait_for_empty_accept_queues(int port, std::chrono::milliseconds timeout) {
  int waiting = -1;
  (void)eventually([&] { return (waiting = accept_queue_length(port)) <= 0; }, timeout);
  return waiting;
}

int count_open_fds(pid_t pid) {
  std::error_code error;
  fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", error);
  if (error) {
    return -1;
  }
  return static_cast<int>(std::distance(it, fs::directory_iterator()));
}

int settled_fd_count(pid_t pid, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int previous = count_open_fds(pid);
  for (;;) {
    std::this_thread::sleep_for(milliseconds(20));
    const int count = count_open_fds(pid);
    if (count < 0 || (every_thread_asleep(pid) && count == previous) || std::chrono::steady_clock::now() >= deadline) {
      return count;
    }
    previous = count;
  }
}

int wait_for_fd_count(pid_t pid, int expected, milliseconds timeout) {
  int count = -1;
  (void)eventually([&] { return (count = count_open_fds(pid)) == expected || count < 0; }, timeout,
                   milliseconds(20));
  return count;
}

namespace {

bool process_is_in(pid_t pid, const std::vector<long>& syscalls) {
  std::error_code error;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
    // "230 0x1 ..." while blocked in system call 230; "running", or -1 outside a call.
    std::ifstream in(task.path() / "syscall");
    long number = -1;
    if (in >> number && std::find(syscalls.begin(), syscalls.end(), number) != syscalls.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool a_thread_is_in(pid_t root, const std::vector<long>& syscalls) {
  if (process_is_in(root, syscalls)) {
    return true;
  }
  const auto below = list_descendants(root);
  return std::any_of(below.begin(), below.end(),
                     [&](const ProcStat& process) { return process_is_in(process.pid, syscalls); });
}

bool wait_for_a_thread_in(pid_t root, const std::vector<long>& syscalls, milliseconds timeout) {
  return eventually([&] { return a_thread_is_in(root, syscalls); }, timeout, milliseconds(10));
}

void adopt_orphans() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }

DescendantTracker::DescendantTracker(pid_t root, milliseconds interval)
    : root_(root), interval_(interval) {
  adopt_orphans();
  sample();
  sampler_ = std::thread([this] {
    while (!stopping_) {
      std::this_thread::sleep_for(interval_);
      sample();
    }
  });
}

DescendantTracker::~DescendantTracker() {
  stop();
  for (const auto& leftover : still_present_now()) {
    kill_if_same_process(leftover, SIGKILL);
    reap_if_adopted(leftover, milliseconds(2'000));
  }
}

void DescendantTracker::stop() {
  stopping_ = true;
  if (sampler_.joinable()) {
    sampler_.join();
  }
}

void DescendantTracker::sample() {
  const auto now = list_descendants(root_);
  const std::lock_guard lock(mutex_);
  for (const auto& process : now) {
    const bool known = std::any_of(seen_.begin(), seen_.end(),
                                   [&](const ProcStat& p) { return same_process(p, process); });
    if (!known) {
      seen_.push_back(process);
    }
  }
}

std::vector<ProcStat> DescendantTracker::seen() const {
  const std::lock_guard lock(mutex_);
  return seen_;
}

std::vector<ProcStat> DescendantTracker::still_present_now() const {
  std::vector<ProcStat> present;
  for (const auto& process : seen()) {
    if (auto now = still_present(process)) {
      present.push_back(*now);
    }
  }
  return present;
}

}  // namespace echolab::test
