// Connection floods against every engine with a process or thread per connection (fork,
// thread), with a cap of 4. Sixty-four
// clients connect at once and each does a few echoes: live children (by PPid) or connection
// threads (Threads minus the main one) never exceed the cap, every client is eventually
// served (the rest wait in the backlog), and no zombie is left. Then fork()/pthread_create
// failing (RLIMIT_NPROC, server run as nobody so that the limit applies, from a copy of the
// binary that nobody can reach wherever the build is): that connection is closed and
// counted, and the server goes on.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"

namespace echolab::test {
namespace {

constexpr int kCap = 4;
constexpr int kClients = 64;
constexpr int kEchoesPerClient = 3;
constexpr milliseconds kIoTimeout{30'000};

// Children or connection threads serving right now.
int live_workers(pid_t server, const EngineInfo& engine) {
  if (engine.connections_in_children) {
    return live_children(server);
  }
  return static_cast<int>(proc_status_field(server, "Threads").value_or(1)) - 1;
}

// A copy of the server binary (it needs no file of the build tree) in a fresh folder that
// anyone may read and execute, made the server of the tests while it lives.
class PublicServerCopy {
 public:
  PublicServerCopy() : dir_("echolab-public-server") {
    const std::string original = server_binary();
    const std::string copy = dir_.file("echolab-server");
    std::filesystem::copy_file(original, copy);
    ::chmod(dir_.path().c_str(), 0755);
    ::chmod(copy.c_str(), 0755);
    if (const char* previous = std::getenv("ECHOLAB_SERVER_BIN"); previous != nullptr) {
      previous_ = previous;
    }
    ::setenv("ECHOLAB_SERVER_BIN", copy.c_str(), 1);
  }
  ~PublicServerCopy() {
    if (previous_) {
      ::setenv("ECHOLAB_SERVER_BIN", previous_->c_str(), 1);
    } else {
      ::unsetenv("ECHOLAB_SERVER_BIN");
    }
  }
  PublicServerCopy(const PublicServerCopy&) = delete;
  PublicServerCopy& operator=(const PublicServerCopy&) = delete;

 private:
  TempDir dir_;
  std::optional<std::string> previous_;
};

class Flood : public testing::TestWithParam<std::string> {};

// ThreadSanitizer's runtime runs a background thread of its own in the server, which the
// /proc thread count of the thread engine sees beside the connection threads.
#if defined(__SANITIZE_THREAD__)
constexpr int kRuntimeThreads = 1;
#else
constexpr int kRuntimeThreads = 0;
#endif

TEST_P(Flood, CapHoldsEveryClientServedNoZombies) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const EngineInfo& info = engine_info(engine);
  ServerUnderTest server(launch_of(engine, cap_flags(info, kCap)));
  const auto address = server.address();
  std::atomic<bool> sampling{true};
  std::atomic<int> peak{0};
  std::thread sampler([&] {
    while (sampling.load()) {
      const int live = live_workers(server.pid(), info);
      if (live > peak.load()) {
        peak.store(live);
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
  });
  std::atomic<int> served{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      try {
        FastRandom random(test_seed() + static_cast<std::uint64_t>(i));
        auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
        std::vector<std::byte> scratch;
        for (int k = 0; k < kEchoesPerClient && errors[i].empty(); ++k) {
          errors[i] = check_echo(fd.get(), make_frame(random_bytes(random, 1 + random.below(4096))), scratch);
        }
        served += errors[i].empty() ? 1 : 0;
        // Stay connected until the sampler has seen a live worker: on a slow run (TSan) a
        // worker could otherwise come and go between two samples, and the cap check below
        // would hold vacuously. Bounded: the clients go on after 5 s regardless.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (peak.load() == 0 && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(milliseconds(1));
        }
      } catch (const std::exception& error) {
        errors[i] = error.what();
      }
    });
  }
  for (auto& client : clients) {
    client.join();
  }
  sampling.store(false);
  sampler.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(errors[i], "") << "client " << i;
  }
  EXPECT_EQ(served.load(), kClients);
  EXPECT_LE(peak.load(), kCap + (info.connections_in_children ? 0 : kRuntimeThreads))
      << "live " << (info.connections_in_children ? "children" : "threads");
  EXPECT_GT(peak.load(), 0) << "the sampler never saw a worker: the check above is vacuous";
  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << server.describe();
  EXPECT_TRUE(report.leftovers.empty()) << report.leftovers.size() << " left behind";
  write_case_result({{"case", case_name("flood_cap", engine)},
                     {"test", "flood_cap"},
                     {"engine", engine},
                     {"cap", kCap},
                     {"clients", kClients},
                     {"clients_served", served.load()},
                     {"peak_live_workers", peak.load()},
                     {"children_seen", report.children_seen},
                     {"zombies_after", report.leftovers.size()}});
}

// RLIMIT_NPROC: not enforced for root (nor with CAP_SYS_RESOURCE/CAP_SYS_ADMIN), so the
// server drops to nobody in its child, with a limit a few tasks above what nobody runs now.
TEST_P(Flood, SpawnFailureClosesThatConnectionCountsItAndGoesOn) {
  const auto& engine = GetParam();
  const passwd* nobody = ::getpwnam("nobody");
  if (::geteuid() != 0 || nobody == nullptr) {
    GTEST_SKIP() << "needs root (to run the server as nobody, where RLIMIT_NPROC applies)";
  }
  // nobody must be able to reach the binary: the build folder may not be traversable by
  // others (a clone under /root), so the server runs from a copy in a world-readable folder.
  const PublicServerCopy copy;
  FastRandom random(test_seed());
  ServerLaunch launch = launch_of(engine, cap_flags(engine_info(engine), 64));
  // Room for the server itself and two workers; counted before, for nobody's other tasks.
  const auto nproc = static_cast<rlim_t>(tasks_of_user(nobody->pw_uid) + 1 + 2);
  launch.spawn.limits = {{RLIMIT_NPROC, nproc, nproc}};
  launch.spawn.run_as_uid = static_cast<int>(nobody->pw_uid);
  launch.spawn.run_as_gid = static_cast<int>(nobody->pw_gid);
  launch.stats_dir_for_anyone = true;
  std::optional<ServerUnderTest> server;
  try {
    server.emplace(launch);
  } catch (const std::exception& error) {
    FAIL() << "cannot start the server as nobody from " << server_binary() << ": "
           << error.what();
  }
  const auto address = server->address();
  std::vector<Fd> held;
  std::vector<std::byte> scratch;
  int refused = 0;
  // Hold connections until one is refused: the exact headroom depends on what else nobody
  // runs, so the test finds the limit instead of assuming it.
  for (int i = 0; i < 16 && refused == 0; ++i) {
    auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
    if (check_echo(fd.get(), make_frame(random_bytes(random, 100)), scratch).empty()) {
      held.push_back(std::move(fd));
    } else {
      ++refused;
    }
  }
  ASSERT_EQ(refused, 1) << "no spawn failed with " << held.size() << " connections held";
  ASSERT_FALSE(held.empty()) << "not even one connection was served under RLIMIT_NPROC " << nproc;
  ASSERT_TRUE(server->running()) << server->describe();
  const std::size_t held_count = held.size();
  held.erase(held.begin());  // a worker finishes: the next connection must be served
  bool resumed = false;
  for (int attempt = 0; attempt < 50 && !resumed; ++attempt) {
    auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
    resumed = check_echo(fd.get(), make_frame(random_bytes(random, 100)), scratch).empty();
    if (!resumed) {
      ++refused;
      std::this_thread::sleep_for(milliseconds(50));  // the worker may still be exiting
    }
  }
  EXPECT_TRUE(resumed) << "the server did not serve again after a worker finished";
  held.clear();
  const auto report = server->stop();
  ASSERT_TRUE(report.status) << server->describe();
  EXPECT_TRUE(report.status->success()) << server->describe();
  EXPECT_TRUE(report.leftovers.empty());
  ASSERT_FALSE(report.stats.is_null()) << server->describe();
  const auto spawn_errors = stats_counter(report.stats, "spawn_errors");
  const auto counted = stats_counter(report.stats, "connections_refused");
  EXPECT_EQ(spawn_errors, static_cast<std::uint64_t>(refused));
  EXPECT_EQ(counted, static_cast<std::uint64_t>(refused));
  write_case_result({{"case", case_name("spawn_failure", engine)},
                     {"test", "spawn_failure"},
                     {"engine", engine},
                     {"rlimit_nproc", nproc},
                     {"connections_held", held_count},
                     {"connections_refused", refused},
                     {"spawn_errors_counted", spawn_errors},
                     {"connections_refused_counted", counted},
                     {"zombies_after", report.leftovers.size()}});
}

// Every engine with a process or thread per connection, capped by its cap_option.
INSTANTIATE_TEST_SUITE_P(Engines, Flood,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return engine.concurrency == Concurrency::per_connection;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });

}  // namespace
}  // namespace echolab::test
