// A server on [::]:0 is dual stack: IPv4 clients reach it through 127.0.0.1 and appear as
// IPv4-mapped peers (::ffff:127.0.0.1), as --verbose's accept lines must show.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kIoTimeout{10'000};

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto span = std::as_bytes(std::span(text));
  return {span.begin(), span.end()};
}

class DualStackTest : public testing::TestWithParam<std::string> {};

TEST_P(DualStackTest, Ipv4ClientIsServedAsMappedPeer) {
  const auto& engine = GetParam();
  if (const auto reason = skip_reason(engine, Listen::tcp_v6); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  const bool streams = find_engine(engine)->serves == Serves::streams;
  ServerUnderTest running(engine, streams ? Listen::tcp_v6 : Listen::udp_v6, {"--verbose"}, "[::]:0");
  auto& server = running.server();
  ASSERT_TRUE(server.ready().address.starts_with("[::]:")) << server.describe();
  const auto port = std::to_string(server.port());
  std::vector<std::byte> scratch;

  for (const auto* host : {"127.0.0.1:", "[::1]:"}) {
    SCOPED_TRACE(host + port);
    const auto address = parse_socket_address(host + port);
    const auto message = bytes_of(std::string("hello over ") + host);
    if (streams) {
      auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
      EXPECT_EQ(check_echo(fd.get(), make_frame(message), scratch), "");
      const auto peer =
          std::string(address.family() == AF_INET ? "[::ffff:127.0.0.1]:" : "[::1]:") +
          std::to_string(local_port(fd.get()));
      const auto line = "echolab-server: accepted " + peer + "\n";
      EXPECT_TRUE(server.process().wait_for_stderr_containing(line, milliseconds(5'000)))
          << "no '" << line << "' in stderr: " << server.process().stderr_text();
    } else {
      auto fd = connect_socket(address, SOCK_DGRAM, kIoTimeout);
      const auto result = exchange_datagram(fd.get(), make_frame(message), 64, {}, scratch);
      EXPECT_TRUE(result.ok) << result.error;
    }
  }
  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (!stats.is_null()) {
    EXPECT_GE(stats_counter(stats, "messages"), 2u);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, DualStackTest, testing::ValuesIn([] {
                           auto names = engine_names(Serves::streams);
                           for (auto& name : engine_names(Serves::datagrams)) {
                             names.push_back(name);
                           }
                           return names;
                         }()),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

}  // namespace
}  // namespace echolab::test
