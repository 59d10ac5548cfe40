// echolab-loadgen: the load generator's command. Parses, runs, reports; every user mistake
// is one line on stderr and exit status 2, a system failure one line and exit status 1.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
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

enum class InputKind { result, log };

const char* describe(InputKind kind) {
  return kind == InputKind::result ? "a JSON result" : "an interval log";
}

std::string read_input(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw UsageError("merge: cannot open " + file + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw UsageError("merge: cannot read " + file + ": " + std::strerror(errno));
  }
  return text.str();
}

// What a merge input is, by its first characters (a result opens with '{'; a log with a
// "#[" comment, the legend or a tagged interval), else by its extension; nullopt if neither.
std::optional<InputKind> input_kind(const std::string& file, std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  const std::string_view head = first == std::string_view::npos ? "" : text.substr(first);
  if (head.starts_with('{')) return InputKind::result;
  if (head.starts_with("#[") || head.starts_with("\"StartTimestamp\"") ||
      head.starts_with("Tag=")) {
    return InputKind::log;
  }
  const auto extension = std::filesystem::path(file).extension();
  if (extension == ".json") return InputKind::result;
  if (extension == ".hlog") return InputKind::log;
  return std::nullopt;
}

void merge_logs(const std::vector<std::string>& files, const std::vector<std::string>& texts,
                const Outputs& outputs, bool force, bool quiet) {
  if (!outputs.json.empty()) {
    throw UsageError(
        "merge: --json needs JSON results to merge; interval logs hold histograms "
        "only (write --hlog or --hgrm)");
  }
  std::vector<LogText> logs;
  for (std::size_t i = 0; i < files.size(); ++i) logs.push_back(LogText{files[i], texts[i]});
  const IntervalLog merged = merge_log_texts(logs, force);
  std::string hgrm;
  if (!outputs.hgrm.empty()) {
    const std::optional<Histogram> corrected = tag_total(merged, "corrected");
    if (!corrected) {
      throw UsageError(
          "merge: --hgrm is the sum of the corrected intervals, and the logs have "
          "none (no line tagged corrected)");
    }
    std::ostringstream text;
    corrected->write_hgrm(text, 1000.0);
    hgrm = text.str();
  }
  if (!outputs.hlog.empty()) write_output(outputs.hlog, hlog_text(merged));
  if (!outputs.hgrm.empty()) write_output(outputs.hgrm, hgrm);
  if (!quiet) {
    const bool stdout_taken = same_output(outputs.hgrm, "-") || same_output(outputs.hlog, "-");
    print_log_summary(stdout_taken ? std::cerr : std::cout, merged, logs.size());
  }
}

int merge_command(const std::vector<std::string>& args) {
  po::options_description desc(
      "Usage: echolab-loadgen merge A.json B.json ... [--json OUT] [--hgrm FILE] [--hlog FILE]\n"
      "       echolab-loadgen merge A.hlog B.hlog ... [--hlog OUT] [--hgrm FILE]\n"
      "Merges what several generators measured of one load at the same time.\n"
      "JSON results (one configuration): counts and rates add, histograms merge exactly.\n"
      "Interval logs (.hlog, HdrHistogram's format; every tag): intervals are aligned on\n"
      "absolute time (each log's BaseTime + the interval's start). The slot is the logs'\n"
      "interval length (each log's median; they must agree within 1 ms or 0.1 %), the\n"
      "shortest rounded down to the ms, counted from the earliest interval of all; intervals\n"
      "of one tag whose starts fall in one slot are added bucket by bucket. The merged log\n"
      "starts at the earliest input's StartTime; --hgrm is the sum of its corrected\n"
      "intervals; --json needs results.\n"
      "Inputs whose spans do not overlap are refused unless --force.\n\nOptions");
  // clang-format off
  desc.add_options()
    ("help,h", "show this help")
    ("json", po::value<std::string>(), "write the merged JSON result to FILE ('-': stdout)")
    ("hgrm", po::value<std::string>(), "write the merged latency distribution (.hgrm)")
    ("hlog", po::value<std::string>(), "write the merged interval log (.hlog): from results the "
                                       "corrected intervals, from logs every tag")
    ("force", "merge even if the inputs did not run at the same time")
    ("quiet,q", "no summary table")
    ("input", po::value<std::vector<std::string>>(), "result files or interval logs");
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
    throw UsageError("merge needs at least two inputs (results or interval logs)");
  }
  const Outputs outputs{path("json"), path("hgrm"), path("hlog")};
  check_outputs(outputs);
  std::vector<std::string> texts;
  std::optional<InputKind> kind;
  for (const std::string& file : files) {
    texts.push_back(read_input(file));
    const std::optional<InputKind> this_kind = input_kind(file, texts.back());
    if (!this_kind) {
      throw UsageError("merge: " + file +
                       " is neither an echolab-loadgen result (JSON) nor an "
                       "HdrHistogram interval log (.hlog)");
    }
    if (kind && *kind != *this_kind) {
      throw UsageError("merge: " + files.front() + " is " + describe(*kind) + ", " + file + " " +
                       describe(*this_kind) + ": merge results or logs, not both");
    }
    kind = this_kind;
  }
  if (kind == InputKind::log) {
    merge_logs(files, texts, outputs, vm.count("force") > 0, vm.count("quiet") > 0);
    return 0;
  }
  std::vector<MergeInput> inputs;
  for (std::size_t i = 0; i < files.size(); ++i) {
    try {
      inputs.push_back(MergeInput{files[i], result_from_json(nlohmann::json::parse(texts[i]))});
    } catch (const std::exception& e) {
      throw UsageError("merge: " + files[i] +
                       " is not a usable echolab-loadgen result: " + e.what());
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
