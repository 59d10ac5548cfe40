#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "tests/support/proc_fs.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::array<Fd, 2> make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    throw_errno("pipe2");
  }
  return {Fd(fds[0]), Fd(fds[1])};
}

// Runs in the forked child of a multi-threaded parent: async-signal-safe calls only.
[[noreturn]] void exec_child(char* const* argv, char* const* envp, const SpawnOptions& options,
                             pid_t parent, int stdin_fd, int out_fd, int err_fd, int exec_error_fd) {
  // Die with the test binary (a ctest timeout SIGKILLs it and runs no destructor).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    ::_exit(127);
  }
  // A clean signal state: whatever the test binary blocked or ignored must not leak into
  // the server's behaviour on SIGTERM, SIGPIPE or SIGCHLD.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    ::sigaction(sig, &default_action, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  const auto fail = [exec_error_fd] {
    const int err = errno;
    [[maybe_unused]] auto n = ::write(exec_error_fd, &err, sizeof err);
    ::_exit(127);
  };
  if (::dup2(stdin_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
      ::dup2(err_fd, STDERR_FILENO) < 0) {
    fail();
  }
  for (const auto& limit : options.limits) {
    const rlimit value{limit.soft, limit.hard};
    if (::setrlimit(limit.resource, &value) != 0) {
      fail();
    }
  }
  if (options.run_as_gid >= 0 &&
      (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(options.run_as_gid)) != 0)) {
    fail();
  }
  if (options.run_as_uid >= 0 && ::setuid(static_cast<uid_t>(options.run_as_uid)) != 0) {
    fail();
  }
  // setuid clears the dumpable flag, and with it the parent-death signal: set it again.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) {
    ::_exit(127);
  }
  // Descriptors the test binary opened without O_CLOEXEC (by gtest, say) must not reach
  // the server and blur its descriptor counts. Marking rather than closing keeps the
  // exec-error pipe usable until exec succeeds. Best effort (needs Linux 5.11).
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  if (envp != nullptr) {
    ::execve(argv[0], argv, envp);
  } else {
    ::execv(argv[0], argv);
  }
  fail();
  ::_exit(127);  // not reached: fail() exits
}

// The environment of a child with `extra` ("NAME=VALUE") added or replacing; built before
// fork, as the child may only make async-signal-safe calls.
std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> entries;
  const auto overridden = [&extra](std::string_view entry) {
    const auto name = entry.substr(0, entry.find('=') + 1);
    for (const auto& replacement : extra) {
      if (replacement.starts_with(name)) {
        return true;
      }
    }
    return false;
  };
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!overridden(*entry)) {
      entries.emplace_back(*entry);
    }
  }
  entries.insert(entries.end(), extra.begin(), extra.end());
  return entries;
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) {
    return "exit " + std::to_string(code);
  }
  return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
}

Process::Process(std::vector<std::string> argv, const SpawnOptions& options)
    : argv_(std::move(argv)) {
  if (argv_.empty()) {
    throw std::invalid_argument("Process: empty argv");
  }
  Fd stdin_fd(::open(options.stdin_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!stdin_fd.valid()) {
    throw_errno("open " + options.stdin_path);
  }
  auto [out_read, out_write] = make_pipe();
  auto [err_read, err_write] = make_pipe();
  auto [exec_error_read, exec_error_write] = make_pipe();
  auto [wake_read, wake_write] = make_pipe();

  std::vector<char*> raw_argv;
  for (auto& arg : argv_) {
    raw_argv.push_back(arg.data());
  }
  raw_argv.push_back(nullptr);
  std::vector<std::string> environment;
  std::vector<char*> raw_environment;
  if (!options.environment.empty()) {
    environment = child_environment(options.environment);
    for (auto& entry : environment) {
      raw_environment.push_back(entry.data());
    }
    raw_environment.push_back(nullptr);
  }

  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    throw_errno("fork");
  }
  if (pid_ == 0) {
    exec_child(raw_argv.data(), raw_environment.empty() ? nullptr : raw_environment.data(),
               options, parent, stdin_fd.get(), out_write.get(), err_write.get(),
               exec_error_write.get());
  }
  // Only the child may hold the write ends, or end-of-file would never come.
  out_write.reset();
  err_write.reset();
  exec_error_write.reset();

  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_error_read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {  // exec failed: the pipe closed on exec otherwise
    int ignored;
    ::waitpid(pid_, &ignored, 0);
    throw std::system_error(exec_errno, std::generic_category(), "exec " + argv_[0]);
  }

  out_.fd = std::move(out_read);
  err_.fd = std::move(err_read);
  wake_read_ = std::move(wake_read);
  wake_write_ = std::move(wake_write);
  collector_ = std::thread([this] { collect_output(); });
}

Process::~Process() {
  if (!reaped()) {
    kill_tree();
  }
  if (collector_.joinable()) {
    const char byte = 0;
    [[maybe_unused]] auto n = ::write(wake_write_.get(), &byte, 1);
    collector_.join();
  }
}

void Process::kill_tree() {
  // Descendants first, while they are still listed as the child's: once it dies they are
  // re-parented and could no longer be found from it.
  const auto descendants = list_descendants(pid_);
  for (const auto& descendant : descendants) {
    kill_if_same_process(descendant, SIGKILL);
  }
  ::kill(pid_, SIGKILL);
  if (!wait_for_exit(milliseconds(10'000))) {
    return;  // unkillable (stuck in the kernel): better to leak than to hang
  }
  for (const auto& descendant : descendants) {
    reap_if_adopted(descendant, milliseconds(1'000));
  }
}

std::string Process::command_line() const {
  std::string line;
  for (const auto& arg : argv_) {
    line += (line.empty() ? "" : " ") + arg;
  }
  return line;
}

bool Process::send_signal(int signal) { return !reaped() && ::kill(pid_, signal) == 0; }

std::optional<ExitStatus> Process::wait_for_exit(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!status_) {
    int raw = 0;
    const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      ExitStatus status;
      status.exited = WIFEXITED(raw);
      status.code = status.exited ? WEXITSTATUS(raw) : 0;
      status.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
      status_ = status;
    } else if (r < 0 && errno != EINTR) {
      throw_errno("waitpid");
    } else if (Clock::now() >= deadline) {
      return std::nullopt;
    } else {
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  return status_;
}

void Process::collect_output() {
  std::array<char, 65536> buffer;
  Pipe* pipes[] = {&out_, &err_};
  for (;;) {
    std::array<pollfd, 3> fds{};
    for (int i = 0; i < 2; ++i) {
      // Only this thread writes `closed`, so reading it here needs no lock.
      fds[i] = {pipes[i]->closed ? -1 : pipes[i]->fd.get(), POLLIN, 0};
    }
    fds[2] = {wake_read_.get(), POLLIN, 0};
    if (out_.closed && err_.closed) {
      return;
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[2].revents != 0) {
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      const ssize_t n = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      const std::lock_guard lock(mutex_);
      if (n > 0) {
        pipes[i]->text.append(buffer.data(), static_cast<std::size_t>(n));
      } else {
        pipes[i]->closed = true;
      }
      output_changed_.notify_all();
    }
  }
}

std::string Process::output(OutputStream stream) const {
  const std::lock_guard lock(mutex_);
  return stream == OutputStream::out ? out_.text : err_.text;
}

bool Process::wait_for_output(OutputStream stream,
                              const std::function<bool(std::string_view)>& done,
                              milliseconds timeout) {
  const Pipe& pipe = stream == OutputStream::out ? out_ : err_;
  std::unique_lock lock(mutex_);
  output_changed_.wait_for(lock, timeout, [&] { return pipe.closed || done(pipe.text); });
  return done(pipe.text);
}

bool Process::wait_for_stdout_line(milliseconds timeout) {
  return wait_for_output(
      OutputStream::out, [](std::string_view text) { return text.find('\n') != text.npos; },
      timeout);
}

bool Process::wait_for_stderr_containing(std::string_view needle, milliseconds timeout) {
  return wait_for_output(
      OutputStream::err, [needle](std::string_view text) { return text.find(needle) != text.npos; },
      timeout);
}

bool Process::wait_for_output_closed(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return output_changed_.wait_for(lock, timeout, [&] { return out_.closed && err_.closed; });
}

CompletedProcess run_process(std::vector<std::string> argv, milliseconds timeout,
                             const SpawnOptions& options) {
  Process process(std::move(argv), options);
  const auto status = process.wait_for_exit(timeout);
  if (!status) {
    throw std::runtime_error(process.command_line() + ": still running after " +
                             std::to_string(timeout.count()) +
                             " ms; stderr: " + process.stderr_text());
  }
  process.wait_for_output_closed(milliseconds(2'000));
  return {*status, process.stdout_text(), process.stderr_text()};
}

std::optional<std::string> find_in_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    std::string candidate(dirs.substr(0, colon));
    candidate += "/";
    candidate += name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    dirs = colon == dirs.npos ? std::string_view() : dirs.substr(colon + 1);
  }
  return std::nullopt;
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    lines.emplace_back(text.substr(0, newline));
    text = newline == text.npos ? std::string_view() : text.substr(newline + 1);
  }
  return lines;
}

}  // namespace echolab::test
