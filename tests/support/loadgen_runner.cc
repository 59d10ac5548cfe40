#include "tests/support/loadgen_runner.h"

#include <sys/stat.h>

#include <algorithm>
#include <stdexcept>

#include "tests/support/echo_server.h"
#include "tests/support/engine_cases.h"

namespace echolab::test {
namespace {

int unique_number() {
  static int next = 0;
  return ++next;
}

std::vector<std::string> loadgen_argv(const TempDir& dir, std::vector<std::string> args,
                                      std::vector<std::string> prefix, std::string& json_path) {
  if (std::find(args.begin(), args.end(), "--json") == args.end()) {
    json_path = dir.file("result-" + std::to_string(unique_number()) + ".json");
    args.push_back("--json");
    args.push_back(json_path);
  }
  std::vector<std::string> argv = std::move(prefix);
  argv.push_back(loadgen_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

std::string LoadgenOutcome::describe() const {
  return status.describe() + "\n--- stderr:\n" + err + "\n--- stdout:\n" + out;
}

LoadgenRun::LoadgenRun(const TempDir& dir, std::vector<std::string> args, const SpawnOptions& options,
                       std::vector<std::string> prefix)
    : process_(loadgen_argv(dir, std::move(args), std::move(prefix), json_path_), options) {}

LoadgenOutcome LoadgenRun::finish(milliseconds deadline) {
  const auto status = process_.wait_for_exit(deadline);
  if (!status) {
    throw std::runtime_error(process_.command_line() + ": still running after " +
                             std::to_string(deadline.count()) + " ms; stderr: " + process_.stderr_text());
  }
  process_.wait_for_output_closed(milliseconds(2'000));
  LoadgenOutcome outcome{*status, process_.stdout_text(), process_.stderr_text(), nullptr};
  struct stat info {};
  if (!json_path_.empty() && ::stat(json_path_.c_str(), &info) == 0) {
    outcome.json = read_json_file(json_path_);
  }
  return outcome;
}

LoadgenOutcome run_loadgen(const TempDir& dir, std::vector<std::string> args, milliseconds deadline,
                           const SpawnOptions& options, std::vector<std::string> prefix) {
  LoadgenRun run(dir, std::move(args), options, std::move(prefix));
  return run.finish(deadline);
}

std::vector<std::string> quick_flags(const std::string& duration) {
  return {"--warmup", "0.1s", "--duration", duration, "--timeout", "1s", "--quiet", "--no-status"};
}

std::uint64_t loadgen_count(const nlohmann::json& result, std::string_view section, std::string_view key) {
  const std::string s(section);
  const std::string k(key);
  if (!result.is_object() || !result.contains(s) || !result[s].contains(k) || !result[s][k].is_number_unsigned()) {
    return 0;
  }
  return result[s][k].get<std::uint64_t>();
}

double loadgen_latency_us(const nlohmann::json& result, std::string_view key) {
  const std::string k(key);
  if (!result.is_object() || !result.contains("latency") || !result["latency"].contains("corrected") ||
      !result["latency"]["corrected"].contains(k)) {
    return 0;
  }
  return result["latency"]["corrected"][k].get<double>();
}

}  // namespace echolab::test
