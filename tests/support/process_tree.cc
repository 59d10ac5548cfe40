#include "tests/support/process_tree.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>

#include "tests/support/proc_fs.h"

namespace echolab::test {
namespace {

namespace fs = std::filesystem;

// Fields 3.. of /proc/PID/stat (after the comm), or empty when the process is gone.
std::vector<std::string> stat_fields(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(file, line)) {
    return {};
  }
  const auto close = line.rfind(')');
  if (close == line.npos) {
    return {};
  }
  std::istringstream rest(line.substr(close + 1));
  return {std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
}

// Rss and Pss lines of /proc/PID/smaps_rollup, in KiB; nullopt when the process is gone.
std::optional<std::pair<std::uint64_t, std::uint64_t>> read_rollup(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/smaps_rollup");
  if (!file) {
    return std::nullopt;
  }
  std::uint64_t rss = 0;
  std::uint64_t pss = 0;
  std::string line;
  bool any = false;
  while (std::getline(file, line)) {
    std::istringstream fields(line);
    std::string key;
    std::uint64_t value = 0;
    if (!(fields >> key >> value)) {
      continue;
    }
    if (key == "Rss:") {
      rss = value;
      any = true;
    } else if (key == "Pss:") {
      pss = value;
    }
  }
  if (!any) {
    return std::nullopt;  // a zombie has no memory left to report
  }
  return std::make_pair(rss, pss);
}

}  // namespace

std::optional<std::uint64_t> proc_status_field(pid_t pid, std::string_view field) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(file, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return std::nullopt;
}

std::uint64_t cpu_ticks(pid_t pid) {
  const auto fields = stat_fields(pid);
  // proc(5): utime is field 14, stime field 15; fields[0] is field 3.
  if (fields.size() < 13) {
    return 0;
  }
  return std::stoull(fields[11]) + std::stoull(fields[12]);
}

std::vector<pid_t> live_tree(pid_t root) {
  std::vector<pid_t> tree;
  if (const auto stat = read_proc_stat(root); stat && stat->state != 'Z') {
    tree.push_back(root);
  }
  for (const auto& child : list_descendants(root)) {
    if (child.state != 'Z') {
      tree.push_back(child.pid);
    }
  }
  return tree;
}

int live_children(pid_t parent) {
  int count = 0;
  for (const auto& child : list_descendants(parent)) {
    count += child.ppid == parent && child.state != 'Z' ? 1 : 0;
  }
  return count;
}

int tasks_of_user(uid_t uid) {
  int count = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stoi(name));
    // "Uid: real effective saved fs": RLIMIT_NPROC counts by real uid.
    if (proc_status_field(pid, "Uid") != std::optional<std::uint64_t>(uid)) {
      continue;
    }
    count += static_cast<int>(proc_status_field(pid, "Threads").value_or(0));
  }
  return count;
}

PeakRssSampler::PeakRssSampler(pid_t root, milliseconds interval) : root_(root) {
  sampler_ = std::thread([this, interval] {
    while (!stopping_.load()) {
      for (const pid_t pid : live_tree(root_)) {
        const auto hwm = proc_status_field(pid, "VmHWM").value_or(0);
        std::uint64_t seen = peak_kib_.load();
        while (hwm > seen && !peak_kib_.compare_exchange_weak(seen, hwm)) {
        }
      }
      std::this_thread::sleep_for(interval);
    }
  });
}

PeakRssSampler::~PeakRssSampler() { stop(); }

void PeakRssSampler::stop() {
  stopping_.store(true);
  if (sampler_.joinable()) {
    sampler_.join();
  }
}

TreeMemory tree_memory(pid_t root) {
  TreeMemory total;
  std::vector<pid_t> pids = {root};
  for (const auto& child : list_descendants(root)) {
    pids.push_back(child.pid);
  }
  for (const pid_t pid : pids) {
    if (const auto rollup = read_rollup(pid)) {
      total.rss_kib += rollup->first;
      total.pss_kib += rollup->second;
      ++total.processes;
    }
  }
  return total;
}

TreeMemorySampler::TreeMemorySampler(pid_t root, milliseconds interval)
    : root_(root), interval_(interval), sampler_([this] {
        while (!stopping_.load()) {
          const TreeMemory now = tree_memory(root_);
          if (now.pss_kib > peak_pss_kib_.load()) {
            peak_pss_kib_.store(now.pss_kib);
          }
          if (now.rss_kib > peak_rss_kib_.load()) {
            peak_rss_kib_.store(now.rss_kib);
          }
          std::this_thread::sleep_for(interval_);
        }
      }) {}

TreeMemorySampler::~TreeMemorySampler() { stop(); }

void TreeMemorySampler::stop() {
  stopping_.store(true);
  if (sampler_.joinable()) {
    sampler_.join();
  }
}

}  // namespace echolab::test
