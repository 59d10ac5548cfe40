// echolab-loadgen at the edges of what a run can do: a rate no generator keeps up with, more
// connections than the process may open, more memory than the machine has. Each ends with a
// result written in time or one clear line, never a spin, a watchdog exit or a bare
// std::bad_alloc.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "tests/loadgen/loadgen_harness.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

// Sanitizers reserve terabytes of address space: RLIMIT_AS cannot be applied under them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr rlim_t kAddressSpace = rlim_t{1} << 30;  // 1 GiB: the binary and a few threads fit

void expect_one_line(const LoadgenOutcome& run, int code, const std::string& needle) {
  EXPECT_TRUE(run.status.exited) << run.describe();
  EXPECT_EQ(run.status.code, code) << run.describe();
  const auto lines = split_lines(run.err);
  ASSERT_EQ(lines.size(), 1u) << run.describe();
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
  EXPECT_TRUE(run.json.is_null()) << run.describe();
}

// The pacer at 10^8 msgs/s over udp (a send() per message, ~1 us) is always behind: it used
// to send for ever in one turn of the loop, never looking at the clock, until the watchdog
// ended the process 10 s past the time limit, without a result.
TEST(LoadgenLimits, AnUnkeepableRateStillEndsOnTimeWithAResult) {
  TempDir dir("loadgen-limits");
  EchoServerProcess server = start_echolab_server("iterative-udp", "udp", "framed", "127.0.0.1:0");
  const auto started = std::chrono::steady_clock::now();
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", server.ready().address, "--transport", "udp", "--mode", "open", "--rate",
            "1e8", "-c", "2", "--warmup", "0", "--duration", "0.5s", "--timeout", "200ms",
            "--time-limit", "3s", "--quiet", "--no-status"},
      milliseconds(30'000));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(run.status.success()) << run.describe();
  ASSERT_TRUE(run.json.is_object()) << run.describe();
  EXPECT_FALSE(run.json["valid"].get<bool>());  // it could not send at the asked rate
  EXPECT_GT(run.json["messages"]["sent"].get<std::uint64_t>(), 0u);
  // The time limit (3 s) holds; the margin is for process start and a loaded machine.
  EXPECT_LT(took, std::chrono::seconds(8)) << run.describe();
}

// 200 connections to a select server, the load generator under RLIMIT_NOFILE soft:hard.
LoadgenOutcome run_under_file_limit(TempDir& dir, rlim_t soft, rlim_t hard, const char* duration) {
  EchoServerProcess server = start_echolab_server("select", "tcp", "framed", "127.0.0.1:0");
  SpawnOptions options;
  options.limits.push_back({RLIMIT_NOFILE, soft, hard});
  return run_loadgen(dir, {"--target", server.ready().address, "-c", "200", "--warmup", "0", "--duration", duration,
                           "--quiet", "--no-status"},
                     milliseconds(30'000), options);
}

// RLIMIT_NOFILE 64 and 200 connections: one line naming the limit, before any connect.
TEST(LoadgenLimits, MoreConnectionsThanFileDescriptorsAreRefused) {
  TempDir dir("loadgen-limits");
  const LoadgenOutcome run = run_under_file_limit(dir, 64, 64, "0.2s");
  expect_one_line(run, 2, "RLIMIT_NOFILE");
}

// A soft RLIMIT_NOFILE of 64 under a hard one of 4096, and 200 connections: the generator
// raises its soft limit to what the run needs, says so in one line on stderr (what it was,
// what it became), and every echo comes back verified.
TEST(LoadgenLimits, ALowSoftFileLimitIsRaisedAndSaidSo) {
  TempDir dir("loadgen-limits");
  const LoadgenOutcome run = run_under_file_limit(dir, 64, 4096, "0.3s");
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_EQ(run.json["config"]["connections"], 200) << run.describe();
  EXPECT_EQ(loadgen_count(run.json, "errors", "total"), 0u) << run.describe();
  EXPECT_GT(loadgen_count(run.json, "messages", "received"), 0u) << run.describe();
  const auto lines = split_lines(run.err);
  ASSERT_EQ(lines.size(), 1u) << run.describe();
  EXPECT_NE(lines[0].find("raised the RLIMIT_NOFILE soft limit from 64 to 217 (hard limit 4096)"),
            std::string::npos)
      << lines[0];
}

// The hard limit too low for the run: one line naming both limits, before any connect.
TEST(LoadgenLimits, AHardFileLimitTooLowIsOneLineNamingIt) {
  TempDir dir("loadgen-limits");
  const LoadgenOutcome run = run_under_file_limit(dir, 64, 128, "0.2s");
  expect_one_line(run, 2, "RLIMIT_NOFILE allows 64 (hard limit 128)");
}

// 100,000 connections of 16 MiB messages need terabytes: refused up front with what it
// would take. (RLIMIT_AS keeps a regression from eating the machine's memory first.)
TEST(LoadgenLimits, MoreMemoryThanTheMachineHasIsRefused) {
  if (kSanitized) GTEST_SKIP() << "RLIMIT_AS does not work under a sanitizer";
  TempDir dir("loadgen-limits");
  EchoServerProcess server = start_echolab_server("select", "tcp", "framed", "127.0.0.1:0");
  SpawnOptions options;
  options.limits.push_back({RLIMIT_AS, kAddressSpace, kAddressSpace});
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", server.ready().address, "-c", "100000", "--size", "16777216",
            "--duration", "0.2s", "--quiet", "--no-status"},
      milliseconds(30'000), options);
  expect_one_line(run, 2, "MiB of buffers");
}

// 10,000 connections of 64-byte messages used to take 1.25 GiB of buffers (64 KiB each
// way, each, whatever they held); sized to what is in flight they need a few MiB.
TEST(LoadgenLimits, BuffersAreSizedToWhatIsInFlight) {
  if (kSanitized) GTEST_SKIP() << "RLIMIT_AS does not work under a sanitizer";
  TempDir dir("loadgen-limits");
  SilentListener silent;
  SpawnOptions options;
  options.limits.push_back({RLIMIT_AS, kAddressSpace, kAddressSpace});
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", silent.address(), "-c", "10000", "--warmup", "0", "--duration", "0.1s",
            "--timeout", "100ms", "--quiet", "--no-status"},
      milliseconds(60'000), options);
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_EQ(run.json["config"]["connections"], 10000) << run.describe();
}

// Past the up-front check, an allocation that still fails is one clear line (exit 1).
TEST(LoadgenLimits, OutOfMemoryIsOneClearLine) {
  if (kSanitized) GTEST_SKIP() << "RLIMIT_AS does not work under a sanitizer";
  TempDir dir("loadgen-limits");
  EchoServerProcess server = start_echolab_server("select", "tcp", "framed", "127.0.0.1:0");
  SpawnOptions options;
  options.limits.push_back({RLIMIT_AS, kAddressSpace, kAddressSpace});
  // 40 connections x 48 MiB: well under half of any test machine, well over 1 GiB.
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", server.ready().address, "-c", "40", "--size", "16777216", "--duration",
            "0.2s", "--quiet", "--no-status"},
      milliseconds(30'000), options);
  expect_one_line(run, 1, "out of memory");
}

}  // namespace
}  // namespace echolab::test
