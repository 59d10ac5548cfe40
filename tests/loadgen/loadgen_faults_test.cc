// echolab-loadgen against an echo server that misbehaves on purpose (faulty_echo_server.h):
// a flipped byte and a missing echo are counted as such and never as latencies, and a
// 200 ms stall shows in the open mode's high percentiles but not in the closed mode's at one
// connection: the coordinated-omission difference.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/loadgen/faulty_echo_server.h"
#include "tests/loadgen/loadgen_harness.h"
#include "tests/support/eventually.h"

namespace echolab::test {
namespace {

using Fault = FaultyEchoServer::Fault;

std::uint64_t errors(const LoadgenOutcome& run, const char* kind) {
  return run.json.at("errors").at(kind).get<std::uint64_t>();
}
std::uint64_t received(const LoadgenOutcome& run) {
  return run.json.at("messages").at("received").get<std::uint64_t>();
}
double corrected(const LoadgenOutcome& run, const char* key) {
  return run.json.at("latency").at("corrected").at(key).get<double>();
}

std::vector<std::string> flags(const FaultyEchoServer& server, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--target", server.address(), "--warmup", "0", "--quiet",
                                   "--no-status"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The generator itself stalls (SIGSTOP for 150 ms) in an open-loop run slow enough that it
// sleeps between sends: the ~300 messages that fell due meanwhile go out back to back in the
// wake-up after it (a bounded batch, a poll for echoes, the rest: no sleep between), and each
// is still timed from its intended send time, so the stall shows in the corrected latency.
// The stop waits for the server to have seen 400 messages rather than for a fixed time: a
// generator slow to start (a sanitizer build, a busy machine) must be stopped inside its
// measured run, not before it.
TEST(LoadgenFaults, MessagesDueDuringAGeneratorStallGoOutInOneWakeUp) {
  TempDir dir("loadgen-faults");
  FaultyEchoServer server(Fault::none, 0);
  LoadgenRun run(dir, {"--target", server.address(), "--mode", "open", "--rate", "2000",
                       "--connections", "16", "--warmup", "0", "--duration", "1.5s", "--timeout", "1s",
                       "--quiet", "--no-status"});
  ASSERT_TRUE(eventually([&] { return server.messages() >= 400; }, std::chrono::seconds(20)))
      << "the generator never got going";
  ASSERT_TRUE(run.send_signal(SIGSTOP));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ASSERT_TRUE(run.send_signal(SIGCONT));
  const LoadgenOutcome outcome = run.finish();
  ASSERT_FALSE(outcome.json.is_null()) << outcome.describe();
  const nlohmann::json& thread = outcome.json.at("generator").at("threads").at(0);
  EXPECT_GE(thread.at("largest_burst_msgs").get<std::uint64_t>(), 250u) << thread.dump();
  EXPECT_GE(outcome.json.at("latency").at("send_lag").at("max_us").get<double>(), 140'000.0);
  EXPECT_GE(corrected(outcome, "max_us"), 140'000.0);
  EXPECT_EQ(errors(outcome, "total"), 0u) << outcome.json["errors"].dump();
  EXPECT_EQ(outcome.json.at("messages").at("sent"), outcome.json.at("messages").at("received"));
}

TEST(LoadgenFaults, FlippedByteIsCountedNotTimed) {
  TempDir dir("loadgen-faults");
  FaultyEchoServer server(Fault::flip, 50);
  const LoadgenOutcome run = run_loadgen(dir, flags(server, {"--messages", "200"}));
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_EQ(errors(run, "mismatched"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(run.json["anomalies"]["mismatched_bytes"].get<std::uint64_t>(), 1u);
  EXPECT_EQ(errors(run, "total"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(received(run), 199u);
  EXPECT_EQ(run.json["latency"]["corrected"]["count"].get<std::uint64_t>(), 199u);
}

TEST(LoadgenFaults, MissingEchoInPingPongIsATimeout) {
  TempDir dir("loadgen-faults");
  FaultyEchoServer server(Fault::drop, 30);
  const LoadgenOutcome run =
      run_loadgen(dir, flags(server, {"--messages", "100", "--timeout", "300ms"}));
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_EQ(errors(run, "timeout"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(errors(run, "total"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(received(run), 99u);
}

TEST(LoadgenFaults, MissingEchoInAPipelineIsMissing) {
  TempDir dir("loadgen-faults");
  FaultyEchoServer server(Fault::drop, 50);
  const LoadgenOutcome run =
      run_loadgen(dir, flags(server, {"--messages", "200", "--pipeline", "4"}));
  ASSERT_TRUE(run.status.success()) << run.describe();
  // The echo of the next message arrives, intact, where the dropped one's was due.
  EXPECT_EQ(errors(run, "missing"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(errors(run, "total"), 1u) << run.json["errors"].dump();
  EXPECT_EQ(received(run), 199u);
}

// One 200 ms stall. In open mode every message due during the stall waits for it, and is
// timed from when it was due: ~20 % of a 1000 msgs/s second sit in the stall, so p99 is
// close to the stall itself. In closed mode at one connection the generator waits with the
// server and sends nothing meanwhile: one slow message among 2000, invisible at p99.
// Both bounds come from the injected sleep, not from how fast this machine is.
TEST(LoadgenFaults, StallShowsInOpenModeButHidesInClosedMode) {
  TempDir dir("loadgen-faults");
  const double stall_us = 1000.0 * static_cast<double>(FaultyEchoServer::kStall.count());
  {
    FaultyEchoServer server(Fault::stall, 300);
    const LoadgenOutcome open = run_loadgen(
        dir, flags(server, {"--mode", "open", "--rate", "1000", "--duration", "1s"}));
    ASSERT_TRUE(open.status.success()) << open.describe();
    EXPECT_EQ(errors(open, "total"), 0u) << open.json["errors"].dump();
    EXPECT_GE(corrected(open, "max_us"), stall_us);
    EXPECT_GE(corrected(open, "p99_us"), 0.75 * stall_us) << open.json["latency"].dump();
  }
  {
    FaultyEchoServer server(Fault::stall, 300);
    const LoadgenOutcome closed = run_loadgen(dir, flags(server, {"--messages", "2000"}));
    ASSERT_TRUE(closed.status.success()) << closed.describe();
    EXPECT_EQ(errors(closed, "total"), 0u) << closed.json["errors"].dump();
    EXPECT_GE(corrected(closed, "max_us"), stall_us);
    EXPECT_LT(corrected(closed, "p99_us"), 0.75 * stall_us) << closed.json["latency"].dump();
  }
}

// Datagrams: each misfortune counted as what it is, and never as a new reply.
struct DatagramCase {
  FaultyDatagramEchoServer::Fault fault;
  std::vector<std::string> extra;
  const char* error_kind;  // the failure counted once, or nullptr
  const char* anomaly;     // the anomaly noted once, or nullptr
  std::uint64_t received;  // of 200
};

TEST(LoadgenFaults, DatagramLossLatenessDuplicatesAndReordering) {
  using F = FaultyDatagramEchoServer::Fault;
  const std::vector<DatagramCase> cases = {
      {F::drop, {"--timeout", "100ms"}, "timeout", nullptr, 199},
      // Open mode keeps the run going for a second, long after the late reply comes.
      {F::late, {"--timeout", "100ms", "--mode", "open", "--rate", "200"}, "timeout", "late", 199},
      {F::duplicate, {}, nullptr, "duplicate", 200},
      {F::reorder, {"--pipeline", "2"}, nullptr, "reordered", 200},
  };
  TempDir dir("loadgen-faults");
  for (const DatagramCase& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.fault));
    FaultyDatagramEchoServer server(c.fault, 50);
    std::vector<std::string> args = {"--target", server.address(), "--transport", "udp",
                                     "--messages", "200", "--warmup", "0", "--quiet", "--no-status"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const LoadgenOutcome run = run_loadgen(dir, args);
    ASSERT_TRUE(run.status.success()) << run.describe();
    // The probe is the first datagram the server sees, so message 50 is the 49th measured.
    EXPECT_EQ(received(run), c.received) << run.json["errors"].dump() << run.json["anomalies"].dump();
    EXPECT_EQ(errors(run, "total"), c.error_kind ? 1u : 0u) << run.json["errors"].dump();
    if (c.error_kind) {
      EXPECT_EQ(errors(run, c.error_kind), 1u);
    }
    for (const char* anomaly : {"late", "duplicate", "reordered", "mismatched_bytes"}) {
      const bool expected = c.anomaly != nullptr && std::string(c.anomaly) == anomaly;
      EXPECT_EQ(run.json["anomalies"][anomaly].get<std::uint64_t>(), expected ? 1u : 0u) << anomaly;
    }
  }
}

}  // namespace
}  // namespace echolab::test
