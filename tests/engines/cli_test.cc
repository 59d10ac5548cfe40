// The command line's contract: any mistake (bad flag, unbindable address, an engine given a
// transport it cannot serve) ends with exit status 2 and exactly one line on stderr, before
// anything is served; --list-engines prints one line per engine, its name first.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/engine_cases.h"
#include "tests/support/echo_server.h"
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
// How gtest prints a failing case's parameter (instead of its raw bytes).
void PrintTo(const BadInvocation& invocation, std::ostream* out) { *out << invocation.name; }

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
        BadInvocation{"unknown_accept_wait", {"--accept-wait", "select"}},
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
                      {"--transport", "unix-stream", "--listen", "unix:@DIR@/missing/s.sock"}},
        // getaddrinfo would keep the low 16 bits: 99999 served on 34463.
        BadInvocation{"port_over_65535", {"--listen", "127.0.0.1:99999"}},
        BadInvocation{"port_65536", {"--listen", "127.0.0.1:65536"}},
        BadInvocation{"service_name_port", {"--listen", "127.0.0.1:http"}},
        BadInvocation{"port_with_letters", {"--listen", "127.0.0.1:12ab"}},
        BadInvocation{"negative_port", {"--listen", "127.0.0.1:-1"}},
        BadInvocation{"port_with_space", {"--listen", "127.0.0.1: 80"}},
        BadInvocation{"port_with_plus", {"--listen", "127.0.0.1:+80"}},
        BadInvocation{"stray_positional", {"--listen", "127.0.0.1:0", "--workers", "8", "16"}},
        BadInvocation{"stats_json_in_missing_directory",
                      {"--listen", "127.0.0.1:0", "--stats-json", "@DIR@/missing/stats.json"}},
        BadInvocation{"stats_json_is_a_directory", {"--listen", "127.0.0.1:0", "--stats-json", "@DIR@"}},
        // 0.1ns rounds to 0, which means "never".
        BadInvocation{"sub_nanosecond_idle_timeout", {"--listen", "127.0.0.1:0", "--idle-timeout", "0.1ns"}},
        BadInvocation{"newline_in_address", {"--listen", "127.0.0.1:0\necholab-server listening tcp 1.2.3.4:5"}}),
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

// A listener whose accept queue is full makes a blocking connect wait for ever; the
// stale-socket probe must still see a running server there and say so at once.
TEST(CliTest, UnixPathWhoseBacklogIsFullIsInUse) {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(address.sun_path));
  path.copy(address.sun_path, path.size());
  Fd owner(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(owner.valid());
  ASSERT_EQ(::bind(owner.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(owner.get(), 0), 0);
  std::vector<Fd> queued;
  bool full = false;
  for (int i = 0; i < 64 && !full; ++i) {  // never accepted
    Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ASSERT_TRUE(client.valid());
    if (::connect(client.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      queued.push_back(std::move(client));
    } else {
      ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);
      full = true;
    }
  }
  ASSERT_TRUE(full) << "could not fill the accept queue";
  const auto result = run_server({"--engine", first_stream_engine(), "--listen", "unix:" + path});
  expect_usage_error(result);
  EXPECT_NE(result.err.find("in use by a running server"), std::string::npos) << result.err;
}

// --accept-lock (and --accept-wait) mean something only to engines whose row offers them;
// every other engine refuses them with one line, rather than run without what was asked for.
TEST(CliTest, AcceptLockIsRefusedByEnginesThatDoNotOfferIt) {
  const auto refusing = engine_names([](const EngineInfo& engine) { return !engine.offers_accept_lock; });
  ASSERT_FALSE(refusing.empty());
  for (const std::string& engine : refusing) {
    SCOPED_TRACE(engine);
    const auto result = run_server({"--engine", engine, "--accept-lock"});
    expect_usage_error(result);
    expect_usage_error(run_server({"--engine", engine, "--accept-wait", "poll"}));
    // Names where it does apply, which an unknown-option error would not.
    for (const std::string& offering :
         engine_names([](const EngineInfo& row) { return row.offers_accept_lock; })) {
      EXPECT_NE(result.err.find(offering), std::string::npos) << result.err;
    }
  }
}

// The path of a unix client is the client's to choose; --verbose prints it on stderr, where
// a newline in it would forge lines (here, a second ready line).
TEST(CliTest, VerbosePrintsAUnixPeerPathOnOneLine) {
  TempDir dir;
  const std::string server_path = dir.file("s.sock");
  EchoServerProcess server(server_binary(), {"--engine", first_stream_engine(), "--verbose", "--listen",
                                             "unix:" + server_path});
  const std::string client_path = dir.path() + "/c\necholab-server listening tcp 1.2.3.4:5";
  sockaddr_un client_address{};
  client_address.sun_family = AF_UNIX;
  ASSERT_LT(client_path.size(), sizeof(client_address.sun_path));
  client_path.copy(client_address.sun_path, client_path.size());
  {
    Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(client.valid());
    ASSERT_EQ(::bind(client.get(), reinterpret_cast<const sockaddr*>(&client_address), sizeof client_address), 0)
        << std::strerror(errno);
    const SocketAddress target = server.address();
    ASSERT_EQ(::connect(client.get(), target.get(), target.length), 0) << std::strerror(errno);
    ASSERT_TRUE(server.process().wait_for_stderr_containing("accepted", milliseconds(5'000))) << server.describe();
  }
  const auto status = server.terminate(milliseconds(10'000));
  ASSERT_TRUE(status && status->success()) << server.describe();
  const std::string err = server.process().stderr_text();
  for (const auto& line : split_lines(err)) {
    EXPECT_EQ(line.rfind("echolab-server listening", 0), std::string::npos) << "forged line: " << err;
  }
  EXPECT_NE(err.find("\\x0aecholab-server listening"), std::string::npos) << err;
}

// The stats file appears whole, by a rename: a reader polling for it never sees it half
// written, and nothing else is left in its directory.
TEST(CliTest, StatsJsonAppearsWholeByRename) {
  TempDir dir;
  Fd watch(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  ASSERT_TRUE(watch.valid()) << std::strerror(errno);
  ASSERT_GE(::inotify_add_watch(watch.get(), dir.path().c_str(), IN_CREATE | IN_MODIFY | IN_MOVED_TO), 0);
  const std::string stats = dir.file("stats.json");
  EchoServerProcess server(server_binary(), {"--engine", first_stream_engine(), "--listen", "127.0.0.1:0",
                                             "--stats-json", stats});
  const auto status = server.terminate(milliseconds(10'000));
  ASSERT_TRUE(status && status->success()) << server.describe();
  bool renamed_in = false;
  alignas(inotify_event) char buffer[16384];
  ssize_t n;
  while ((n = ::read(watch.get(), buffer, sizeof buffer)) > 0) {
    for (char* at = buffer; at < buffer + n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(at);
      if (event->len > 0 && std::string(event->name) == "stats.json") {
        EXPECT_EQ(event->mask & (IN_CREATE | IN_MODIFY), 0u) << "stats.json was written in place";
        renamed_in = renamed_in || (event->mask & IN_MOVED_TO) != 0;
      }
      at += sizeof(inotify_event) + event->len;
    }
  }
  EXPECT_TRUE(renamed_in);
  EXPECT_NO_THROW(static_cast<void>(read_json_file(stats)));
  std::vector<std::string> names;
  DIR* listing = ::opendir(dir.path().c_str());
  ASSERT_NE(listing, nullptr);
  while (const dirent* entry = ::readdir(listing)) {
    if (std::string(entry->d_name) != "." && std::string(entry->d_name) != "..") {
      names.emplace_back(entry->d_name);
    }
  }
  ::closedir(listing);
  EXPECT_EQ(names, std::vector<std::string>{"stats.json"});
}

CompletedProcess run_loadgen(std::vector<std::string> args) {
  args.insert(args.begin(), ECHOLAB_LOADGEN_BIN);
  return run_process(std::move(args), kRunDeadline);
}

// --target shares the server's endpoint parser: a port past 65535 must not wrap to a port
// that something does listen on (here, one this test holds).
TEST(LoadgenCliTest, TargetPortPast65535IsRefusedNotWrapped) {
  Fd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(taken.valid());
  sockaddr_in loopback{};
  loopback.sin_family = AF_INET;
  loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken.get(), reinterpret_cast<const sockaddr*>(&loopback), sizeof loopback), 0);
  ASSERT_EQ(::listen(taken.get(), 16), 0);
  const std::string wrapped = std::to_string(local_port(taken.get()) + 65536);
  for (const std::string& port : {wrapped, std::string("65536"), std::string("http"), std::string("-1")}) {
    const auto result = run_loadgen({"--target", "127.0.0.1:" + port, "--warmup", "0s", "--duration", "200ms",
                                     "--timeout", "100ms", "--quiet"});
    expect_usage_error(result);
    EXPECT_NE(result.err.find("port must be"), std::string::npos) << port << ": " << result.err;
  }
}

TEST(LoadgenCliTest, StrayPositionalIsRefusedButMergeInputsAreNot) {
  const auto run = run_loadgen({"--target", "127.0.0.1:1", "--duration", "200ms", "--quiet", "16"});
  expect_usage_error(run);
  EXPECT_NE(run.err.find("unexpected argument '16'"), std::string::npos) << run.err;
  TempDir dir;
  const auto merge = run_loadgen({"merge", dir.file("a.json"), dir.file("b.json"), "--quiet"});
  expect_usage_error(merge);
  EXPECT_NE(merge.err.find("cannot open " + dir.file("a.json")), std::string::npos) << merge.err;
}

}  // namespace
}  // namespace echolab::test
