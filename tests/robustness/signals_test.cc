// What every signal a stray kill could deliver does to echolab-server (the table in
// core/stop.h), against every engine while a client is being served: the stop signals end
// the server cleanly (exit 0, nothing left behind); every other one leaves it serving the
// client it had and new ones, idle at zero CPU (no spin). Then the process engines: a
// signal to one prefork worker ends that worker alone, which is replaced; a pool whose
// workers keep dying is given up on; and workers and children die with their parent.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/eventually.h"
#include "tests/support/proc_fs.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"

namespace echolab::test {
namespace {

constexpr milliseconds kIoTimeout{5'000};
// A generous bound: an idle server takes 0 ticks a second; the spin this catches took 54+.
constexpr std::uint64_t kIdleTicksPerSecond = 10;

struct SignalCase {
  int signal;
  bool stops;  // the server must stop cleanly; otherwise it must not notice
};

std::vector<SignalCase> signal_table() {
  std::vector<SignalCase> table = {
      {SIGHUP, true},     {SIGINT, true},    {SIGTERM, true},  {SIGUSR1, false},
      {SIGUSR2, false},   {SIGALRM, false},  {SIGVTALRM, false}, {SIGPROF, false},
      {SIGIO, false},     {SIGPWR, false},   {SIGSTKFLT, false}, {SIGCHLD, false},
      {SIGPIPE, false},   {SIGRTMIN + 2, false}, {SIGRTMAX, false}};
  return table;
}

bool is_stream(const std::string& engine) {
  const auto names = engine_names(Serves::streams);
  return std::find(names.begin(), names.end(), engine) != names.end();
}

std::vector<std::string> all_engine_names() {
  auto names = engine_names(Serves::streams);
  const auto datagrams = engine_names(Serves::datagrams);
  names.insert(names.end(), datagrams.begin(), datagrams.end());
  return names;
}

// One framed echo on `fd`: a frame on a stream, a datagram (resent if lost) otherwise.
std::string echo_once(int fd, bool stream, FastRandom& random) {
  std::vector<std::byte> scratch;
  const auto frame = make_frame(random_bytes(random, 8 + random.below(200)));
  if (stream) {
    return check_echo(fd, frame, scratch);
  }
  // The prefix and 8 random bytes tell this request's echo from a late one.
  // Loopback rarely drops one: a few resends, so a server that stopped answering fails fast.
  const ResendPolicy policy{milliseconds(100), milliseconds(800), 6};
  const auto result = exchange_datagram(fd, frame, 12, policy, scratch);
  return result.ok ? "" : result.error;
}

std::uint64_t tree_ticks(pid_t root) {
  std::uint64_t ticks = 0;
  for (const pid_t pid : live_tree(root)) {
    ticks += cpu_ticks(pid);
  }
  return ticks;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& child : list_descendants(parent)) {
    if (child.ppid == parent && child.state != 'Z') {
      children.push_back(child.pid);
    }
  }
  return children;
}

class StraySignals : public testing::TestWithParam<std::string> {};

TEST_P(StraySignals, StopSignalsStopCleanlyOthersChangeNothing) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const bool stream = is_stream(engine);
  const int type = stream ? SOCK_STREAM : SOCK_DGRAM;
  FastRandom random(test_seed());
  const std::vector<std::string> pool = {"--workers", "2"};

  // Signals that must change nothing: one server takes them all, each while a client is
  // being served, sent to every process of its tree (workers and children included).
  {
    ServerUnderTest server(launch_of(engine, pool));
    for (const SignalCase& entry : signal_table()) {
      if (entry.stops) {
        continue;
      }
      SCOPED_TRACE(std::string("signal ") + ::strsignal(entry.signal));
      auto served = connect_socket(server.address(), type, kIoTimeout);
      ASSERT_EQ(echo_once(served.get(), stream, random), "");
      for (const pid_t pid : live_tree(server.pid())) {
        ::kill(pid, entry.signal);
      }
      std::this_thread::sleep_for(milliseconds(30));  // let the handlers run
      ASSERT_TRUE(server.running()) << server.describe();
      ASSERT_EQ(echo_once(served.get(), stream, random), "") << "the client being served";
      served.reset();  // iterative serves one client at a time
      auto fresh = connect_socket(server.address(), type, kIoTimeout);
      ASSERT_EQ(echo_once(fresh.get(), stream, random), "") << "a new client";
    }
    std::this_thread::sleep_for(milliseconds(100));  // closing clients settle
    const std::uint64_t before = tree_ticks(server.pid());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const std::uint64_t spent = tree_ticks(server.pid()) - before;
    EXPECT_LE(spent, kIdleTicksPerSecond) << "CPU ticks of an idle server over 1 s: a spin";
    const auto report = server.stop();
    ASSERT_TRUE(report.status) << server.describe();
    EXPECT_TRUE(report.status->success()) << server.describe();
    EXPECT_TRUE(report.leftovers.empty()) << report.leftovers.size() << " processes left behind";
  }

  // Stop signals: each to a fresh server (its parent) while a client is being served.
  for (const SignalCase& entry : signal_table()) {
    if (!entry.stops) {
      continue;
    }
    SCOPED_TRACE(std::string("signal ") + ::strsignal(entry.signal));
    ServerUnderTest server(launch_of(engine, pool));
    auto served = connect_socket(server.address(), type, kIoTimeout);
    ASSERT_EQ(echo_once(served.get(), stream, random), "");
    ASSERT_TRUE(server.server().process().send_signal(entry.signal));
    const auto status = server.server().process().wait_for_exit(milliseconds(10'000));
    ASSERT_TRUE(status) << "no exit within 10 s: " << server.describe();
    EXPECT_TRUE(status->success()) << status->describe() << ": " << server.describe();
    const auto report = server.stop();  // already exited: collects leftovers
    EXPECT_TRUE(report.leftovers.empty()) << report.leftovers.size() << " processes left behind";
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, StraySignals, testing::ValuesIn(all_engine_names()),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

// Engines whose pool is of pre-forked worker processes (prefork).
class WorkerSignals : public testing::TestWithParam<std::string> {};

// A stop signal sent to one worker process ends that worker alone: the parent replaces it,
// says so, counts it, and the pool serves at full size; the shared listener stays open.
// With --accept-lock the worker signalled may be waiting on the lock, not in accept().
void check_signalled_worker_replaced(const std::string& engine, std::vector<std::string> flags) {
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  FastRandom random(test_seed());
  auto pool = cap_flags(engine_info(engine), 2);
  flags.insert(flags.begin(), pool.begin(), pool.end());
  ServerUnderTest server(launch_of(engine, flags));
  ASSERT_TRUE(eventually([&] { return children_of(server.pid()).size() == 2; }, kIoTimeout));
  const int signals[] = {SIGTERM, SIGINT, SIGHUP};
  for (const int signal : signals) {
    SCOPED_TRACE(std::string("signal ") + ::strsignal(signal));
    const pid_t worker = children_of(server.pid()).front();
    ASSERT_EQ(::kill(worker, signal), 0);
    const bool replaced = eventually(
        [&] {
          const auto now = children_of(server.pid());
          return now.size() == 2 && std::find(now.begin(), now.end(), worker) == now.end();
        },
        kIoTimeout);
    ASSERT_TRUE(replaced) << server.describe();
    ASSERT_TRUE(server.running()) << server.describe();
    EXPECT_TRUE(server.server().process().wait_for_stderr_containing(
        "(pid " + std::to_string(worker) + ") ended by signal", kIoTimeout))
        << server.describe();
    // Two clients at once: both workers accept, so the pool is whole again.
    auto first = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    auto second = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    EXPECT_EQ(echo_once(first.get(), true, random), "");
    EXPECT_EQ(echo_once(second.get(), true, random), "");
  }
  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << server.describe();
  EXPECT_TRUE(report.leftovers.empty());
  EXPECT_EQ(stats_counter(report.stats, "workers_replaced"), std::size(signals));
}

TEST_P(WorkerSignals, SignalledWorkerIsReplacedServerGoesOn) { check_signalled_worker_replaced(GetParam(), {}); }

TEST_P(WorkerSignals, SignalledWorkerIsReplacedServerGoesOnWithAcceptLock) {
  if (!engine_info(GetParam()).offers_accept_lock) {
    GTEST_SKIP() << "no --accept-lock";
  }
  check_signalled_worker_replaced(GetParam(), {"--accept-lock"});
}

// Workers that die as soon as they start are not respawned forever.
TEST_P(WorkerSignals, WorkersThatKeepDyingAreGivenUpOn) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  ServerUnderTest server(launch_of(engine, cap_flags(engine_info(engine), 1)));
  // Once the server has given up it only exits; killing its children then could hit a task
  // of its exit (LeakSanitizer's tracer under ASan, which it then waits for forever).
  const auto gave_up = [&] {
    return server.server().process().stderr_text().find("giving up") != std::string::npos;
  };
  int kills = 0;
  for (; kills < 100 && server.running() && !gave_up(); ++kills) {
    std::vector<pid_t> workers;
    (void)eventually([&] { return !(workers = children_of(server.pid())).empty() || !server.running(); },
                     kIoTimeout);
    for (const pid_t worker : workers) {
      if (gave_up()) {
        break;
      }
      ::kill(worker, SIGKILL);
    }
  }
  const auto status = server.server().process().wait_for_exit(kIoTimeout);
  ASSERT_TRUE(status) << "still respawning after " << kills << " kills: " << server.describe();
  EXPECT_TRUE(status->exited && status->code == 1) << status->describe();
  EXPECT_NE(server.server().process().stderr_text().find("giving up"), std::string::npos)
      << server.describe();
  const auto report = server.stop();
  EXPECT_TRUE(report.leftovers.empty());
}

INSTANTIATE_TEST_SUITE_P(Engines, WorkerSignals,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return accepts_in_children(engine);
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

// With --accept-lock, a worker killed (SIGKILL: no handler, no unlock) while it holds the
// accept lock must not wedge the pool: the lock is robust, so its replacement takes it over
// and serves the next connections. One worker, idle, always holds the lock in accept().
class AcceptLockHolderKilled : public testing::TestWithParam<std::string> {};

TEST_P(AcceptLockHolderKilled, ReplacementTakesTheLockOverAndServes) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  FastRandom random(test_seed());
  auto flags = cap_flags(engine_info(engine), 1);
  flags.emplace_back("--accept-lock");
  ServerUnderTest server(launch_of(engine, flags));
  for (int kill = 0; kill < 3; ++kill) {
    SCOPED_TRACE("kill " + std::to_string(kill));
    {
      auto client = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
      ASSERT_EQ(echo_once(client.get(), true, random), "") << server.describe();
    }
    std::vector<pid_t> workers;
    ASSERT_TRUE(eventually([&] { return (workers = children_of(server.pid())).size() == 1; }, kIoTimeout));
    // Back in accept(), holding the lock.
    ASSERT_TRUE(wait_for_a_thread_in(workers.front(), {SYS_accept, SYS_accept4}, kIoTimeout)) << server.describe();
    ASSERT_EQ(::kill(workers.front(), SIGKILL), 0);
    ASSERT_TRUE(eventually(
        [&] {
          const auto now = children_of(server.pid());
          return now.size() == 1 && now.front() != workers.front();
        },
        kIoTimeout))
        << server.describe();
    auto client = connect_socket(server.address(), SOCK_STREAM, kIoTimeout);
    EXPECT_EQ(echo_once(client.get(), true, random), "") << "the pool is wedged: " << server.describe();
  }
  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << server.describe();
  EXPECT_TRUE(report.leftovers.empty());
  EXPECT_EQ(stats_counter(report.stats, "workers_replaced"), 3u);
}

INSTANTIATE_TEST_SUITE_P(Engines, AcceptLockHolderKilled,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return accepts_in_children(engine) && engine.offers_accept_lock;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

// A parent killed outright (SIGKILL: no handler runs) takes its workers and children with
// it, and a new server can listen on the same address at once.
class ParentDeath : public testing::TestWithParam<std::string> {};

TEST_P(ParentDeath, ChildrenDieWithTheParentAddressIsFree) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  FastRandom random(test_seed());
  std::optional<ServerUnderTest> server;
  server.emplace(launch_of(engine, cap_flags(engine_info(engine), 2)));
  const auto address = server->address();
  auto served = connect_socket(address, SOCK_STREAM, kIoTimeout);
  ASSERT_EQ(echo_once(served.get(), true, random), "");
  std::vector<ProcStat> children;
  ASSERT_TRUE(eventually(
      [&] { return !(children = list_descendants(server->pid())).empty(); }, kIoTimeout));
  ASSERT_TRUE(server->server().process().send_signal(SIGKILL));
  ASSERT_TRUE(server->server().process().wait_for_exit(kIoTimeout));
  const bool all_gone = eventually(
      [&] {
        return std::all_of(children.begin(), children.end(), [](const ProcStat& child) {
          const auto now = still_present(child);
          return !now || now->state == 'Z';
        });
      },
      kIoTimeout);
  EXPECT_TRUE(all_gone) << "workers or children outlived their parent";
  const std::string port = std::to_string(server->server().port());
  served.reset();
  server.reset();  // kills (by PID) whatever is left, so that a failure leaves nothing behind
  if (all_gone) {
    auto relaunch = launch_of(engine);
    relaunch.listen = "127.0.0.1:" + port;
    EXPECT_NO_THROW(ServerUnderTest again(relaunch)) << "the address was still in use";
  }
}

// Every engine whose connections live in child processes (prefork, fork).
INSTANTIATE_TEST_SUITE_P(Engines, ParentDeath,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.connections_in_children;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

}  // namespace
}  // namespace echolab::test
