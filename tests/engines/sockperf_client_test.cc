// --protocol sockperf against sockperf's own, unmodified client (Debian's sockperf): its
// ping-pong and under-load clients, over TCP against every stream engine and over UDP
// against every datagram engine. sockperf's summary line ("[Total Run] ... SentMessages=N;
// ReceivedMessages=M") must show its messages answered, and the server's stats must agree
// with it: every message received, exactly the ones asking a reply answered, the rest
// counted in messages_no_reply. Then bad input, per transport: a length under the header
// or over --max-frame closes that connection only (a datagram: dropped, no reply), counted
// in protocol_errors, and the next client is served.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/sockperf.h"
#include "tests/support/engine_cases.h"
#include "tests/support/process.h"
#include "tests/support/server_under_test.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

constexpr milliseconds kSockperfDeadline{30'000};
constexpr milliseconds kIoTimeout{5'000};
constexpr int kUnderLoadRate = 2000;  // messages per second
constexpr int kReplyEvery = 10;       // under load, one message in this many asks a reply
constexpr std::uint16_t kPing = kSockperfClient | kSockperfReplyRequested;

enum class Client { ping_pong, under_load };

struct Summary {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
};

// The counts of sockperf 3.7's "[Total Run] RunTime=...; Warm up time=... msec;
// SentMessages=N; ReceivedMessages=M" line (client.cpp, client_statistics).
std::optional<Summary> parse_total_run(const std::string& output) {
  const auto line = output.find("[Total Run]");
  if (line == std::string::npos) {
    return std::nullopt;
  }
  const auto sent = output.find("SentMessages=", line);
  const auto received = output.find("ReceivedMessages=", line);
  if (sent == std::string::npos || received == std::string::npos) {
    return std::nullopt;
  }
  Summary summary;
  summary.sent = std::strtoull(output.c_str() + sent + std::strlen("SentMessages="), nullptr, 10);
  summary.received = std::strtoull(output.c_str() + received + std::strlen("ReceivedMessages="), nullptr, 10);
  return summary;
}

std::vector<std::string> sockperf_command(const std::string& sockperf, Client client, bool tcp,
                                          const std::string& address) {
  const auto colon = address.rfind(':');
  std::vector<std::string> argv = {sockperf, client == Client::ping_pong ? "ping-pong" : "under-load",
                                   "-i", address.substr(0, colon), "-p", address.substr(colon + 1),
                                   "-t", "1", "-m", "64"};
  if (tcp) {
    argv.emplace_back("--tcp");
  }
  if (client == Client::under_load) {
    argv.insert(argv.end(), {"--mps", std::to_string(kUnderLoadRate), "--reply-every",
                             std::to_string(kReplyEvery)});
  }
  return argv;
}

class SockperfClientTest : public testing::TestWithParam<std::tuple<std::string, Client>> {};

TEST_P(SockperfClientTest, ItsMessagesAreAnsweredAsSockperfsServerWould) {
  const auto& [engine, client] = GetParam();
  const auto sockperf = find_in_path("sockperf");
  if (!sockperf) {
    GTEST_SKIP() << "sockperf is not installed (apt-get install sockperf)";
  }
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const bool tcp = engine_info(engine).serves == Serves::streams;
  ServerUnderTest running(engine, tcp ? Listen::tcp_v4 : Listen::udp_v4, {"--protocol", "sockperf"});
  const auto argv = sockperf_command(*sockperf, client, tcp, running.server().ready().address);
  const auto result = run_process(argv, kSockperfDeadline);
  const std::string output = result.out + result.err;
  EXPECT_TRUE(result.status.success()) << result.status.describe() << ":\n" << output;
  const auto summary = parse_total_run(output);
  ASSERT_TRUE(summary.has_value()) << "no [Total Run] line in sockperf's output:\n" << output;
  RecordProperty("sockperf_sent", std::to_string(summary->sent));
  RecordProperty("sockperf_received", std::to_string(summary->received));

  const auto stats = running.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  const auto answered = stats_counter(stats, "messages");
  const auto no_reply = stats_counter(stats, "messages_no_reply");
  const auto seen = answered + no_reply;
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 0u);
  EXPECT_LE(summary->received, answered) << "sockperf counted replies the server never sent";
  EXPECT_LE(seen, summary->sent) << "the server saw messages sockperf never sent";
  // UDP on a busy loopback may drop a datagram now and then; TCP delivers every one.
  const std::uint64_t may_lose = tcp ? 0 : summary->sent / 50;
  EXPECT_GE(seen + may_lose, summary->sent) << output;
  if (client == Client::ping_pong) {
    // One message in flight at a time, each asking a reply: all answered but the last,
    // which the client's timer may cut off.
    EXPECT_GE(summary->received, 100u) << output;
    EXPECT_LE(summary->sent - summary->received, 1u) << output;
    EXPECT_EQ(no_reply, 0u);
  } else {
    // Sequence numbers start at 1; the client asks a reply of each kReplyEvery-th.
    EXPECT_GE(summary->sent, static_cast<std::uint64_t>(kUnderLoadRate) / 2) << output;
    if (tcp) {
      EXPECT_EQ(answered, summary->sent / kReplyEvery);
    } else {
      EXPECT_LE(answered, summary->sent / kReplyEvery);
      EXPECT_GE(answered + may_lose, summary->sent / kReplyEvery);
    }
    EXPECT_GE(no_reply, answered) << "most messages under load ask no reply";
    // The client stops receiving at its timer: the last replies may still be in flight.
    EXPECT_GE(summary->received + 3 + may_lose, answered) << output;
  }
}

std::vector<std::tuple<std::string, Client>> all_cases() {
  std::vector<std::tuple<std::string, Client>> cases;
  for (const Serves kind : {Serves::streams, Serves::datagrams}) {
    for (const auto& engine : engine_names(kind)) {
      cases.emplace_back(engine, Client::ping_pong);
      cases.emplace_back(engine, Client::under_load);
    }
  }
  return cases;
}

std::string case_name(const testing::TestParamInfo<std::tuple<std::string, Client>>& case_info) {
  const auto& [engine, client] = case_info.param;
  return test_name_part(engine) + (client == Client::ping_pong ? "_ping_pong" : "_under_load");
}

INSTANTIATE_TEST_SUITE_P(Engines, SockperfClientTest, testing::ValuesIn(all_cases()), case_name);

// A message of `length` bytes (at least a header, whatever its length field says).
std::vector<std::byte> sockperf_message(std::uint64_t sequence, std::uint16_t flags, std::uint32_t length) {
  std::vector<std::byte> bytes(std::max<std::size_t>(length, kSockperfHeaderSize), std::byte{0x5A});
  encode_sockperf_header({sequence, flags, length}, bytes.data());
  return bytes;
}

// Sends a ping on a connected socket and checks its reply: same bytes, client flag cleared.
std::string ping(int fd, std::uint64_t sequence, bool datagram) {
  const auto request = sockperf_message(sequence, kPing, 40);
  auto want = request;
  make_sockperf_reply(want.data());
  std::vector<std::byte> reply(datagram ? 65536 : request.size());
  // A datagram may be lost on loopback: sent again a few times.
  for (int attempt = 0; attempt < (datagram ? 5 : 1); ++attempt) {
    if (const auto sent = send_all(fd, request); !sent.ok()) {
      return "send: " + sent.describe();
    }
    if (datagram) {
      const ssize_t n = ::recv(fd, reply.data(), reply.size(), 0);
      if (n < 0) {
        continue;  // SO_RCVTIMEO: lost, send again
      }
      reply.resize(static_cast<std::size_t>(n));
    } else if (const auto got = receive_exact(fd, reply); !got.ok()) {
      return "reply: " + got.describe();
    }
    return reply == want ? std::string() : "the reply is not the request with the client flag cleared";
  }
  return "no reply to 5 datagrams";
}

class SockperfBadInputTest : public testing::TestWithParam<std::string> {};

struct BadCase {
  std::string what;
  std::vector<std::byte> bytes;
};

TEST_P(SockperfBadInputTest, BadLengthsAreCountedAndOnlyTheirSenderIsDropped) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const bool stream = engine_info(engine).serves == Serves::streams;
  ServerUnderTest running(engine, stream ? Listen::tcp_v4 : Listen::udp_v4,
                          {"--protocol", "sockperf", "--max-frame", "1000", "--datagram-buffer", "800"});
  const auto address = parse_socket_address(running.server().ready().address);
  const int type = stream ? SOCK_STREAM : SOCK_DGRAM;
  std::vector<BadCase> cases = {{"length 13", sockperf_message(2, kPing, 13)},
                                {"length 0", sockperf_message(3, kPing, 0)},
                                {"length over --max-frame", sockperf_message(4, kPing, 1001)}};
  cases.back().bytes.resize(kSockperfHeaderSize);  // the header is enough to refuse it
  if (!stream) {
    auto short_of_length = sockperf_message(5, kPing, 40);
    short_of_length.resize(20);
    auto cut_header = sockperf_message(6, kPing, 40);
    cut_header.resize(10);
    cases.push_back({"shorter than its length", short_of_length});
    cases.push_back({"shorter than a header", cut_header});
  }
  const std::size_t malformed = cases.size();
  if (!stream) {
    // Within --max-frame but over --datagram-buffer: truncated by the kernel, not malformed.
    cases.push_back({"truncated", sockperf_message(7, kPing, 900)});
  }
  for (const auto& bad : cases) {
    Fd offender = connect_socket(address, type, kIoTimeout);
    if (!stream) {
      set_io_timeouts(offender.get(), milliseconds(300));
    }
    EXPECT_EQ(ping(offender.get(), 1, !stream), "") << bad.what;
    ASSERT_TRUE(send_all(offender.get(), bad.bytes).ok()) << bad.what;
    if (stream) {
      const auto closed = wait_for_peer_close(offender.get(), kIoTimeout);
      EXPECT_TRUE(closed.outcome == IoOutcome::closed || closed.outcome == IoOutcome::reset)
          << bad.what << ": " << closed.describe();
      EXPECT_EQ(closed.bytes, 0u) << bad.what << ": nothing is answered to a bad message";
    } else {
      // No reply to it: the next reply is the next ping's.
      EXPECT_EQ(ping(offender.get(), 8, true), "") << bad.what;
    }
    offender.reset();
    // Nothing else disturbed: the next client is served.
    Fd next = connect_socket(address, type, kIoTimeout);
    if (!stream) {
      set_io_timeouts(next.get(), milliseconds(300));
    }
    EXPECT_EQ(ping(next.get(), 9, !stream), "") << bad.what;
  }
  const auto stats = running.stop_and_check();
  ASSERT_FALSE(stats.is_null());
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), malformed);
  if (!stream) {
    EXPECT_EQ(stats_counter(stats, "datagrams_truncated"), 1u);
    EXPECT_EQ(stats_counter(stats, "datagrams_dropped"), cases.size());
  }
  EXPECT_EQ(stats_counter(stats, "messages_no_reply"), 0u);
}

std::vector<std::string> every_engine() {
  auto engines = engine_names(Serves::streams);
  for (auto& engine : engine_names(Serves::datagrams)) {
    engines.push_back(std::move(engine));
  }
  return engines;
}

INSTANTIATE_TEST_SUITE_P(Engines, SockperfBadInputTest, testing::ValuesIn(every_engine()),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

// The protocol is for sockperf's client: echolab-loadgen must refuse it, not speak raw.
TEST(SockperfProtocolCli, TheServerTakesItTheLoadGeneratorRefusesIt) {
  constexpr milliseconds kRunDeadline{10'000};
  const auto loadgen = run_process({loadgen_binary(), "--target", "127.0.0.1:1", "--protocol", "sockperf",
                                    "--duration", "200ms", "--quiet"},
                                   kRunDeadline);
  EXPECT_TRUE(loadgen.status.exited && loadgen.status.code == 2) << loadgen.status.describe();
  EXPECT_EQ(std::count(loadgen.err.begin(), loadgen.err.end(), '\n'), 1) << loadgen.err;
  EXPECT_NE(loadgen.err.find("sockperf"), std::string::npos) << loadgen.err;
  const auto help = run_process({server_binary(), "--help"}, kRunDeadline);
  EXPECT_NE(help.out.find("sockperf"), std::string::npos) << "--help names the protocol";
}

}  // namespace
}  // namespace echolab::test
