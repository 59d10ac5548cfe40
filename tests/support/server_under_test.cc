#include "tests/support/server_under_test.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "tests/support/eventually.h"

namespace echolab::test {
namespace {

constexpr milliseconds kStopDeadline{10'000};
constexpr milliseconds kFdSettle{3'000};

const char* const kCounterNames[] = {"connections_accepted",
                                     "connections_closed",
                                     "connections_refused",
                                     "messages",
                                     "bytes_in",
                                     "bytes_out",
                                     "protocol_errors",
                                     "datagrams_truncated",
                                     "datagrams_dropped",
                                     "peer_resets",
                                     "io_errors",
                                     "accept_errors",
                                     "spawn_errors"};

std::string protocol_flag(const std::vector<std::string>& flags) {
  for (std::size_t i = 0; i + 1 < flags.size(); ++i) {
    if (flags[i] == "--protocol") {
      return flags[i + 1];
    }
  }
  return "framed";  // the contract's default
}

std::string describe_all(const std::vector<ProcStat>& processes) {
  std::string text;
  for (const auto& process : processes) {
    text += (text.empty() ? "" : ", ") + process.describe();
  }
  return text;
}

void expect_stats_shape(const nlohmann::json& stats, const std::string& engine, const std::string& transport,
                        const std::string& protocol) {
  EXPECT_EQ(stats.value("engine", ""), engine);
  EXPECT_EQ(stats.value("transport", ""), transport);
  EXPECT_EQ(stats.value("protocol", ""), protocol);
  ASSERT_TRUE(stats.contains("counters") && stats["counters"].is_object()) << stats.dump();
  for (const char* name : kCounterNames) {
    EXPECT_TRUE(stats["counters"].contains(name) && stats["counters"][name].is_number_unsigned())
        << "counters." << name << " missing or not a count in " << stats.dump();
  }
  ASSERT_TRUE(stats.contains("connections_active")) << stats.dump();
  EXPECT_EQ(stats["connections_active"], 0) << "connections still counted open after exit";
  EXPECT_TRUE(stats.contains("connections_peak")) << stats.dump();
  ASSERT_TRUE(stats.contains("syscalls") && stats["syscalls"].is_object()) << stats.dump();
  for (const char* name : {"accept", "recv", "send", "recvfrom", "sendto", "select"}) {
    EXPECT_TRUE(stats["syscalls"].contains(name)) << "syscalls." << name << " missing";
  }
  ASSERT_TRUE(stats.contains("workers") && stats["workers"].is_array()) << stats.dump();
  for (const auto& worker : stats["workers"]) {
    EXPECT_TRUE(worker.contains("worker") && worker.contains("connections") && worker.contains("messages"))
        << worker.dump();
  }
}

// The transport of a server started without a listener kind: its engine's kind, tcp or udp.
std::string default_transport(const std::string& engine) {
  const auto* info = find_engine(engine);
  return info == nullptr || info->serves == Serves::streams ? "tcp" : "udp";
}

}  // namespace

ServerLaunch launch_of(std::string engine, std::vector<std::string> flags) {
  ServerLaunch launch;
  launch.engine = std::move(engine);
  launch.flags = std::move(flags);
  return launch;
}

ServerUnderTest::ServerUnderTest(std::string_view engine, Listen listen, std::vector<std::string> extra,
                                 std::string_view listen_address)
    : ServerUnderTest([&] {
        ServerLaunch launch = launch_of(std::string(engine), std::move(extra));
        launch.on = listen;
        launch.listen = listen_address;
        return launch;
      }()) {}

ServerUnderTest::ServerUnderTest(const ServerLaunch& launch)
    : engine_(launch.engine),
      protocol_(protocol_flag(launch.flags)),
      dir_("echolab-server"),
      stats_path_(dir_.file("stats.json")) {
  if (launch.stats_dir_for_anyone) {
    ::chmod(dir_.path().c_str(), 0777);
  }
  // With a prefix, the prefix's program comes first and the server binary is an argument.
  std::vector<std::string> args(launch.prefix.begin(), launch.prefix.end());
  const std::string program = args.empty() ? server_binary() : args.front();
  if (!args.empty()) {
    args.erase(args.begin());
    args.push_back(server_binary());
  }
  args.insert(args.end(), {"--engine", engine_});
  if (launch.on) {
    transport_ = transport_of(*launch.on);
    for (auto& flag : listen_flags(*launch.on, dir_, launch.listen)) {
      args.push_back(std::move(flag));
    }
  } else {
    transport_ = default_transport(engine_);
    args.insert(args.end(), {"--listen", launch.listen.empty() ? "127.0.0.1:0" : launch.listen,
                             "--transport", transport_});
  }
  args.insert(args.end(), {"--stats-json", stats_path_});
  args.insert(args.end(), launch.flags.begin(), launch.flags.end());
  server_.emplace(program, std::move(args), milliseconds(15'000), launch.spawn);
  tracker_.emplace(server_->pid(), milliseconds(5));
  // Right after the ready line, as the contract's descriptor check prescribes. (Under
  // `ip netns exec` the pid is the server's too: it execs.)
  baseline_fds_ = count_open_fds(server_->pid());
  for (const auto& child : list_descendants(server_->pid())) {
    baseline_child_fds_.emplace_back(child, settled_fd_count(child.pid, kFdSettle));
  }
}

bool ServerUnderTest::exited_now() { return server_->process().wait_for_exit(milliseconds(0)).has_value(); }

int ServerUnderTest::leaked_fds(milliseconds settle) {
  const int now = wait_for_fd_count(server_->pid(), baseline_fds_, settle);
  return now < 0 ? 0 : now - baseline_fds_;
}

void ServerUnderTest::expect_no_fd_leak() {
  const int settled = wait_for_fd_count(server_->pid(), baseline_fds_, kFdSettle);
  EXPECT_EQ(settled, baseline_fds_) << "server pid " << server_->pid() << " holds " << settled
                                    << " descriptors, " << baseline_fds_ << " right after start-up";
  // A prefork worker leaks in its own table. Its baseline was taken once it had settled
  // (settled_fd_count); it may close more later, so only growth counts as a leak.
  for (const auto& [child, baseline] : baseline_child_fds_) {
    int now = -1;
    (void)eventually([&] { return (now = count_open_fds(child.pid)) <= baseline; }, kFdSettle,
                     milliseconds(20));
    if (still_present(child)) {
      EXPECT_LE(now, baseline) << "child " << child.describe() << " holds " << now << " descriptors, "
                               << baseline << " at start-up";
    }
  }
}

StopReport ServerUnderTest::stop(milliseconds deadline) {
  StopReport report;
  report.status = server_->terminate(deadline);
  if (!report.status) {
    return report;  // the destructors kill the tree
  }
  tracker_->stop();
  report.children_seen = tracker_->seen().size();
  report.leftovers = tracker_->still_present_now();
  report.leftover_processes = static_cast<int>(report.leftovers.size());
  for (const auto& left : report.leftovers) {
    report.zombies += left.state == 'Z' ? 1 : 0;
  }
  report.leftovers_described = describe_all(report.leftovers);
  try {
    report.stats = read_json_file(stats_path_);
  } catch (const std::exception& error) {
    std::cerr << "[   INFO   ] stats unreadable: " << error.what() << '\n';
  }
  return report;
}

nlohmann::json ServerUnderTest::stop_and_check() {
  const auto status = server_->terminate(kStopDeadline);
  if (!status) {
    ADD_FAILURE() << "no exit within " << kStopDeadline.count() << " ms of SIGTERM: " << server_->describe();
    return nullptr;
  }
  EXPECT_TRUE(status->success()) << status->describe() << ": " << server_->describe();
  tracker_->stop();
  // Printed so a reader can tell the check below was not vacuous for fork and prefork.
  std::cout << "[   INFO   ] " << tracker_->seen().size() << " child processes seen\n";
  const auto leftovers = tracker_->still_present_now();
  EXPECT_TRUE(leftovers.empty()) << "processes left behind by the server (Z = never reaped): "
                                 << describe_all(leftovers);
  // Only a leftover process can still hold the server's stdout or stderr open.
  EXPECT_TRUE(server_->process().wait_for_output_closed(milliseconds(2'000)))
      << "stdout/stderr still open after the server's exit";
  const auto out = server_->process().stdout_text();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "stdout should hold exactly the ready line: '" << out
                                                         << "'";
  nlohmann::json stats;
  try {
    stats = read_json_file(stats_path_);
  } catch (const std::exception& error) {
    ADD_FAILURE() << "stats: " << error.what() << "; " << server_->describe();
    return nullptr;
  }
  expect_stats_shape(stats, engine_, transport_, protocol_);
  return stats;
}

std::uint64_t stats_counter(const nlohmann::json& stats, std::string_view name) {
  const std::string key(name);
  if (!stats.is_object() || !stats.contains("counters") || !stats["counters"].contains(key) ||
      !stats["counters"][key].is_number_unsigned()) {
    ADD_FAILURE() << "no counters." << key << " in " << stats.dump();
    return 0;
  }
  return stats["counters"][key].get<std::uint64_t>();
}

rlim_t raise_own_fd_limit(rlim_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= wanted) {
    return limit.rlim_cur;
  }
  if (limit.rlim_max < wanted) {
    limit.rlim_max = wanted;  // only root may; otherwise the call below fails
  }
  limit.rlim_cur = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

}  // namespace echolab::test
