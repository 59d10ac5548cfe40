#pragma once
// Source addresses for many TCP connections to one loopback server. Linux picks a client's
// ephemeral port per (source, destination) pair from net.ipv4.ip_local_port_range, so one
// source address holds at most that many connections to one server (28,232 by default), and
// connect() slows down well before, searching a nearly full range. Binding each socket to one
// of several 127.0.0.x addresses first, with IP_BIND_ADDRESS_NO_PORT so that the port is still
// chosen at connect() for the whole 4-tuple, gives every address a range of its own. Every
// 127.0.0.0/8 address is local on Linux: nothing needs configuring.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.h"

namespace echolab {

struct LoadConfig;

// The largest number of source addresses --source-addresses takes: 1024 of them cover far
// more connections than --connections allows.
inline constexpr std::uint32_t kMaxSourceAddresses = 1024;

// A run of consecutive IPv4 addresses in 127.0.0.0/8 (host byte order).
struct SourceRange {
  std::uint32_t first = 0;
  std::uint32_t count = 0;
  std::string text;  // as the user wrote it
};

// "127.0.0.1-127.0.0.8", "127.0.0.5", or a count "8" (127.0.0.1 onwards). Throws UsageError
// with one line for anything else, for addresses outside 127.0.0.0/8, and past
// kMaxSourceAddresses.
[[nodiscard]] SourceRange parse_source_addresses(std::string_view text);

// The ephemeral ports connect() picks from (both ends included).
struct PortRange {
  std::uint32_t low = 0;
  std::uint32_t high = 0;
  [[nodiscard]] std::uint32_t size() const { return high >= low ? high - low + 1 : 0; }
};

// net.ipv4.ip_local_port_range of this network namespace; nullopt if it cannot be read.
[[nodiscard]] std::optional<PortRange> read_port_range();

// Connections one source address is given: half of the range, so that connect() never has to
// search a nearly full one (and ports in TIME_WAIT from earlier runs still leave room).
[[nodiscard]] std::uint32_t connections_per_source(const PortRange& ports);

struct SourcePlan {
  std::vector<SocketAddress> addresses;  // empty: no bind, the kernel chooses the source
  std::string note;                      // what was chosen and why (for stderr); empty if nothing
};

// --source-addresses given: those addresses (UsageError unless the target is an IPv4 loopback
// address reached over tcp). Not given: for an IPv4 loopback tcp target whose connections do
// not fit connections_per_source(ports), enough addresses from 127.0.0.1 on; otherwise none.
[[nodiscard]] SourcePlan plan_sources(const LoadConfig& config, const SocketAddress& target,
                                      const std::optional<PortRange>& ports);

// Binds a fresh IPv4 socket to `source`, port 0, with IP_BIND_ADDRESS_NO_PORT so that the port
// is picked at connect(). Returns 0 or errno.
[[nodiscard]] int bind_source(int fd, const SocketAddress& source);

}  // namespace echolab
