#pragma once
// The one interface between echolab-server and its engines. An engine owns concurrency and
// teardown (threads, processes, readiness loops, reaping, joining) and nothing else: bytes
// go through the core's StreamSession / accept_datagram, which alone know the protocol.
#include <chrono>
#include <span>
#include <string_view>

#include "core/address.h"
#include "core/session.h"
#include "core/socket.h"
#include "core/stats.h"

namespace echolab {

struct ServerConfig {
  Endpoint listen;
  Transport transport = Transport::tcp;
  ProtocolConfig protocol;
  SocketOptions socket;
  int workers = 4;        // pool size of udp-pool, prefork, prethread
  int max_children = 64;  // live children of fork
  int max_threads = 64;   // live threads of thread
  // A stream connection that completes no message for this long is closed and counted
  // (slow or stuck clients: slowloris, a peer that never reads). Zero: never.
  std::chrono::milliseconds idle_timeout{0};
};

struct EngineContext {
  const ServerConfig& config;
  int socket;          // listening (streams) or bound (datagrams) socket; owned by main
  ServerStats& stats;  // shared with forked children
};

enum class Serves { streams, datagrams };

struct EngineInfo {
  std::string_view name;         // --engine NAME and the key in JSON results
  std::string_view description;  // one line: the pattern and where its concurrency comes from
  Serves serves;
  // A real probe: can this engine run on this machine and build?
  bool (*available)();
  // Serves until stop_requested(), then closes or finishes its connections, reaps its
  // children and joins its threads before returning. Throws std::system_error only when it
  // cannot start (a failed pool spawn at start-up, say).
  void (*run)(EngineContext& context);
};

[[nodiscard]] std::span<const EngineInfo> engines();
[[nodiscard]] const EngineInfo* find_engine(std::string_view name);
[[nodiscard]] bool serves_transport(const EngineInfo& engine, Transport transport);

}  // namespace echolab
