#pragma once
// Errors as echolab reports them. A failed system call becomes a std::system_error whose
// what() reads "bind: Address already in use"; a user's mistake is a UsageError. Both are
// thrown only during set-up and argument parsing; main() turns them into one line on stderr
// and exit status 2. The serving hot path never throws: it counts errors instead.
#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace echolab {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The error of system call `call` that failed with errno `err`.
[[nodiscard]] std::system_error sys_error(std::string_view call, int err = errno);

[[noreturn]] void throw_sys_error(std::string_view call, int err = errno);

// "call: strerror(err)" without allocating an exception (for logs from worker threads).
[[nodiscard]] std::string describe_errno(std::string_view call, int err);

}  // namespace echolab
