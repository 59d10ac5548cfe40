#include "tests/support/engine_cases.h"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

#include "tests/support/socket_client.h"

namespace echolab::test {

std::string_view name_of(Listen listen) {
  switch (listen) {
    case Listen::tcp_v4:
      return "tcp_v4";
    case Listen::tcp_v6:
      return "tcp_v6";
    case Listen::unix_stream:
      return "unix_stream";
    case Listen::udp_v4:
      return "udp_v4";
    case Listen::udp_v6:
      return "udp_v6";
    case Listen::unix_dgram:
      return "unix_dgram";
  }
  return "?";
}

std::string_view transport_of(Listen listen) {
  switch (listen) {
    case Listen::tcp_v4:
    case Listen::tcp_v6:
      return "tcp";
    case Listen::unix_stream:
      return "unix-stream";
    case Listen::udp_v4:
    case Listen::udp_v6:
      return "udp";
    case Listen::unix_dgram:
      return "unix-dgram";
  }
  return "?";
}

int socket_type_of(Listen listen) {
  const auto transport = transport_of(listen);
  return transport == "tcp" || transport == "unix-stream" ? SOCK_STREAM : SOCK_DGRAM;
}

std::vector<std::string> listen_flags(Listen listen, const TempDir& dir, std::string_view address) {
  std::string chosen(address);
  if (chosen.empty()) {
    switch (listen) {
      case Listen::tcp_v4:
      case Listen::udp_v4:
        chosen = "127.0.0.1:0";
        break;
      case Listen::tcp_v6:
      case Listen::udp_v6:
        chosen = "[::1]:0";
        break;
      case Listen::unix_stream:
      case Listen::unix_dgram:
        chosen = "unix:" + dir.file("server.sock");
        break;
    }
  }
  return {"--listen", chosen, "--transport", std::string(transport_of(listen))};
}

std::vector<std::string> engine_names(Serves kind) {
  std::vector<std::string> names;
  for (const auto& engine : engines()) {
    if (engine.serves == kind) {
      names.emplace_back(engine.name);
    }
  }
  return names;
}

std::vector<std::string> engine_names(const std::function<bool(const EngineInfo&)>& wanted) {
  std::vector<std::string> names;
  for (const auto& engine : engines()) {
    if (wanted(engine)) {
      names.emplace_back(engine.name);
    }
  }
  return names;
}

const EngineInfo& engine_info(std::string_view engine) {
  const auto* info = find_engine(engine);
  if (info == nullptr) {
    throw std::invalid_argument("engine " + std::string(engine) + " is not in the table");
  }
  return *info;
}

const EngineInfo& first_engine(const std::function<bool(const EngineInfo&)>& wanted,
                               std::string_view what) {
  for (const auto& engine : engines()) {
    if (wanted(engine) && (engine.available == nullptr || engine.available())) {
      return engine;
    }
  }
  throw std::runtime_error("no available engine in the table is " + std::string(what));
}

std::vector<std::string> cap_flags(const EngineInfo& engine, int value) {
  if (engine.cap_option.empty()) {
    return {};
  }
  return {std::string(engine.cap_option), std::to_string(value)};
}

std::string server_binary() {
  if (const char* path = std::getenv("ECHOLAB_SERVER_BIN"); path != nullptr && *path != '\0') {
    return path;
  }
  return ECHOLAB_SERVER_BIN;
}

std::string loadgen_binary() {
  if (const char* path = std::getenv("ECHOLAB_LOADGEN_BIN"); path != nullptr && *path != '\0') {
    return path;
  }
  return ECHOLAB_LOADGEN_BIN;
}

std::string skip_reason(std::string_view engine) {
  const auto* info = find_engine(engine);
  if (info == nullptr) {
    return "engine " + std::string(engine) + " is not in the table";
  }
  if (info->available != nullptr && !info->available()) {
    return unavailable_reason(*info);
  }
  return {};
}

std::string skip_reason(std::string_view engine, Listen listen) {
  if ((listen == Listen::tcp_v6 || listen == Listen::udp_v6) && !ipv6_loopback_available()) {
    return "no IPv6 loopback (::1) here";
  }
  const auto* info = find_engine(engine);
  const auto transport = parse_transport(transport_of(listen));
  if (info != nullptr && transport && !serves_transport(*info, *transport)) {
    return "engine " + std::string(engine) + " does not serve " + std::string(transport_of(listen));
  }
  return skip_reason(engine);
}

std::string test_name_part(std::string_view text) {
  std::string name(text);
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  return name;
}

}  // namespace echolab::test
