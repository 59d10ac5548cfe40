// The command line's contract: any mistake (bad flag, unbindable address, an engine given a
// transport it cannot serve) ends with exit status 2 and exactly one line on stderr, before
// anything is served; --list-engines prints one line per engine, its name first.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/engines/engine_cases.h"
#include "tests/support/process.h"
#include "tests/support/socket_client.h"
#include "tests/support/temp_dir.h"

namespace echolab::test {
namespace {

constexpr std::chrono::milliseconds kRunDeadline{10'000};

CompletedProcess run_server(std::vector<std::string> args) {
  args.insert(args.begin(), server_binary());
  return run_process(std::move(args), kRunDeadline);
}

std::string first_stream_engine() { return engine_names(Serves::streams).at(0); }

void expect_usage_error(const CompletedProcess& result) {
  EXPECT_TRUE(result.status.exited && result.status.code == 2)
      << result.status.describe() << ", stderr: " << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1)
      << "stderr should be exactly one line: '" << result.err << "'";
  EXPECT_TRUE(result.err.size() > 1 && result.err.back() == '\n')
      << "stderr should be one non-empty line: '" << result.err << "'";
  EXPECT_EQ(result.out.find("listening"), std::string::npos)
      << "reported ready although it failed: " << result.out;
}

struct BadInvocation {
  std::string name;
  std::vector<std::string> args;  // "--engine <a stream engine>" is added if absent
};

class BadInvocationTest : public testing::TestWithParam<BadInvocation> {};

TEST_P(BadInvocationTest, ExitsTwoWithOneLineOnStderr) {
  TempDir dir;
  auto args = GetParam().args;
  for (auto& arg : args) {  // "@DIR@" stands for a fresh private directory
    if (const auto at = arg.find("@DIR@"); at != std::string::npos) {
      arg.replace(at, 5, dir.path());
    }
  }
  if (std::find(args.begin(), args.end(), "--engine") == args.end()) {
    args.insert(args.begin(), {"--engine", first_stream_engine()});
  }
  expect_usage_error(run_server(args));
}

INSTANTIATE_TEST_SUITE_P(
    Cli, BadInvocationTest,
    testing::Values(
        BadInvocation{"unknown_flag", {"--no-such-flag"}},
        BadInvocation{"missing_value", {"--listen"}},
        BadInvocation{"unknown_engine", {"--engine", "no-such-engine"}},
        BadInvocation{"unknown_transport", {"--transport", "carrier-pigeon"}},
        BadInvocation{"unknown_protocol", {"--protocol", "xml"}},
        BadInvocation{"non_numeric_workers", {"--workers", "many"}},
        BadInvocation{"bad_work_spec", {"--work", "cpu:fast"}},
        BadInvocation{"address_without_port", {"--listen", "127.0.0.1"}},
        BadInvocation{"unparsable_address", {"--listen", "[::1:0"}},
        // TEST-NET-1 (RFC 5737): never a local address, so bind fails with EADDRNOTAVAIL.
        BadInvocation{"non_local_address", {"--listen", "192.0.2.1:0"}},
        BadInvocation{"unix_path_in_missing_directory",
                      {"--transport", "unix-stream", "--listen", "unix:@DIR@/missing/s.sock"}}),
    [](const auto& case_info) { return case_info.param.name; });

TEST(CliTest, PortInUseExitsTwoWithOneLineOnStderr) {
  Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(taken.valid());
  sockaddr_in loopback{};
  loopback.sin_family = AF_INET;
  loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback), 0);
  ASSERT_EQ(::listen(taken.get(), 1), 0);
  const auto address = "127.0.0.1:" + std::to_string(local_port(taken.get()));
  expect_usage_error(run_server({"--engine", first_stream_engine(), "--listen", address}));
}

// Every engine with every transport it cannot serve.
std::vector<std::tuple<std::string, Listen>> mismatched_transports() {
  std::vector<std::tuple<std::string, Listen>> cases;
  for (const auto& engine : engine_names(Serves::streams)) {
    for (const auto listen : {Listen::udp_v4, Listen::unix_dgram}) {
      cases.emplace_back(engine, listen);
    }
  }
  for (const auto& engine : engine_names(Serves::datagrams)) {
    for (const auto listen : {Listen::tcp_v4, Listen::unix_stream}) {
      cases.emplace_back(engine, listen);
    }
  }
  return cases;
}

class WrongTransportTest : public testing::TestWithParam<std::tuple<std::string, Listen>> {};

TEST_P(WrongTransportTest, ExitsTwoWithOneLineOnStderr) {
  const auto& [engine, listen] = GetParam();
  TempDir dir;
  auto args = listen_flags(listen, dir);
  args.insert(args.begin(), {"--engine", engine});
  expect_usage_error(run_server(args));
}

INSTANTIATE_TEST_SUITE_P(Cli, WrongTransportTest, testing::ValuesIn(mismatched_transports()),
                         [](const auto& case_info) {
                           return test_name_part(std::get<0>(case_info.param)) + "_" +
                                  std::string(name_of(std::get<1>(case_info.param)));
                         });

TEST(CliTest, ListEnginesPrintsOneLinePerEngineNameFirst) {
  const auto result = run_server({"--list-engines"});
  ASSERT_TRUE(result.status.success()) << result.status.describe() << ": " << result.err;
  std::multiset<std::string> listed;
  for (const auto& line : split_lines(result.out)) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    listed.insert(name);
  }
  std::multiset<std::string> expected;
  for (const auto& engine : engines()) {
    expected.emplace(engine.name);
  }
  EXPECT_EQ(listed, expected) << "--list-engines printed:\n" << result.out;
}

}  // namespace
}  // namespace echolab::test
