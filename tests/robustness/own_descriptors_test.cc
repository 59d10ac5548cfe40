// An engine that can watch only descriptors below a limit (select: FD_SETSIZE, 1024) started
// with many descriptors already open (inherited from its parent), so that its own listener
// and wake pipe are numbered near or past the limit. Where it cannot watch its own
// descriptors it must refuse to run, at once, with one clear line naming the limit and a
// non-zero exit; never put them in an fd_set (a write past its end), hang or ignore SIGTERM.
// Where they fit, it serves (or refuses and counts clients numbered past the limit) and
// stops cleanly. echolab-fd-holder opens the descriptors and execs the server.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/select.h>

#include <string>
#include <vector>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"

namespace echolab::test {
namespace {

constexpr milliseconds kReadyTimeout{15'000};
constexpr milliseconds kIoTimeout{5'000};
constexpr milliseconds kExitDeadline{5'000};
constexpr rlim_t kFdLimit = 4096;

enum class Outcome { refused_to_start, served, failed };

struct StartResult {
  Outcome outcome = Outcome::failed;
  std::string why;  // what went wrong, for `failed`
};

bool fd_limit_available() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_max >= kFdLimit || ::geteuid() == 0;
}

// An exit of the refusal: non-zero, and exactly one line on stderr naming the limit.
StartResult check_refusal(Process& server, const ExitStatus& status, std::string_view limit) {
  // The exit can be seen before the last of stderr is read from the pipe: wait for its end.
  if (!server.wait_for_output_closed(kExitDeadline)) {
    return {Outcome::failed, "stderr still open after the exit: " + server.stderr_text()};
  }
  const auto err = server.stderr_text();
  if (status.success() || !status.exited) {
    return {Outcome::failed, "exit " + status.describe() + ", stderr: " + err};
  }
  const auto lines = split_lines(err);
  if (lines.size() != 1 || lines[0].find(limit) == std::string::npos) {
    return {Outcome::failed, "not one line naming " + std::string(limit) + " on stderr: '" + err + "'"};
  }
  return {Outcome::refused_to_start, ""};
}

// Starts `engine` with `inherited` descriptors open; then either it refused to start, or a
// client is served or refused at once and SIGTERM stops it with exit 0.
StartResult run_with(const EngineInfo& engine, int inherited) {
  SpawnOptions options;
  options.limits = {{RLIMIT_NOFILE, kFdLimit, kFdLimit}};
  Process server({ECHOLAB_FD_HOLDER, std::to_string(inherited), server_binary(),
                  "--engine", std::string(engine.name), "--listen", "127.0.0.1:0", "--protocol", "raw"},
                 options);
  if (!server.wait_for_stdout_line(kReadyTimeout)) {
    if (auto status = server.wait_for_exit(kExitDeadline)) {
      return check_refusal(server, *status, engine.descriptors.name);
    }
    return {Outcome::failed, "no ready line, no exit; stderr: " + server.stderr_text()};
  }
  const auto ready = parse_ready_line(split_lines(server.stdout_text()).front());
  if (!ready) {
    return {Outcome::failed, "bad ready line: " + server.stdout_text()};
  }
  std::string client;
  try {
    auto fd = connect_socket(parse_socket_address(ready->address), SOCK_STREAM, kIoTimeout);
    std::vector<std::byte> scratch;
    const std::byte ping[] = {std::byte{'x'}};
    client = check_echo(fd.get(), ping, scratch);  // empty: served
  } catch (const std::exception& error) {
    client = error.what();  // the listener was already gone: the refusal's exit
  }
  if (auto status = server.wait_for_exit(milliseconds(500))) {
    // A refusal must come before the ready line: a caller that saw it would count on a server.
    return {Outcome::failed, "announced itself, then exited " + status->describe() + ": " + server.stderr_text()};
  }
  // Running: the client was served, or refused at once as its descriptor is past the limit.
  if (client.find("timed out") != std::string::npos) {
    return {Outcome::failed, "a client was left hanging: " + client};
  }
  server.send_signal(SIGTERM);
  const auto status = server.wait_for_exit(kExitDeadline);
  if (!status) {
    return {Outcome::failed, "no exit within 5 s of SIGTERM"};
  }
  if (!status->success()) {
    return {Outcome::failed,
            "SIGTERM: " + status->describe() + ", stderr: " + server.stderr_text()};
  }
  return {Outcome::served, ""};
}

class OwnDescriptors : public testing::TestWithParam<std::string> {};

TEST_P(OwnDescriptors, AllPastTheLimitRefusesToStartAtOnce) {
  const EngineInfo& engine = engine_info(GetParam());
  if (const auto reason = skip_reason(engine.name); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  if (!fd_limit_available()) {
    GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to " << kFdLimit;
  }
  const StartResult result = run_with(engine, engine.descriptors.below + 76);
  EXPECT_EQ(result.outcome, Outcome::refused_to_start) << result.why;
}

// Inherited counts around the limit: the listener, the wake pipe and the first client land
// on the limit - 1, the limit or the limit + 1 in turn, whatever order the server opens them
// in. Each run must end one of the two clean ways, and both must be seen.
TEST_P(OwnDescriptors, AroundTheLimitRefusesOrServesNeverHangs) {
  const EngineInfo& engine = engine_info(GetParam());
  if (const auto reason = skip_reason(engine.name); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  if (!fd_limit_available()) {
    GTEST_SKIP() << "cannot raise RLIMIT_NOFILE to " << kFdLimit;
  }
  int refused = 0;
  int served = 0;
  const int below = engine.descriptors.below;
  for (int inherited = below - 12; inherited <= below - 2; ++inherited) {
    const StartResult result = run_with(engine, inherited);
    EXPECT_NE(result.outcome, Outcome::failed) << inherited << " inherited: " << result.why;
    refused += result.outcome == Outcome::refused_to_start ? 1 : 0;
    served += result.outcome == Outcome::served ? 1 : 0;
  }
  EXPECT_GT(refused, 0) << "no run put the server's own descriptors past " << engine.descriptors.name;
  EXPECT_GT(served, 0) << "no run had them all below " << engine.descriptors.name;
}

INSTANTIATE_TEST_SUITE_P(Engines, OwnDescriptors,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.descriptors.below >= 0;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OwnDescriptors);

}  // namespace
}  // namespace echolab::test
