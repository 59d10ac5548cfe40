// The one table of engines. Explicit rather than self-registering: static registration
// silently drops engines that live in a static library.
#include <array>

#include "servers/engine.h"
#include "servers/engines/engines.h"

namespace echolab {
namespace {

bool always_available() { return true; }

constexpr std::array kEngines = {
    EngineInfo{"iterative", "one client at a time: accept, echo until it leaves, accept again",
               Serves::streams, always_available, run_iterative},
    EngineInfo{"iterative-udp", "one thread in recvfrom/sendto on one datagram socket",
               Serves::datagrams, always_available, run_iterative_udp},
    EngineInfo{"udp-pool", "--workers threads blocking in recvfrom on one shared datagram socket",
               Serves::datagrams, always_available, run_udp_pool},
    EngineInfo{"prefork", "--workers processes forked at start, all blocking in accept() on one socket",
               Serves::streams, always_available, run_prefork},
    EngineInfo{"prethread", "--workers threads created at start, all blocking in accept() on one socket",
               Serves::streams, always_available, run_prethread},
    EngineInfo{"fork", "accept, then fork a child per connection (capped by --max-children)",
               Serves::streams, always_available, run_fork},
    EngineInfo{"thread", "accept, then a thread per connection (capped by --max-threads)",
               Serves::streams, always_available, run_thread},
    EngineInfo{"select", "one thread multiplexing non-blocking sockets with select()",
               Serves::streams, always_available, run_select},
};

}  // namespace

std::span<const EngineInfo> engines() { return kEngines; }

const EngineInfo* find_engine(std::string_view name) {
  for (const EngineInfo& engine : kEngines) {
    if (engine.name == name) {
      return &engine;
    }
  }
  return nullptr;
}

bool serves_transport(const EngineInfo& engine, Transport transport) {
  return (engine.serves == Serves::streams) == is_stream(transport);
}

}  // namespace echolab
