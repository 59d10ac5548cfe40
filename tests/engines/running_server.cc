#include "tests/engines/running_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

namespace echolab::test {
namespace {

using std::chrono::milliseconds;

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

void expect_stats_shape(const nlohmann::json& stats, const std::string& engine,
                        std::string_view transport, const std::string& protocol) {
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
    EXPECT_TRUE(worker.contains("worker") && worker.contains("connections") &&
                worker.contains("messages"))
        << worker.dump();
  }
}

}  // namespace

RunningServer::RunningServer(std::string_view engine, Listen listen, std::vector<std::string> extra,
                             std::string_view listen_address)
    : engine_(engine),
      listen_(listen),
      protocol_(protocol_flag(extra)),
      stats_path_(dir_.file("stats.json")) {
  std::vector<std::string> args = {"--engine", engine_};
  for (auto& flag : listen_flags(listen, dir_, listen_address)) {
    args.push_back(std::move(flag));
  }
  args.insert(args.end(), {"--stats-json", stats_path_});
  args.insert(args.end(), extra.begin(), extra.end());
  server_.emplace(server_binary(), std::move(args));
  tracker_.emplace(server_->pid());
  // Right after the ready line, as the contract's fd check prescribes.
  baseline_fds_ = count_open_fds(server_->pid());
  for (const auto& child : list_descendants(server_->pid())) {
    baseline_child_fds_.emplace_back(child, count_open_fds(child.pid));
  }
}

void RunningServer::expect_no_fd_leak() {
  const int settled = wait_for_fd_count(server_->pid(), baseline_fds_, kFdSettle);
  EXPECT_EQ(settled, baseline_fds_) << "server pid " << server_->pid() << " holds " << settled
                                    << " descriptors, " << baseline_fds_ << " right after start-up";
  // A prefork worker leaks in its own table. Children may still be settling their own
  // start-up when counted, so only growth counts as a leak.
  for (const auto& [child, baseline] : baseline_child_fds_) {
    int now = count_open_fds(child.pid);
    for (auto deadline = std::chrono::steady_clock::now() + kFdSettle;
         now > baseline && std::chrono::steady_clock::now() < deadline;) {
      std::this_thread::sleep_for(milliseconds(20));
      now = count_open_fds(child.pid);
    }
    if (still_present(child)) {
      EXPECT_LE(now, baseline) << "child " << child.describe() << " holds " << now
                               << " descriptors, " << baseline << " at start-up";
    }
  }
}

nlohmann::json RunningServer::stop_and_check() {
  const auto status = server_->terminate(kStopDeadline);
  if (!status) {
    ADD_FAILURE() << "no exit within " << kStopDeadline.count()
                  << " ms of SIGTERM: " << server_->describe();
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
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1)
      << "stdout should hold exactly the ready line: '" << out << "'";
  nlohmann::json stats;
  try {
    stats = read_json_file(stats_path_);
  } catch (const std::exception& error) {
    ADD_FAILURE() << "stats: " << error.what() << "; " << server_->describe();
    return nullptr;
  }
  expect_stats_shape(stats, engine_, transport_of(listen_), protocol_);
  return stats;
}

std::uint64_t counter(const nlohmann::json& stats, std::string_view name) {
  const std::string key(name);
  if (!stats.contains("counters") || !stats["counters"].contains(key) ||
      !stats["counters"][key].is_number_unsigned()) {
    ADD_FAILURE() << "no counters." << key << " in " << stats.dump();
    return 0;
  }
  return stats["counters"][key].get<std::uint64_t>();
}

}  // namespace echolab::test
