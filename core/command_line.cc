#include "core/command_line.h"

#include <cctype>
#include <string>
#include <string_view>

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

void reject_placeholder_tokens(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != nullptr && has_placeholder(argv[i])) {
      throw UsageError("argument " + std::to_string(i) + " contains a %word% token, which is not allowed");
    }
  }
}

}  // namespace echolab
