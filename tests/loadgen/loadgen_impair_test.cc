// The load generator's datagram counters against a relay that drops, duplicates, reorders
// and delays datagrams both ways (tests/loadgen/impair_relay.h), with a real echolab-server
// behind it. The relay logs every reply it delivered, in order; what echolab-loadgen must
// report follows from that log exactly, message by message:
//   received    messages with at least one reply delivered
//   timeout     messages sent without any reply delivered (lost one way or the other)
//   duplicate   replies delivered for a message already answered
//   reordered   first replies delivered after the first reply of a later message on the
//               same socket (sequence below the highest answered so far)
// Replies are never delayed past --timeout here, so nothing is "late".
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/framing.h"
#include "loadgen/message.h"
#include "tests/loadgen/impair_relay.h"
#include "tests/loadgen/loadgen_harness.h"

namespace echolab::test {
namespace {

constexpr std::uint32_t kProbeConnection = 0xFFFFFFFF;  // loadgen's probe before the run

std::optional<MessageId> id_of(std::span<const std::byte> datagram) {
  if (datagram.size() < kFrameHeaderSize) return std::nullopt;
  return read_message_id(datagram.subspan(kFrameHeaderSize));
}

struct Expected {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t timeout = 0;
  std::uint64_t duplicate = 0;
  std::uint64_t reordered = 0;
};

Expected expected_from(const std::vector<RelayFlow>& flows) {
  Expected e;
  for (const RelayFlow& flow : flows) {
    std::set<std::uint64_t> sent;
    for (const auto& request : flow.requests) {
      const auto id = id_of(request);
      if (id && id->connection != kProbeConnection) sent.insert(id->sequence);
    }
    std::set<std::uint64_t> answered;
    std::optional<std::uint64_t> highest;
    for (const auto& reply : flow.deliveries) {
      const auto id = id_of(reply);
      if (!id || id->connection == kProbeConnection) continue;
      if (!answered.insert(id->sequence).second) {
        ++e.duplicate;
        continue;
      }
      if (highest && id->sequence < *highest) ++e.reordered;
      highest = std::max(highest.value_or(0), id->sequence);
    }
    e.sent += sent.size();
    e.received += answered.size();
    e.timeout += sent.size() - answered.size();
  }
  return e;
}

std::uint64_t at(const nlohmann::json& json, const char* pointer) {
  return json.at(nlohmann::json::json_pointer(pointer)).get<std::uint64_t>();
}

TEST(LoadgenImpaired, DatagramCountersMatchWhatTheRelayDid) {
  TempDir dir("loadgen-impair");
  EchoServerProcess server = start_echolab_server("iterative-udp", "udp", "framed", "127.0.0.1:0");
  ImpairConfig config;
  config.server_port = server.port();
  config.to_server = Impairment{0.03, 0.03, 0.05, 2, std::chrono::milliseconds(20), std::chrono::milliseconds(1)};
  config.to_client = Impairment{0.03, 0.05, 0.05, 2, std::chrono::milliseconds(20), std::chrono::milliseconds(1)};
  config.seed = 20260101;
  config.impaired_requests = 1700;  // of 2000: the last ones pass clean and in order
  config.exempt = [](std::span<const std::byte> datagram) {
    const auto id = id_of(datagram);
    return id && id->connection == kProbeConnection;
  };
  ImpairRelay relay(config);
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", relay.address(), "--transport", "udp", "--protocol", "framed", "--mode",
            "open", "--rate", "4000", "-c", "4", "--messages", "2000", "--warmup", "0",
            "--timeout", "500ms", "--quiet", "--no-status"});
  relay.stop();
  ASSERT_TRUE(run.status.success()) << run.describe();
  const Expected e = expected_from(relay.flows());
  const nlohmann::json& j = run.json;
  SCOPED_TRACE(j["errors"].dump() + " " + j["anomalies"].dump());

  // The relay did impair, both ways, and nothing was left queued when loadgen had finished.
  for (const ImpairCounts* counts : {&relay.to_server(), &relay.to_client()}) {
    EXPECT_GT(counts->dropped, 0u);
    EXPECT_GT(counts->duplicated, 0u);
    EXPECT_GT(counts->held, 0u);
    EXPECT_EQ(counts->left_at_stop, 0u);
  }
  EXPECT_GT(e.reordered, 0u);
  EXPECT_GT(e.duplicate, 0u);
  EXPECT_GT(e.timeout, 0u);

  EXPECT_EQ(e.sent, 2000u);
  EXPECT_EQ(at(j, "/messages/sent"), e.sent);
  EXPECT_EQ(at(j, "/messages/received"), e.received);
  EXPECT_EQ(at(j, "/errors/timeout"), e.timeout);
  EXPECT_EQ(at(j, "/errors/total"), e.timeout);
  EXPECT_EQ(at(j, "/anomalies/duplicate"), e.duplicate);
  EXPECT_EQ(at(j, "/anomalies/reordered"), e.reordered);
  EXPECT_EQ(at(j, "/anomalies/late"), 0u);
  EXPECT_EQ(at(j, "/latency/corrected/count"), e.received);
  // 1 ms added each way: no echo can beat 2 ms.
  EXPECT_GE(j["latency"]["uncorrected"]["min_us"].get<double>(), 2000.0);
}

}  // namespace
}  // namespace echolab::test
