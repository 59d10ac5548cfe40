// echolab-loadgen: the load generator's command. Parses, runs, reports; every user mistake
// is one line on stderr and exit status 2, a system failure one line and exit status 1.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "core/error.h"
#include "core/stop.h"
#include "echolab/version.h"
#include "loadgen/merge.h"
#include "loadgen/options.h"
#include "loadgen/report.h"
#include "loadgen/run.h"

namespace {

using namespace echolab;
namespace po = boost::program_options;

constexpr int kUsageExit = 2;
constexpr int kSystemExit = 1;

int run_command(const std::vector<std::string>& args) {
  const ParsedCommand command = parse_command_line(args);
  if (command.action == ParsedCommand::Action::help) {
    std::cout << command.help_text;
    return 0;
  }
  if (command.action == ParsedCommand::Action::version) {
    std::cout << version_line("echolab-loadgen") << '\n';
    return 0;
  }
  const LoadConfig& config = command.config;
  const Outputs outputs{config.json_path, config.hgrm_path, config.hlog_path};
  check_outputs(outputs);
  install_stop_handlers();
  StatusLine status(config.live_status && config.json_path != "-" && ::isatty(STDOUT_FILENO) == 1);
  StatusCallback on_status;
  if (config.live_status && ::isatty(STDOUT_FILENO) == 1) {
    on_status = [&status](const LiveStatus& s) { status.show(s); };
  }
  const RunResult result = run_load(config, on_status);
  status.clear();
  emit(result, outputs, config.quiet);
  return 0;
}

int merge_command(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: echolab-loadgen merge A.json B.json ... [--json OUT] [--hgrm FILE] [--hlog FILE]\n"
      "Merges results of one configuration run at the same time by several generators:\n"
      "counts and rates add, histograms merge exactly.\n\nOptions");
  // clang-format off
  desc.add_options()
    ("help,h", "show this help")
    ("json", po::value<std::string>(), "write the merged JSON result to FILE ('-': stdout)")
    ("hgrm", po::value<std::string>(), "write the merged latency distribution (.hgrm)")
    ("hlog", po::value<std::string>(), "write the merged per-interval corrected latency (.hlog)")
    ("force", "merge even if the measured windows do not overlap")
    ("quiet,q", "no summary table")
    ("input", po::value<std::vector<std::string>>(), "result files");
  // clang-format on
  po::positional_options_description positional;
  positional.add("input", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string("merge: ") + e.what() + " (see merge --help)");
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  const auto files = vm.count("input") ? vm["input"].as<std::vector<std::string>>()
                                       : std::vector<std::string>{};
  auto path = [&vm](const char* option) {
    return vm.count(option) ? vm[option].as<std::string>() : std::string();
  };
  if (files.size() < 2) {
    throw UsageError("merge needs at least two result files");
  }
  const Outputs outputs{path("json"), path("hgrm"), path("hlog")};
  check_outputs(outputs);
  std::vector<MergeInput> inputs;
  for (const std::string& file : files) {
    std::ifstream in(file);
    if (!in) {
      throw UsageError("merge: cannot open " + file + ": " + std::strerror(errno));
    }
    try {
      inputs.push_back(MergeInput{file, result_from_json(nlohmann::json::parse(in))});
    } catch (const std::exception& e) {
      throw UsageError("merge: " + file + " is not a usable echolab-loadgen result: " + e.what());
    }
  }
  const RunResult merged = merge_results(inputs, vm.count("force") > 0);
  emit(merged, outputs, vm.count("quiet") > 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args.front() == "merge") {
      args.erase(args.begin());
      return merge_command(args);
    }
    return run_command(args);
  } catch (const UsageError& e) {
    // printable(): a user's argument echoed back must not forge lines on the terminal.
    std::cerr << ("echolab-loadgen: " + printable(e.what()) + "\n") << std::flush;
    return kUsageExit;
  } catch (const std::bad_alloc&) {
    std::cerr << "echolab-loadgen: out of memory (std::bad_alloc): fewer --connections or "
                 "--threads, or a smaller --size or --pipeline, need less\n";
    return kSystemExit;
  } catch (const std::exception& e) {
    std::cerr << ("echolab-loadgen: " + printable(e.what()) + "\n") << std::flush;
    return kSystemExit;
  }
}
