// The load generator's choice of source addresses, in-process: --source-addresses parsing and
// plan_sources() against made-up port ranges and targets. No sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

#include "core/error.h"
#include "loadgen/options.h"
#include "loadgen/sources.h"

namespace echolab {
namespace {

LoadConfig parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"--target", "127.0.0.1:7007"});
  return parse_command_line(args).config;
}

SocketAddress ipv4(const char* text) {
  SocketAddress address;
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(7007);
  EXPECT_EQ(::inet_pton(AF_INET, text, &in.sin_addr), 1);
  std::memcpy(&address.storage, &in, sizeof(in));
  address.length = sizeof(in);
  return address;
}

SocketAddress ipv6_loopback() {
  SocketAddress address;
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(7007);
  in6.sin6_addr = in6addr_loopback;
  std::memcpy(&address.storage, &in6, sizeof(in6));
  address.length = sizeof(in6);
  return address;
}

std::vector<std::string> texts(const SourcePlan& plan) {
  std::vector<std::string> out;
  for (const SocketAddress& address : plan.addresses) {
    out.push_back(format_address(address));
  }
  return out;
}

TEST(LoadgenSources, CountsRangesAndSingleAddressesParse) {
  const SourceRange count = parse_source_addresses("8");
  EXPECT_EQ(count.count, 8u);
  EXPECT_EQ(count.first, (127u << 24) | 1u);
  const SourceRange range = parse_source_addresses("127.0.0.3-127.0.1.2");
  EXPECT_EQ(range.first, (127u << 24) | 3u);
  EXPECT_EQ(range.count, 256u);
  EXPECT_EQ(parse_source_addresses("127.1.2.3").count, 1u);
}

TEST(LoadgenSources, BadValuesAreUsageErrors) {
  for (const char* bad : {"", "0", "1025", "-3", "127.0.0.1-", "localhost", "10.0.0.1", "127.0.0.1-10.0.0.1",
                          "127.0.0.9-127.0.0.1", "127.0.0.1-127.0.4.1", "::1", "8 "}) {
    EXPECT_THROW((void)parse_source_addresses(bad), UsageError) << bad;
  }
  EXPECT_THROW((void)parse({"--transport", "udp", "--source-addresses", "2"}), UsageError);
  EXPECT_EQ(parse({"--source-addresses", "4"}).source_addresses->count, 4u);
}

TEST(LoadgenSources, SpreadOnlyWhenTheEphemeralPortsWouldRunOut) {
  const PortRange ports{40000, 40099};  // 100 ports: 50 connections per address
  EXPECT_EQ(connections_per_source(ports), 50u);
  LoadConfig config = parse({"-c", "50"});
  EXPECT_TRUE(plan_sources(config, ipv4("127.0.0.1"), ports).addresses.empty());
  config.connections = 51;
  const SourcePlan two = plan_sources(config, ipv4("127.0.0.1"), ports);
  EXPECT_EQ(texts(two), (std::vector<std::string>{"127.0.0.1:0", "127.0.0.2:0"}));
  EXPECT_NE(two.note.find("51 connections spread over 2 source addresses 127.0.0.1-127.0.0.2"),
            std::string::npos)
      << two.note;
  config.connections = 1000;
  EXPECT_EQ(plan_sources(config, ipv4("127.0.0.1"), ports).addresses.size(), 20u);
  // Nothing to spread over: not loopback, not IPv4, or the range unknown.
  EXPECT_TRUE(plan_sources(config, ipv4("10.1.2.3"), ports).addresses.empty());
  EXPECT_TRUE(plan_sources(config, ipv6_loopback(), ports).addresses.empty());
  EXPECT_TRUE(plan_sources(config, ipv4("127.0.0.1"), std::nullopt).addresses.empty());
}

TEST(LoadgenSources, TheOptionWinsAndNeedsAnIpv4LoopbackTarget) {
  const LoadConfig config = parse({"--source-addresses", "127.0.0.5-127.0.0.7"});
  const SourcePlan plan = plan_sources(config, ipv4("127.0.0.1"), PortRange{40000, 40099});
  EXPECT_EQ(texts(plan), (std::vector<std::string>{"127.0.0.5:0", "127.0.0.6:0", "127.0.0.7:0"}));
  EXPECT_THROW((void)plan_sources(config, ipv4("10.1.2.3"), std::nullopt), UsageError);
  EXPECT_THROW((void)plan_sources(config, ipv6_loopback(), std::nullopt), UsageError);
}

}  // namespace
}  // namespace echolab
