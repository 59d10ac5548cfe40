#include "loadgen/sources.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "loadgen/config.h"

namespace echolab {
namespace {

constexpr std::uint32_t kLoopbackNet = 127u << 24;
constexpr std::uint32_t kLoopbackMask = 0xFF000000u;
constexpr std::uint32_t kFirstLoopback = kLoopbackNet | 1;  // 127.0.0.1

bool is_loopback(std::uint32_t address) { return (address & kLoopbackMask) == kLoopbackNet; }

std::string dotted(std::uint32_t address) {
  in_addr in{};
  in.s_addr = htonl(address);
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &in, text, sizeof(text));
  return text;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  const std::string copy(text);
  in_addr in{};
  if (::inet_pton(AF_INET, copy.c_str(), &in) != 1) {
    return std::nullopt;
  }
  return ntohl(in.s_addr);
}

std::string range_text(std::uint32_t first, std::uint32_t count) {
  return count == 1 ? dotted(first) : dotted(first) + "-" + dotted(first + count - 1);
}

std::vector<SocketAddress> addresses_of(std::uint32_t first, std::uint32_t count) {
  std::vector<SocketAddress> out(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(first + i);
    std::memcpy(&out[i].storage, &in, sizeof(in));
    out[i].length = sizeof(in);
  }
  return out;
}

std::optional<std::uint32_t> loopback_v4(const SocketAddress& target) {
  if (target.family() != AF_INET) {
    return std::nullopt;
  }
  sockaddr_in in{};
  std::memcpy(&in, &target.storage, sizeof(in));
  const std::uint32_t address = ntohl(in.sin_addr.s_addr);
  return is_loopback(address) ? std::optional(address) : std::nullopt;
}

}  // namespace

SourceRange parse_source_addresses(std::string_view text) {
  const std::string whole(text);
  auto bad = [&whole](const std::string& why) {
    return UsageError("bad --source-addresses '" + whole + "': " + why);
  };
  SourceRange range;
  range.text = whole;
  std::uint64_t count = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) {
    if (count < 1 || count > kMaxSourceAddresses) {
      throw bad("a count of addresses must be from 1 to " + std::to_string(kMaxSourceAddresses));
    }
    range.first = kFirstLoopback;
    range.count = static_cast<std::uint32_t>(count);
    return range;
  }
  const std::size_t dash = text.find('-');
  const auto first = parse_ipv4(text.substr(0, dash));
  const auto last = dash == std::string_view::npos ? first : parse_ipv4(text.substr(dash + 1));
  if (!first || !last) {
    throw bad("expected a count (8), an address (127.0.0.2) or a range (127.0.0.1-127.0.0.8)");
  }
  if (!is_loopback(*first) || !is_loopback(*last)) {
    throw bad("source addresses must be loopback addresses (127.0.0.0/8)");
  }
  if (*first > *last) {
    throw bad("the range's first address is past its last");
  }
  if (*last - *first >= kMaxSourceAddresses) {
    throw bad("at most " + std::to_string(kMaxSourceAddresses) + " addresses");
  }
  range.first = *first;
  range.count = *last - *first + 1;
  return range;
}

std::optional<PortRange> read_port_range() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  PortRange ports;
  if (!(in >> ports.low >> ports.high) || ports.size() == 0) {
    return std::nullopt;
  }
  return ports;
}

std::uint32_t connections_per_source(const PortRange& ports) { return std::max<std::uint32_t>(1, ports.size() / 2); }

SourcePlan plan_sources(const LoadConfig& config, const SocketAddress& target,
                        const std::optional<PortRange>& ports) {
  SourcePlan plan;
  const std::optional<std::uint32_t> loopback =
      config.transport == Transport::tcp ? loopback_v4(target) : std::nullopt;
  if (config.source_addresses) {
    if (!loopback) {
      throw UsageError("--source-addresses needs an IPv4 loopback target over tcp (127.0.0.0/8): " +
                       config.target_text + " is " + format_address(target));
    }
    const SourceRange& range = *config.source_addresses;
    plan.addresses = addresses_of(range.first, range.count);
    plan.note = "connections spread over " + std::to_string(range.count) + " source address" +
                (range.count == 1 ? "" : "es") + " " + range_text(range.first, range.count) +
                " (--source-addresses)";
    return plan;
  }
  if (!loopback || !ports) {
    return plan;
  }
  const auto wanted = static_cast<std::uint64_t>(config.connections);
  const std::uint64_t per_source = connections_per_source(*ports);
  if (wanted <= per_source) {
    return plan;
  }
  const auto count = static_cast<std::uint32_t>(
      std::min<std::uint64_t>((wanted + per_source - 1) / per_source, kMaxSourceAddresses));
  plan.addresses = addresses_of(kFirstLoopback, count);
  plan.note = std::to_string(wanted) + " connections spread over " + std::to_string(count) +
              " source addresses " + range_text(kFirstLoopback, count) + ": ip_local_port_range " +
              std::to_string(ports->low) + "-" + std::to_string(ports->high) + " gives one address " +
              std::to_string(per_source) + " (half its ports)";
  return plan;
}

int bind_source(int fd, const SocketAddress& source) {
  const int on = 1;
  if (::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on)) != 0) {
    return errno;
  }
  return ::bind(fd, source.get(), source.length) == 0 ? 0 : errno;
}

}  // namespace echolab
