#include "tests/robustness/robust_server.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "servers/engine.h"

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

}  // namespace

ServerLaunch launch_of(std::string engine, std::vector<std::string> flags) {
  ServerLaunch launch;
  launch.engine = std::move(engine);
  launch.flags = std::move(flags);
  return launch;
}

ServerUnderTest::ServerUnderTest(const ServerLaunch& launch)
    : dir_("echolab-robust"), stats_path_(dir_.file("stats.json")) {
  if (launch.stats_dir_for_anyone) {
    ::chmod(dir_.path().c_str(), 0777);
  }
  const bool stream = find_engine(launch.engine) == nullptr ||
                      find_engine(launch.engine)->serves == Serves::streams;
  std::vector<std::string> args = {"--engine", launch.engine, "--listen", launch.listen,
                                   "--transport", stream ? "tcp" : "udp",
                                   "--stats-json", stats_path_};
  args.insert(args.end(), launch.flags.begin(), launch.flags.end());
  server_.emplace(server_binary(), std::move(args), milliseconds(15'000), launch.spawn);
  tracker_.emplace(server_->pid(), milliseconds(5));
}

bool ServerUnderTest::exited_now() {
  return server_->process().wait_for_exit(milliseconds(0)).has_value();
}

StopReport ServerUnderTest::stop(milliseconds deadline) {
  StopReport report;
  report.status = server_->terminate(deadline);
  if (!report.status) {
    return report;
  }
  tracker_->stop();
  report.children_seen = tracker_->seen().size();
  report.leftovers = tracker_->still_present_now();
  try {
    report.stats = read_json_file(stats_path_);
  } catch (const std::exception& error) {
    std::cerr << "[   INFO   ] stats unreadable: " << error.what() << '\n';
  }
  return report;
}

std::uint64_t stats_counter(const nlohmann::json& stats, std::string_view name) {
  const std::string key(name);
  if (!stats.is_object() || !stats.contains("counters") || !stats["counters"].contains(key) ||
      !stats["counters"][key].is_number_unsigned()) {
    ADD_FAILURE() << "no counters." << key << " in " << stats.dump();
    return 0;
  }
  return stats["counters"][key].get<std::uint64_t>();
}

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

std::string write_case_result(const nlohmann::json& result) {
  const char* configured = std::getenv("ECHOLAB_ROBUSTNESS_OUT");
  const fs::path dir = configured != nullptr && *configured != '\0'
                           ? fs::path(configured)
                           : fs::path(ECHOLAB_BINARY_DIR) / "robustness";
  std::error_code error;
  fs::create_directories(dir, error);
  const fs::path path = dir / (result.value("case", "unnamed") + ".json");
  std::ofstream out(path);
  out << result.dump(2) << '\n';
  if (!out) {
    std::cerr << "[   INFO   ] could not write " << path << '\n';
    return {};
  }
  std::cout << "[   INFO   ] result: " << path.string() << '\n';
  return path.string();
}

std::string case_name(std::string_view test, std::string_view engine) {
  std::string name = std::string(test) + "_" + std::string(engine);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      c = '_';
    }
  }
  return name;
}

rlim_t raise_own_fd_limit(rlim_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= wanted) {
    return limit.rlim_cur;
  }
  if (limit.rlim_max < wanted) {
    limit.rlim_max = wanted;  // only root may; otherwise the call below fails
  }
  limit.rlim_cur = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

}  // namespace echolab::test
