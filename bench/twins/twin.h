#pragma once
// What every twin shares: its command line, the listening socket, the ready line and a
// blocking echo loop. The twins are the references echolab's engines are measured against
// (bench/fidelity.py), so they use nothing of echolab: plain POSIX, a few lines each.
//
//   twin-MODEL 127.0.0.1:PORT [--workers N]     (PORT 0: the kernel picks one)
//
// The ready line is echolab-server's, word for word ("echolab-server listening tcp
// 127.0.0.1:PORT"), so any harness that starts echolab-server can start a twin instead.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace twin {

struct Args {
  sockaddr_in address{};
  int workers = 4;
};

[[noreturn]] inline void usage(const char* program, const std::string& why) {
  std::fprintf(stderr, "%s: %s\nusage: %s 127.0.0.1:PORT [--workers N]\n", program, why.c_str(), program);
  std::exit(2);
}

[[noreturn]] inline void die(const char* call) {
  std::fprintf(stderr, "twin: %s: %s\n", call, std::strerror(errno));
  std::exit(1);
}

inline Args parse(int argc, char** argv) {
  Args args;
  std::string listen;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--workers" && i + 1 < argc) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || n < 1 || n > 1024) usage(argv[0], "--workers takes a number from 1 to 1024");
      args.workers = static_cast<int>(n);
    } else if (listen.empty() && arg.rfind("--", 0) != 0) {
      listen = arg;
    } else {
      usage(argv[0], "unexpected argument " + arg);
    }
  }
  const auto colon = listen.rfind(':');
  char* end = nullptr;
  const long port = colon == std::string::npos ? -1 : std::strtol(listen.c_str() + colon + 1, &end, 10);
  args.address.sin_family = AF_INET;
  if (port < 0 || port > 65535 || *end != '\0' || colon + 1 == listen.size() ||
      ::inet_pton(AF_INET, listen.substr(0, colon).c_str(), &args.address.sin_addr) != 1) {
    usage(argv[0], "expected an IPv4 listen address IP:PORT, got '" + listen + "'");
  }
  args.address.sin_port = htons(static_cast<uint16_t>(port));
  return args;
}

// Listens (backlog 1024, as echolab-server), then prints the ready line.
inline int listen_and_announce(const Args& args) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0) die("socket");
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&args.address), sizeof(args.address)) != 0) die("bind");
  if (::listen(fd, 1024) != 0) die("listen");
  sockaddr_in bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  char ip[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &bound.sin_addr, ip, sizeof(ip));
  std::printf("echolab-server listening tcp %s:%u\n", ip, ntohs(bound.sin_port));
  std::fflush(stdout);  // before any fork
  return fd;
}

// Small echoes go out at once, as echolab-server sends them.
inline void no_delay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Echoes a blocking connection until the peer closes (or a signal interrupts), then closes.
inline void echo_blocking(int fd) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    for (ssize_t sent = 0; sent < n;) {
      const ssize_t m = ::send(fd, buffer + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
      if (m <= 0) {
        ::close(fd);
        return;
      }
      sent += m;
    }
  }
  ::close(fd);
}

}  // namespace twin
