#include "core/address.h"

#include <netdb.h>
#include <sys/un.h>

#include <cstring>

#include "core/error.h"

namespace echolab {

std::string_view to_string(Transport transport) {
  switch (transport) {
    case Transport::tcp:
      return "tcp";
    case Transport::udp:
      return "udp";
    case Transport::unix_stream:
      return "unix-stream";
    case Transport::unix_dgram:
      return "unix-dgram";
  }
  return "?";
}

std::optional<Transport> parse_transport(std::string_view text) {
  for (Transport t : {Transport::tcp, Transport::udp, Transport::unix_stream, Transport::unix_dgram}) {
    if (text == to_string(t)) {
      return t;
    }
  }
  return std::nullopt;
}

bool is_stream(Transport transport) {
  return transport == Transport::tcp || transport == Transport::unix_stream;
}

bool is_unix(Transport transport) {
  return transport == Transport::unix_stream || transport == Transport::unix_dgram;
}

int socket_type(Transport transport) { return is_stream(transport) ? SOCK_STREAM : SOCK_DGRAM; }

std::string printable(std::string_view text) {
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

bool is_port_number(std::string_view port) {
  if (port.empty() || port.size() > 5) {
    return false;
  }
  unsigned value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') {
      return false;
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

}  // namespace

Endpoint parse_endpoint(std::string_view text) {
  constexpr std::string_view kUnixPrefix = "unix:";
  Endpoint endpoint;
  if (text.starts_with(kUnixPrefix)) {
    endpoint.unix_path = std::string(text.substr(kUnixPrefix.size()));
    if (endpoint.unix_path.empty()) {
      throw UsageError("unix address needs a path: unix:/path/to/socket");
    }
    return endpoint;
  }
  std::size_t colon;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw UsageError("bad address '" + printable(text) + "': expected [IPV6]:PORT");
    }
    endpoint.host = std::string(text.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw UsageError("bad address '" + printable(text) + "': expected HOST:PORT, [IPV6]:PORT or unix:/path");
    }
    endpoint.host = std::string(text.substr(0, colon));
    if (endpoint.host.find(':') != std::string::npos) {
      throw UsageError("bad address '" + printable(text) + "': put IPv6 addresses in brackets, [::1]:PORT");
    }
  }
  endpoint.port = std::string(text.substr(colon + 1));
  if (endpoint.port.empty()) {
    throw UsageError("bad address '" + printable(text) + "': missing port");
  }
  if (!is_port_number(endpoint.port)) {
    throw UsageError("bad address '" + printable(text) + "': the port must be a number from 0 to 65535");
  }
  return endpoint;
}

std::vector<SocketAddress> resolve(const Endpoint& endpoint, Transport transport, bool passive) {
  std::vector<SocketAddress> result;
  if (endpoint.is_unix() != is_unix(transport)) {
    throw UsageError(std::string("transport ") + std::string(to_string(transport)) +
                     (endpoint.is_unix() ? " cannot use a unix: address" : " needs a unix:/path address"));
  }
  if (endpoint.is_unix()) {
    SocketAddress address;
    auto* un = reinterpret_cast<sockaddr_un*>(&address.storage);
    if (endpoint.unix_path.size() >= sizeof(un->sun_path)) {
      throw UsageError("unix socket path too long (max " + std::to_string(sizeof(un->sun_path) - 1) +
                       " bytes): " + printable(endpoint.unix_path));
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, endpoint.unix_path.c_str(), endpoint.unix_path.size() + 1);
    address.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + endpoint.unix_path.size() + 1);
    result.push_back(address);
    return result;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socket_type(transport);
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* list = nullptr;
  const char* host = endpoint.host.empty() ? nullptr : endpoint.host.c_str();
  const int rc = ::getaddrinfo(host, endpoint.port.c_str(), &hints, &list);
  if (rc != 0) {
    const std::string reason = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    throw UsageError("cannot resolve '" + printable(endpoint.host) + ":" + endpoint.port + "': " + reason);
  }
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    SocketAddress address;
    std::memcpy(&address.storage, ai->ai_addr, ai->ai_addrlen);
    address.length = ai->ai_addrlen;
    result.push_back(address);
  }
  ::freeaddrinfo(list);
  return result;
}

std::string format_address(const sockaddr* address, socklen_t length) {
  if (address->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(address);
    const auto path_length = static_cast<std::size_t>(length) - offsetof(sockaddr_un, sun_path);
    if (length <= offsetof(sockaddr_un, sun_path) || un->sun_path[0] == '\0') {
      return "unix:";  // unnamed or abstract (autobound) peer
    }
    return "unix:" + printable(std::string_view(un->sun_path, ::strnlen(un->sun_path, path_length)));
  }
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  const int rc = ::getnameinfo(address, length, host, sizeof(host), service, sizeof(service),
                               NI_NUMERICHOST | NI_NUMERICSERV);
  if (rc != 0) {
    return std::string("?(") + ::gai_strerror(rc) + ")";
  }
  if (address->sa_family == AF_INET6) {
    return std::string("[") + host + "]:" + service;
  }
  return std::string(host) + ":" + service;
}

std::string format_address(const SocketAddress& address) {
  return format_address(address.get(), address.length);
}

std::string local_address(int fd) {
  SocketAddress address;
  if (::getsockname(fd, address.get(), &address.length) != 0) {
    throw_sys_error("getsockname");
  }
  return format_address(address);
}

}  // namespace echolab
