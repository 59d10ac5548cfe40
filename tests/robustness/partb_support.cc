#include "tests/robustness/partb_support.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace echolab::test {
namespace {

namespace fs = std::filesystem;

std::string from_env_or(const char* name, const char* fallback) {
  if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {
    return value;
  }
  return fallback;
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

std::string partb_server_binary() { return from_env_or("ECHOLAB_SERVER_BIN", ECHOLAB_SERVER_BIN); }
std::string partb_loadgen_binary() {
  return from_env_or("ECHOLAB_LOADGEN_BIN", ECHOLAB_LOADGEN_BIN);
}

ServerRun::ServerRun(std::string_view engine, std::vector<std::string> flags,
                     std::string_view listen, std::vector<std::string> prefix)
    : dir_("echolab-partb"), stats_path_(dir_.file("stats.json")) {
  // EchoServerProcess puts its first argument first: with a prefix, that is the prefix's
  // program and the server binary becomes an argument.
  std::vector<std::string> args;
  std::string program = partb_server_binary();
  if (!prefix.empty()) {
    program = prefix.front();
    args.assign(prefix.begin() + 1, prefix.end());
    args.push_back(partb_server_binary());
  }
  args.insert(args.end(), {"--engine", std::string(engine), "--listen", std::string(listen),
                           "--stats-json", stats_path_});
  args.insert(args.end(), flags.begin(), flags.end());
  server_.emplace(program, std::move(args));
  server_pid_ = server_->pid();
  tracker_.emplace(server_pid_);
  baseline_fds_ = count_open_fds(server_pid_);
}

int ServerRun::leaked_fds(milliseconds settle) {
  const int now = wait_for_fd_count(server_pid_, baseline_fds_, settle);
  return now < 0 ? 0 : now - baseline_fds_;
}

RunEnd ServerRun::stop(milliseconds deadline) {
  RunEnd end;
  end.status = server_->terminate(deadline);
  if (!end.status) {
    return end;  // the destructors kill the tree
  }
  tracker_->stop();
  end.children_seen = tracker_->seen().size();
  for (const auto& left : tracker_->still_present_now()) {
    ++end.leftover_processes;
    end.zombies += left.state == 'Z' ? 1 : 0;
    end.leftovers_described += (end.leftovers_described.empty() ? "" : ", ") + left.describe();
  }
  try {
    end.stats = read_json_file(stats_path_);
  } catch (const std::exception& error) {
    std::cerr << "stats: " << error.what() << '\n';
  }
  return end;
}

std::uint64_t stats_count(const nlohmann::json& stats, std::string_view name) {
  const std::string key(name);
  if (!stats.is_object() || !stats.contains("counters") || !stats["counters"].contains(key) ||
      !stats["counters"][key].is_number_unsigned()) {
    return 0;
  }
  return stats["counters"][key].get<std::uint64_t>();
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

namespace {

std::vector<std::string> loadgen_argv(std::vector<std::string> args, const std::string& json_path,
                                      std::vector<std::string> prefix) {
  std::vector<std::string> argv = std::move(prefix);
  argv.push_back(partb_loadgen_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", json_path, "--quiet", "--no-status"});
  return argv;
}

LoadgenOutcome read_outcome(const std::string& json_path, const ExitStatus& status,
                            std::string output) {
  LoadgenOutcome outcome;
  outcome.output = std::move(output);
  // The load generator exits non-zero for an invalid run (its own CPU, send lag): the JSON
  // still holds what was measured, and correctness comes from its error counts.
  try {
    outcome.result = read_json_file(json_path);
  } catch (const std::exception& error) {
    outcome.error = "echolab-loadgen " + status.describe() + ", no result: " + error.what();
  }
  return outcome;
}

}  // namespace

LoadgenOutcome run_loadgen(std::vector<std::string> args, milliseconds timeout,
                           std::vector<std::string> prefix) {
  LoadgenRun run(std::move(args), std::move(prefix));
  return run.finish(timeout);
}

LoadgenRun::LoadgenRun(std::vector<std::string> args, std::vector<std::string> prefix)
    : dir_("echolab-partb-loadgen"), json_path_(dir_.file("result.json")) {
  process_.emplace(loadgen_argv(std::move(args), json_path_, std::move(prefix)));
}

LoadgenOutcome LoadgenRun::finish(milliseconds timeout) {
  const auto status = process_->wait_for_exit(timeout);
  const std::string output = "[" + process_->command_line() + "] stdout: '" +
                             process_->stdout_text() + "' stderr: '" + process_->stderr_text() +
                             "'";
  if (!status) {
    LoadgenOutcome outcome;
    outcome.error = "echolab-loadgen did not exit within " + std::to_string(timeout.count()) + " ms";
    outcome.output = output;
    return outcome;
  }
  return read_outcome(json_path_, *status, output);
}

std::uint64_t loadgen_count(const nlohmann::json& result, std::string_view section,
                            std::string_view key) {
  const std::string s(section);
  const std::string k(key);
  if (!result.is_object() || !result.contains(s) || !result[s].contains(k) ||
      !result[s][k].is_number_unsigned()) {
    return 0;
  }
  return result[s][k].get<std::uint64_t>();
}

double loadgen_latency_us(const nlohmann::json& result, std::string_view key) {
  const std::string k(key);
  if (!result.is_object() || !result.contains("latency") ||
      !result["latency"].contains("corrected") || !result["latency"]["corrected"].contains(k)) {
    return 0;
  }
  return result["latency"]["corrected"][k].get<double>();
}

std::string partb_case_name(std::string_view test, std::string_view engine) {
  std::string name = std::string(test) + "_" + std::string(engine);
  std::replace_if(
      name.begin(), name.end(),
      [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '_'; }, '_');
  return name;
}

std::string write_partb_result(const nlohmann::json& result) {
  const fs::path dir = from_env_or("ECHOLAB_ROBUSTNESS_OUT", ECHOLAB_BINARY_DIR "/robustness");
  std::error_code error;
  fs::create_directories(dir, error);
  const fs::path path = dir / (result.value("case", "unnamed") + ".json");
  std::ofstream out(path);
  if (!out) {
    std::cerr << "[ WARNING  ] cannot write " << path << ": results not recorded\n";
    return {};
  }
  out << result.dump(2) << '\n';
  std::cout << "[   INFO   ] wrote " << path.string() << '\n';
  return path.string();
}

}  // namespace echolab::test
