#pragma once
// The command line of echolab-loadgen: Boost.Program_options in, a validated LoadConfig out.
// Every mistake, including combinations that cannot work (a pipeline on raw datagrams, a
// rate in closed mode), becomes a UsageError carrying one line that says what to change.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/config.h"

namespace echolab {

// The ranges of the numeric options (each refused outside it with one line).
inline constexpr int kMaxConnections = 100'000;
inline constexpr int kMaxThreads = 256;
inline constexpr int kMaxPipeline = 4096;
// The pacer keeps intended times in whole nanoseconds: past 10^8 msgs/s one message is due
// every 10 ns, beyond what any generator can send; below 0.001 msgs/s (one per ~17 min)
// nothing would be sent in a run.
inline constexpr double kMinRate = 1e-3;
inline constexpr double kMaxRate = 1e8;

// A command built on echolab-loadgen's options (echolab-loadgen-mpi) says what it is in its
// own help text and adds options of its own, each taking a value with a default.
struct CommandFlavour {
  struct Option {
    std::string name;
    std::string default_value;
    std::string help;
  };
  std::string usage;  // the head of --help; empty: echolab-loadgen's
  std::vector<Option> options;
};

struct ParsedCommand {
  enum class Action { run, help, version };
  Action action = Action::run;
  std::string help_text;  // for Action::help
  LoadConfig config;      // for Action::run
  std::map<std::string, std::string> extra;  // the flavour's options, by name, as given
};

// `args` excludes the program name. Throws UsageError.
[[nodiscard]] ParsedCommand parse_command_line(const std::vector<std::string>& args,
                                               const CommandFlavour& flavour = {});

// "64", "64..4096" (uniform), "64:8,1024:1,65000:1" (size:weight list).
[[nodiscard]] SizeDistribution parse_size(std::string_view text);

// "0,2,4-7" -> {0,2,4,5,6,7}.
[[nodiscard]] std::vector<int> parse_cpu_list(std::string_view text);

// Rejects impossible combinations and out-of-range values. Throws UsageError.
void validate(LoadConfig& config);

}  // namespace echolab
