#pragma once
// Process: a child program under test, started with fork/exec, its stdout and stderr
// collected by a background thread (so a chatty child can never block on a full pipe), and
// every wait bounded by a deadline. Its destructor kills (SIGKILL, by PID) the child and the
// child's own descendants if it is still running, then reaps it: a failing test never leaves
// processes behind.
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/fd.h"

namespace echolab::test {

using std::chrono::milliseconds;

struct ExitStatus {
  bool exited = false;  // normal exit; otherwise killed by `signal`
  int code = 0;
  int signal = 0;

  [[nodiscard]] bool success() const { return exited && code == 0; }
  [[nodiscard]] std::string describe() const;  // "exit 2", "killed by signal 9 (Killed)"
};

// A resource limit the child applies to itself before exec (RLIMIT_NOFILE, RLIMIT_NPROC...).
struct ResourceLimit {
  int resource = 0;
  rlim_t soft = 0;
  rlim_t hard = 0;
};

struct SpawnOptions {
  std::string stdin_path = "/dev/null";  // the child's standard input
  // "NAME=VALUE" entries added to (or replacing in) the child's environment only, say
  // LD_PRELOAD for a fault-injection shim that must never reach the test binary itself.
  std::vector<std::string> environment;
  // Applied in the child, in order, before exec; a failure aborts the spawn (exec error).
  std::vector<ResourceLimit> limits;
  // If set (>= 0), the child drops to this group and user before exec (after the limits):
  // RLIMIT_NPROC is not enforced for root, so fork-failure tests run the server as nobody.
  int run_as_uid = -1;
  int run_as_gid = -1;
};

enum class OutputStream { out, err };

class Process {
 public:
  // argv[0] is the program's path (no PATH search). Throws std::runtime_error when it cannot
  // be started. The child gets PR_SET_PDEATHSIG(SIGKILL): if the test binary itself is
  // killed (a ctest timeout), the child dies with it. The signal is tied to the spawning
  // thread, so spawn from a thread that outlives the process (the test's own thread).
  explicit Process(std::vector<std::string> argv, const SpawnOptions& options = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
  [[nodiscard]] std::string command_line() const;

  // Sends `signal` unless the child was already reaped (its PID could belong to another
  // process by now). Returns false if it was not sent.
  bool send_signal(int signal);

  // Reaps the child if it exits within `timeout`.
  [[nodiscard]] std::optional<ExitStatus> wait_for_exit(milliseconds timeout);
  [[nodiscard]] bool reaped() const { return status_.has_value(); }

  // Snapshots of everything the child wrote so far.
  [[nodiscard]] std::string output(OutputStream stream) const;
  [[nodiscard]] std::string stdout_text() const { return output(OutputStream::out); }
  [[nodiscard]] std::string stderr_text() const { return output(OutputStream::err); }

  // Waits until done(text so far) holds, the stream is closed, or `timeout` passes; returns
  // done(final text).
  bool wait_for_output(OutputStream stream, const std::function<bool(std::string_view)>& done,
                       milliseconds timeout);
  bool wait_for_stdout_line(milliseconds timeout);
  bool wait_for_stderr_containing(std::string_view needle, milliseconds timeout);
  // Waits for end-of-file on both pipes: every writer, the child's descendants included,
  // has exited or closed them, so the collected output is complete.
  bool wait_for_output_closed(milliseconds timeout);

 private:
  struct Pipe {
    Fd fd;
    std::string text;
    bool closed = false;
  };
  void collect_output();
  void kill_tree();

  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  Pipe out_;
  Pipe err_;
  Fd wake_read_;   // written to on destruction, so the collector stops even if a
  Fd wake_write_;  // leftover descendant still holds the output pipes open
  mutable std::mutex mutex_;
  std::condition_variable output_changed_;
  std::thread collector_;
};

struct CompletedProcess {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs a program to completion. Throws std::runtime_error (with what it printed) if it does
// not exit within `timeout`; it is killed then.
[[nodiscard]] CompletedProcess run_process(std::vector<std::string> argv, milliseconds timeout,
                                           const SpawnOptions& options = {});

// The full path of `name` found in $PATH, or nullopt.
[[nodiscard]] std::optional<std::string> find_in_path(std::string_view name);

// Lines of `text` without their '\n'; a final unterminated fragment counts as a line.
[[nodiscard]] std::vector<std::string> split_lines(std::string_view text);

}  // namespace echolab::test
