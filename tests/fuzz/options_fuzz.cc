// libFuzzer harness: echolab-server's command line. Input is argv, NUL-separated. Every
// input must either parse or throw UsageError (one line for the user); anything else — a
// crash, a sanitizer report, another exception escaping — is a bug.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "servers/options.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"echolab-server"};
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(current);
  std::vector<const char*> argv;
  for (const std::string& arg : args) {
    argv.push_back(arg.c_str());
  }
  argv.push_back(nullptr);
  try {
    const auto line = echolab::parse_server_command_line(static_cast<int>(args.size()), argv.data());
    static_cast<void>(line);
  } catch (const echolab::UsageError&) {
  }
  return 0;
}
