#include "tests/loadgen/loadgen_harness.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

int unique_number() {
  static int next = 0;
  return ++next;
}

// A UDP port that was free a moment ago (socat cannot report the port it bound).
int pick_free_udp_port() {
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    throw std::runtime_error("cannot bind a UDP socket to pick a port");
  }
  return local_port(fd.get());
}

}  // namespace

std::string source_path(const std::string& relative) {
  return std::string(ECHOLAB_SOURCE_DIR) + "/" + relative;
}

EchoServerProcess start_echolab_server(const std::string& engine, const std::string& transport,
                                       const std::string& protocol, const std::string& listen) {
  return EchoServerProcess(server_binary(), {"--engine", engine, "--listen", listen, "--transport",
                                             transport, "--protocol", protocol});
}

std::optional<SocatEcho> start_socat_echo(const std::string& transport, const TempDir& dir) {
  const auto socat = find_in_path("socat");
  if (!socat) {
    return std::nullopt;
  }
  SocatEcho echo;
  if (transport == "tcp") {
    // -d -d makes socat print the address it listens on, port 0 resolved.
    echo.process = std::make_unique<Process>(std::vector<std::string>{*socat, "-d", "-d", "TCP4-LISTEN:0,bind=127.0.0.1,fork,reuseaddr", "PIPE"});
    std::string port;
    echo.process->wait_for_output(
        OutputStream::err,
        [&port](std::string_view text) {
          const std::size_t at = text.find("listening on AF=2 127.0.0.1:");
          if (at == std::string_view::npos) return false;
          const std::size_t start = at + std::string_view("listening on AF=2 127.0.0.1:").size();
          const std::size_t end = text.find_first_not_of("0123456789", start);
          if (end == std::string_view::npos) return false;
          port = std::string(text.substr(start, end - start));
          return true;
        },
        milliseconds(10'000));
    if (port.empty()) {
      throw std::runtime_error("socat did not report its port: " + echo.process->stderr_text());
    }
    echo.target = "127.0.0.1:" + port;
  } else if (transport == "udp") {
    const int port = pick_free_udp_port();
    echo.process = std::make_unique<Process>(std::vector<std::string>{
        *socat, "UDP4-RECVFROM:" + std::to_string(port) + ",bind=127.0.0.1,fork", "PIPE"});
    echo.target = "127.0.0.1:" + std::to_string(port);
    // Ready once it echoes a datagram (until it has bound, pings are refused).
    const SocketAddress address = parse_socket_address(echo.target);
    std::vector<std::byte> scratch;
    const std::vector<std::byte> ping = {std::byte{'p'}, std::byte{'i'}, std::byte{'n'}, std::byte{'g'}};
    ExchangeResult result;
    for (int attempt = 0; attempt < 100 && !result.ok; ++attempt) {
      Fd fd = connect_socket(address, SOCK_DGRAM, milliseconds(200));
      result = exchange_datagram(fd.get(), ping, ping.size(), ResendPolicy{}, scratch);
      if (!result.ok) std::this_thread::sleep_for(milliseconds(50));
    }
    if (!result.ok) {
      throw std::runtime_error("socat udp echo not ready: " + result.error);
    }
  } else {
    const std::string path = dir.file("socat-" + std::to_string(unique_number()) + ".sock");
    echo.process = std::make_unique<Process>(std::vector<std::string>{*socat, "UNIX-LISTEN:" + path + ",fork", "PIPE"});
    echo.target = "unix:" + path;
    for (int i = 0; i < 200; ++i) {
      struct stat info {};
      if (::stat(path.c_str(), &info) == 0) break;
      std::this_thread::sleep_for(milliseconds(25));
    }
  }
  return echo;
}

SilentListener::SilentListener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd_ || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd_.get(), 64) != 0) {
    throw std::runtime_error("silent listener: cannot listen on 127.0.0.1");
  }
}

std::string SilentListener::address() const {
  return "127.0.0.1:" + std::to_string(local_port(fd_.get()));
}

}  // namespace echolab::test
