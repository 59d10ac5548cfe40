// Descriptor exhaustion.
// EMFILE: the server starts with RLIMIT_NOFILE set (in its child, before exec) to exactly
// what it uses when idle plus the connections the test holds open through it, so accept()
// fails with EMFILE. A waiting client must be told at once (EOF or reset after a successful
// TCP connect, never a hang), the server must not spin (under 5% CPU over 5 s while clients
// keep arriving), and accepting resumes once descriptors free up.
// FD_SETSIZE: select cannot watch fd >= 1024; with 1100 connections it refuses and counts
// the excess, serves the rest, and never aborts, whatever build (fortify, ASan: point
// ECHOLAB_SERVER_BIN at that build's server, see run_in_preset.sh).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"

namespace echolab::test {
namespace {

constexpr milliseconds kIoTimeout{10'000};
constexpr milliseconds kRefusalDeadline{5'000};
constexpr auto kCpuWindow = std::chrono::seconds(5);
constexpr double kMaxCpuShare = 0.05;

// How each engine can be driven into EMFILE: `held` connections it keeps open through its
// accepting process fill the table. Blocking engines serving one client per process or
// thread can hold none (prefork, iterative) or their children hold them (fork), so the limit
// is the idle count itself and descriptors "free up" when the test raises it (prlimit).
struct EmfilePlan {
  std::vector<std::string> flags;
  int held = 0;
};

EmfilePlan plan_for(const EngineInfo& engine) {
  // Connections served in the accepting process itself: a readiness loop's, or a thread's.
  const bool in_acceptor = !engine.connections_in_children;
  switch (engine.concurrency) {
    case Concurrency::multiplexed:
    case Concurrency::per_connection:
      return in_acceptor ? EmfilePlan{{}, 3} : EmfilePlan{{}, 0};
    case Concurrency::pool:
      // Threads: one worker serves the held client, the other accepts. Processes: the one
      // worker's own table fills.
      return in_acceptor ? EmfilePlan{cap_flags(engine, 2), 1} : EmfilePlan{cap_flags(engine, 1), 0};
    case Concurrency::one_at_a_time:
      return {{}, 0};
  }
  return {{}, 0};
}

// The process whose table fills: a pre-forked worker, else the server itself.
pid_t accepting_process(ServerUnderTest& server, const EngineInfo& engine) {
  if (accepts_in_children(engine)) {
    for (int i = 0; i < 200; ++i) {
      if (const auto children = list_descendants(server.pid()); !children.empty()) {
        return children.front().pid;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  return server.pid();
}

std::uint64_t tree_cpu_ticks(pid_t root) {
  std::uint64_t ticks = 0;
  for (const pid_t pid : live_tree(root)) {
    ticks += cpu_ticks(pid);
  }
  return ticks;
}

bool refused_at_once(const SocketAddress& address) {
  auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);  // the TCP handshake succeeds
  const auto end = read_until_closed(fd.get(), kRefusalDeadline);
  return end.outcome == IoOutcome::closed || end.outcome == IoOutcome::reset;
}

class AcceptEmfile : public testing::TestWithParam<std::string> {};

TEST_P(AcceptEmfile, ClientIsClosedServerDoesNotSpinAndAcceptingResumes) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  if (kServerUnderAsan) {
    GTEST_SKIP() << "ASan's runtime opens descriptors at start-up, so an exact RLIMIT_NOFILE "
                    "stops the server before it listens; this case runs in the plain and fortify builds";
  }
  FastRandom random(test_seed());
  const EngineInfo& info = engine_info(engine);
  const EmfilePlan plan = plan_for(info);
  // A probe run measures the idle descriptor count of the accepting process.
  int idle_fds = 0;
  {
    ServerUnderTest probe(launch_of(engine, plan.flags));
    const pid_t accepting = accepting_process(probe, info);
    // A pool still opening its descriptors would be counted short on a loaded machine.
    idle_fds = settled_fd_count(accepting, milliseconds(2000));
    ASSERT_GT(idle_fds, 0);
    ASSERT_TRUE(probe.stop().status);
  }
  ServerLaunch launch = launch_of(engine, plan.flags);
  const auto limit = static_cast<rlim_t>(idle_fds + plan.held);
  // The hard limit leaves room for the soft one to be raised later without CAP_SYS_RESOURCE.
  launch.spawn.limits = {{RLIMIT_NOFILE, limit, limit + 64}};
  ServerUnderTest server(launch);
  const auto address = server.address();
  std::vector<Fd> held;
  std::vector<std::byte> scratch;
  for (int i = 0; i < plan.held; ++i) {
    held.push_back(connect_socket(address, SOCK_STREAM, kIoTimeout));
    ASSERT_EQ(check_echo(held.back().get(), make_frame(random_bytes(random, 100)), scratch), "")
        << "held client " << i << ": " << server.describe();
  }
  int refused = 0;
  ASSERT_TRUE(refused_at_once(address)) << "a client waiting on a full table hangs";
  ++refused;
  // Clients keep arriving while the CPU time is measured: a listener that stays readable
  // with nothing accepted would make a loop spin.
  const auto ticks_before = tree_cpu_ticks(server.pid());
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < kCpuWindow) {
    EXPECT_TRUE(refused_at_once(address));
    ++refused;
    std::this_thread::sleep_for(milliseconds(250));
  }
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto ticks = tree_cpu_ticks(server.pid()) - ticks_before;
  const double share = static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / elapsed;
  EXPECT_LT(share, kMaxCpuShare) << ticks << " ticks of CPU in " << elapsed << " s on a full table";

  // Free descriptors: close the held clients, or (none held) raise the limit.
  held.clear();
  if (plan.held == 0) {
    const rlimit raised{limit + 16, limit + 64};
    // The whole tree: a prefork parent sits at the limit too, and opens its stats file last.
    for (const pid_t pid : live_tree(server.pid())) {
      ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &raised, nullptr), 0) << std::strerror(errno);
    }
  }
  bool resumed = false;
  for (int attempt = 0; attempt < 50 && !resumed; ++attempt) {
    auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
    resumed = check_echo(fd.get(), make_frame(random_bytes(random, 100)), scratch).empty();
    if (!resumed) {
      std::this_thread::sleep_for(milliseconds(100));  // the server may still be closing
    }
  }
  EXPECT_TRUE(resumed) << "accepting did not resume once descriptors were free";

  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe() << ": " << server.describe();
  EXPECT_TRUE(report.leftovers.empty());
  ASSERT_FALSE(report.stats.is_null()) << server.describe();
  const auto counted = stats_counter(report.stats, "connections_refused");
  EXPECT_GE(counted, static_cast<std::uint64_t>(refused)) << "each refused client counted";
  write_case_result({{"case", case_name("accept_emfile", engine)},
                     {"test", "accept_emfile"},
                     {"engine", engine},
                     {"rlimit_nofile", limit},
                     {"connections_held", plan.held},
                     {"clients_refused", refused},
                     {"connections_refused_counted", counted},
                     {"accept_errors_counted", stats_counter(report.stats, "accept_errors")},
                     {"cpu_ticks_while_full", ticks},
                     {"cpu_share_while_full", share},
                     {"window_seconds", elapsed},
                     {"accepting_resumed", resumed},
                     {"zombies_after", report.leftovers.size()}});
}

INSTANTIATE_TEST_SUITE_P(Engines, AcceptEmfile, testing::ValuesIn(engine_names(Serves::streams)),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

// Engines that can watch only descriptors below a limit (select: FD_SETSIZE).
class DescriptorLimit : public testing::TestWithParam<std::string> {};

TEST_P(DescriptorLimit, DescriptorsPastTheLimitAreRefusedAndCounted) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const int below = engine_info(engine).descriptors.below;
  const int connections = below + 76;
  ASSERT_GE(raise_own_fd_limit(static_cast<rlim_t>(connections + 200)), static_cast<rlim_t>(connections + 100))
      << "this test process cannot hold the connections";
  FastRandom random(test_seed());
  ServerLaunch launch = launch_of(engine);
  const auto server_limit = std::max<rlim_t>(4096, static_cast<rlim_t>(connections + 200));
  launch.spawn.limits = {{RLIMIT_NOFILE, server_limit, server_limit}};
  ServerUnderTest server(launch);
  const auto address = server.address();
  std::vector<Fd> clients;
  std::vector<std::byte> scratch;
  int served = 0;
  int refused = 0;
  for (int i = 0; i < connections; ++i) {
    clients.push_back(connect_socket(address, SOCK_STREAM, kIoTimeout));
    // Each client echoes once before the next connects, so the server's descriptor numbers
    // grow one by one: the first ~below - 9 fit (in an fd_set), the rest must be refused.
    const auto error = check_echo(clients.back().get(), make_frame(random_bytes(random, 64)), scratch);
    if (error.empty()) {
      ++served;
    } else {
      ++refused;
      ASSERT_FALSE(error.find("timed out") != std::string::npos)
          << "client " << i << " left hanging: " << error;
    }
    ASSERT_TRUE(server.running()) << "the server died at connection " << i << ": " << server.describe();
  }
  // Those served are still served: one more round on a sample of them.
  int served_again = 0;
  for (std::size_t i = 0; i < clients.size(); i += 97) {
    if (check_echo(clients[i].get(), make_frame(random_bytes(random, 64)), scratch).empty()) {
      ++served_again;
    }
  }
  clients.clear();
  EXPECT_GT(refused, 0) << "no connection reached " << engine_info(engine).descriptors.name;
  EXPECT_GT(served, below - 24);
  EXPECT_GT(served_again, 0);
  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe() << ": " << server.describe();
  ASSERT_FALSE(report.stats.is_null());
  const auto counted = stats_counter(report.stats, "connections_refused");
  EXPECT_EQ(counted, static_cast<std::uint64_t>(refused));
  write_case_result({{"case", case_name("fd_setsize", engine)},
                     {"test", "fd_setsize"},
                     {"engine", engine},
                     {"server_binary", server_binary()},
                     {"connections_opened", connections},
                     {"connections_served", served},
                     {"connections_refused", refused},
                     {"connections_refused_counted", counted},
                     {"exit_code", report.status->code},
                     {"exit_signal", report.status->signal}});
}

INSTANTIATE_TEST_SUITE_P(Engines, DescriptorLimit,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.descriptors.below >= 0;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DescriptorLimit);

// Readiness loops with no descriptor limit (poll, epoll) serve clients numbered past
// FD_SETSIZE like any other: the limit is select's, not the loop's.
class NoDescriptorLimit : public testing::TestWithParam<std::string> {};

TEST_P(NoDescriptorLimit, ClientsPastFdSetSizeAreServed) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  constexpr int kConnections = FD_SETSIZE + 76;
  ASSERT_GE(raise_own_fd_limit(kConnections + 200), static_cast<rlim_t>(kConnections + 100))
      << "this test process cannot hold the connections";
  FastRandom random(test_seed());
  ServerLaunch launch = launch_of(engine);
  launch.spawn.limits = {{RLIMIT_NOFILE, 4096, 4096}};
  ServerUnderTest server(launch);
  const auto address = server.address();
  std::vector<Fd> clients;
  std::vector<std::byte> scratch;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(connect_socket(address, SOCK_STREAM, kIoTimeout));
    ASSERT_EQ(check_echo(clients.back().get(), make_frame(random_bytes(random, 64)), scratch), "")
        << "client " << i << ": " << server.describe();
  }
  for (std::size_t i = 0; i < clients.size(); i += 97) {
    EXPECT_EQ(check_echo(clients[i].get(), make_frame(random_bytes(random, 64)), scratch), "")
        << "client " << i << " again";
  }
  clients.clear();
  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe() << ": " << server.describe();
  ASSERT_FALSE(report.stats.is_null());
  EXPECT_EQ(stats_counter(report.stats, "connections_refused"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, NoDescriptorLimit,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.concurrency == Concurrency::multiplexed &&
                                  engine.descriptors.below < 0;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(NoDescriptorLimit);

}  // namespace
}  // namespace echolab::test
