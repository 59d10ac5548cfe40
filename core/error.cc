#include "core/error.h"

#include <cstring>

namespace echolab {

std::system_error sys_error(std::string_view call, int err) {
  return std::system_error(err, std::generic_category(), std::string(call));
}

void throw_sys_error(std::string_view call, int err) { throw sys_error(call, err); }

std::string describe_errno(std::string_view call, int err) {
  std::string text(call);
  text += ": ";
  text += std::strerror(err);
  return text;
}

}  // namespace echolab
