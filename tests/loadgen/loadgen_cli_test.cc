// echolab-loadgen's promises about mistakes and bad targets: one line on stderr, a non-zero
// exit (2 for the user's mistakes), nothing on stdout, and never a hang, even when the
// target accepts connections and then never answers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/loadgen/loadgen_harness.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

void expect_one_line_usage_error(const LoadgenOutcome& run, const std::string& needle) {
  EXPECT_TRUE(run.status.exited) << run.describe();
  EXPECT_EQ(run.status.code, 2) << run.describe();
  EXPECT_EQ(run.out, "") << run.describe();
  const auto lines = split_lines(run.err);
  ASSERT_EQ(lines.size(), 1u) << run.describe();
  EXPECT_EQ(lines[0].rfind("echolab-loadgen: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

// A port nobody listens on: bound, then closed.
std::string closed_port_address(int type) {
  Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  return "127.0.0.1:" + std::to_string(local_port(fd.get()));
}

struct BadCommand {
  std::vector<std::string> args;
  std::string needle;  // part of the one line it must print
};

TEST(LoadgenCli, MistakesAreOneLineAndExitTwo) {
  TempDir dir("loadgen-cli");
  const std::vector<BadCommand> cases = {
      {{}, "--target is required"},
      {{"--target", "127.0.0.1:1", "--bogus"}, "bogus"},
      {{"--target", "nocolon"}, "HOST:PORT"},
      {{"--target", "127.0.0.1:1", "--mode", "sideways"}, "--mode"},
      {{"--target", "127.0.0.1:1", "--mode", "open"}, "--rate"},
      {{"--target", "127.0.0.1:1", "--rate", "100"}, "--mode open"},
      {{"--target", "127.0.0.1:1", "--transport", "udp", "--protocol", "raw", "--pipeline", "4"},
       "--pipeline"},
      {{"--target", "127.0.0.1:1", "--transport", "udp", "--mode", "connect"}, "stream transport"},
      {{"--target", "127.0.0.1:1", "--size", "8"}, "too small"},
      {{"--target", "127.0.0.1:1", "--size", "70000", "--transport", "udp"}, "datagram"},
      {{"--target", "127.0.0.1:1", "--threads", "4", "--connections", "2"}, "--threads"},
      {{"--target", "127.0.0.1:1", "--duration", "ten"}, "--duration"},
      {{"--target", "127.0.0.1:1", "--messages", "5", "--duration", "1s"}, "one of them"},
      {{"--target", "unix:/tmp/x.sock", "--transport", "tcp"}, "unix"},
      {{"--target", "127.0.0.1:1", "--cpus", "3-1"}, "--cpus"},
      {{"--target", "127.0.0.1:1", "--json", "/nonexistent-dir/x.json"}, "cannot write"},
      // Numbers: finite, in range, whole where they count.
      {{"--target", "127.0.0.1:1", "--max-cpu", "nan"}, "--max-cpu"},
      {{"--target", "127.0.0.1:1", "--messages", "-1"}, "--messages"},
      {{"--target", "127.0.0.1:1", "--size", "64:1e308,128:1e308"}, "weights"},
      {{"--target", "127.0.0.1:1", "--seed", "-1"}, "--seed"},
      {{"--target", "127.0.0.1:1", "--cpus", "4096"}, "--cpus"},
      // Rates the pacer cannot schedule.
      {{"--target", "127.0.0.1:1", "--mode", "open", "--rate", "1e-10"}, "--rate"},
      {{"--target", "127.0.0.1:1", "--mode", "open", "--rate", "1e15"}, "--rate"},
      {{"--target", "127.0.0.1:1", "--mode", "open", "--rate", "1e9"}, "--rate"},
      // Two outputs in one file.
      {{"--target", "127.0.0.1:1", "--json", "-", "--hgrm", "-"}, "same file"},
      {{"--target", "127.0.0.1:1", "--json", "/dev/stdout", "--hgrm", "-"}, "same file"},
      {{"--target", "127.0.0.1:1", "--json", dir.file("out"), "--hgrm", dir.path() + "/./out"},
       "same file"},
      {{"merge", "a.json", "b.json", "--json", "-", "--hgrm", "-"}, "same file"},
      // A user's text echoed in the error stays on its one line.
      {{"--target", "127.0.0.1:1", "--mode", "open\necholab-loadgen: forged"}, "--mode"},
  };
  for (const BadCommand& bad : cases) {
    SCOPED_TRACE(::testing::PrintToString(bad.args));
    std::vector<std::string> args = bad.args;
    if (std::find(args.begin(), args.end(), "--json") == args.end()) {
      args.insert(args.end(), {"--json", dir.file("never.json")});
    }
    expect_one_line_usage_error(run_loadgen(dir, args, milliseconds(20'000)), bad.needle);
  }
}

TEST(LoadgenCli, HelpAndVersion) {
  TempDir dir("loadgen-cli");
  const LoadgenOutcome help = run_loadgen(dir, {"--help", "--json", "-"}, milliseconds(20'000));
  EXPECT_TRUE(help.status.success()) << help.describe();
  EXPECT_NE(help.out.find("--target"), std::string::npos);
  EXPECT_NE(help.out.find("merge"), std::string::npos);
  const LoadgenOutcome version = run_loadgen(dir, {"--version", "--json", "-"}, milliseconds(20'000));
  EXPECT_TRUE(version.status.success()) << version.describe();
  EXPECT_EQ(version.out.rfind("echolab-loadgen ", 0), 0u) << version.out;
}

TEST(LoadgenCli, UnreachableTargetsAreOneLine) {
  TempDir dir("loadgen-cli");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--target", closed_port_address(SOCK_STREAM)}, "Connection refused"},
      {{"--target", closed_port_address(SOCK_DGRAM), "--transport", "udp", "--timeout", "500ms"},
       "cannot reach"},
      {{"--target", "no-such-host.invalid:80"}, "no-such-host.invalid"},
      {{"--target", "unix:" + dir.file("nobody.sock")}, "No such file"},
  };
  for (const auto& [args, needle] : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    expect_one_line_usage_error(run_loadgen(dir, args, milliseconds(30'000)), needle);
  }
}

TEST(LoadgenCli, SilentTargetEndsWithTimeoutsNotAHang) {
  TempDir dir("loadgen-cli");
  SilentListener silent;
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", silent.address(), "-c", "2", "--warmup", "0", "--duration", "0.5s",
            "--timeout", "200ms", "--quiet", "--no-status"});
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_GE(run.json["errors"]["timeout"].get<std::uint64_t>(), 1u) << run.json["errors"].dump();
  EXPECT_EQ(run.json["messages"]["received"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(run.json["latency"]["corrected"]["count"].get<std::uint64_t>(), 0u);
}

TEST(LoadgenCli, HardTimeLimitEndsARunThatCannotFinish) {
  TempDir dir("loadgen-cli");
  SilentListener silent;
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", silent.address(), "--warmup", "0", "--messages", "1000000", "--timeout",
            "500ms", "--time-limit", "1s", "--quiet", "--no-status"});
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_EQ(run.json["run"]["stopped_by"], "time_limit");
  EXPECT_FALSE(run.json["valid"].get<bool>());
  EXPECT_GE(run.json["errors"]["unfinished"].get<std::uint64_t>(), 1u) << run.json["errors"].dump();
}

}  // namespace
}  // namespace echolab::test
