#include "core/command_line.h"

#include <cctype>
#include <string>
#include <string_view>

#include "core/address.h"
#include "core/error.h"

namespace echolab {
namespace {

bool has_placeholder(std::string_view arg) {
  for (std::size_t open = arg.find('%'); open != std::string_view::npos; open = arg.find('%', open + 1)) {
    std::size_t end = open + 1;
    while (end < arg.size() && (std::islower(static_cast<unsigned char>(arg[end])) || arg[end] == '_')) {
      ++end;
    }
    if (end < arg.size() && arg[end] == '%' && end > open + 1) {
      return true;
    }
  }
  return false;
}

}  // namespace

void reject_placeholder_tokens(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (has_placeholder(args[i])) {
      throw UsageError("argument " + std::to_string(i + 1) + " contains a %word% token, which is not allowed");
    }
  }
}

void reject_placeholder_tokens(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc && argv[i] != nullptr; ++i) {
    args.emplace_back(argv[i]);
  }
  reject_placeholder_tokens(args);
}

void reject_stray_arguments(const std::vector<std::string>& leftovers) {
  if (!leftovers.empty()) {
    throw UsageError("unexpected argument '" + printable(leftovers.front()) +
                     "': every value follows its option, as in --name VALUE");
  }
}

}  // namespace echolab
