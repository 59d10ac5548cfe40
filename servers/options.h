#pragma once
// echolab-server's command line, parsed into a ServerConfig. Separate from main() so that
// the tests and the command-line fuzzer can drive it without starting a server.
#include <string>

#include "servers/engine.h"

namespace echolab {

struct ServerCommandLine {
  enum class Action { serve, help, version, list_engines };
  Action action = Action::serve;
  std::string help_text;  // filled for Action::help
  ServerConfig config;
  std::string engine = "iterative";
  std::string stats_json;  // empty: no stats file; "-": stdout
  bool verbose = false;
  bool json = false;  // --list-engines --json
};

// Parses and validates argv (flags, ranges, engine/transport compatibility). Throws
// UsageError with one line that names the offending flag; never exits, never prints.
[[nodiscard]] ServerCommandLine parse_server_command_line(int argc, const char* const* argv);

}  // namespace echolab
