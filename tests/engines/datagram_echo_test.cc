// Every datagram engine, over UDP/IPv4, UDP/IPv6 and unix-dgram, in framed and raw mode:
// 32 concurrent clients each ping-pong 500 datagrams of random content and log-uniform
// random size up to 65507 bytes. Loopback UDP drops under load, so each datagram is resent
// until echoed; a sequence number at its start tells its echo from late echoes of earlier
// ones. All must finally come back byte-exact, and the server must stop cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr int kClients = 32;
constexpr std::size_t kMessagesPerClient = 500;
constexpr std::size_t kMaxDatagram = 65507;
constexpr std::size_t kFramePrefix = 4;
constexpr std::size_t kSequenceBytes = 4;

struct ClientReport {
  std::size_t echoed = 0;
  std::uint64_t resends = 0;
  std::uint64_t stale = 0;
  std::string error;
};

// [prefix: size - 4, big-endian, framed mode only][sequence number, little-endian][random],
// cut to `size`: a 1-byte raw datagram keeps only the sequence number's low byte, still
// enough to tell it from the previous message's late echo.
void build_datagram(std::vector<std::byte>& out, std::size_t size, bool framed,
                    std::uint32_t sequence, FastRandom& random) {
  out.resize(size);
  random.fill(out);
  std::size_t at = 0;
  if (framed) {
    write_be32(static_cast<std::uint32_t>(size - kFramePrefix), out.data());
    at = kFramePrefix;
  }
  std::memcpy(out.data() + at, &sequence, std::min(kSequenceBytes, size - at));
}

ClientReport run_client(const SocketAddress& address, bool framed, std::uint64_t seed) {
  ClientReport report;
  FastRandom random(seed);
  // A framed datagram carries at least its 4-byte prefix (an empty payload).
  const std::size_t min = framed ? kFramePrefix : 1;
  const auto sizes = plan_message_sizes(random, kMessagesPerClient, min, kMaxDatagram,
                                        {min, min + 1, kMaxDatagram});
  const std::size_t id_bytes = (framed ? kFramePrefix : 0) + kSequenceBytes;
  const ResendPolicy policy;
  std::vector<std::byte> request;
  std::vector<std::byte> scratch;
  try {
    auto fd = connect_socket(address, SOCK_DGRAM, std::chrono::milliseconds(2'000));
    for (std::uint32_t sequence = 0; sequence < sizes.size(); ++sequence) {
      build_datagram(request, sizes[sequence], framed, sequence, random);
      const auto result = exchange_datagram(fd.get(), request, id_bytes, policy, scratch);
      report.resends += static_cast<std::uint64_t>(result.attempts - 1);
      report.stale += static_cast<std::uint64_t>(result.stale_replies);
      if (!result.ok) {
        report.error = "datagram " + std::to_string(sequence) + " (" +
                       std::to_string(request.size()) + " bytes): " + result.error;
        return report;
      }
      ++report.echoed;
    }
  } catch (const std::exception& error) {
    report.error = error.what();
  }
  return report;
}

class DatagramEchoTest
    : public testing::TestWithParam<std::tuple<std::string, Listen, std::string>> {};

TEST_P(DatagramEchoTest, ConcurrentClientsGetEveryDatagramBackThenServerStopsCleanly) {
  const auto& [engine, listen, protocol] = GetParam();
  if (const auto reason = skip_reason(engine, listen); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const auto seed = test_seed();
  SCOPED_TRACE("ECHOLAB_TEST_SEED=" + std::to_string(seed));
  ServerUnderTest running(engine, listen, {"--protocol", protocol});
  const auto address = running.address();

  std::vector<ClientReport> reports(kClients);
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back(
          [&, i] { reports[i] = run_client(address, protocol == "framed", seed + i); });
    }
  }
  std::uint64_t resends = 0;
  std::uint64_t stale = 0;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(reports[i].error, "") << "client " << i;
    resends += reports[i].resends;
    stale += reports[i].stale;
  }
  RecordProperty("resends", std::to_string(resends));
  std::cout << "[   INFO   ] " << resends << " resends, " << stale << " late echoes skipped\n";

  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_GE(stats_counter(stats, "messages"), std::uint64_t{kClients} * kMessagesPerClient);
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 0u);
  EXPECT_EQ(stats_counter(stats, "datagrams_truncated"), 0u);
  EXPECT_LE(stats_counter(stats, "bytes_out"), stats_counter(stats, "bytes_in"));
}

INSTANTIATE_TEST_SUITE_P(Engines, DatagramEchoTest,
                         testing::Combine(testing::ValuesIn(engine_names(Serves::datagrams)),
                                          testing::ValuesIn(kDatagramListens),
                                          testing::Values("framed", "raw")),
                         [](const auto& case_info) {
                           return test_name_part(std::get<0>(case_info.param)) + "_" +
                                  std::string(name_of(std::get<1>(case_info.param))) + "_" +
                                  std::get<2>(case_info.param);
                         });

}  // namespace
}  // namespace echolab::test
