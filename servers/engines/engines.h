#pragma once
// Entry points of the engines, for the registry's table only. Each is defined in its own
// file under engines/ and knows nothing of the others.
#include "servers/engine.h"

namespace echolab {

void run_iterative(EngineContext& context);
void run_iterative_udp(EngineContext& context);
void run_udp_pool(EngineContext& context);
void run_udp_batch(EngineContext& context);
void run_prefork(EngineContext& context);
void run_prethread(EngineContext& context);
void run_fork(EngineContext& context);
void run_thread(EngineContext& context);
void run_select(EngineContext& context);
void run_poll(EngineContext& context);
void run_epoll(EngineContext& context);
void run_epoll_reuseport(EngineContext& context);
void run_epoll_exclusive(EngineContext& context);
void run_reactor_pool(EngineContext& context);
#if ECHOLAB_WITH_URING
void run_io_uring(EngineContext& context);
#endif

// Real probes for the registry's `available`: can this kernel do what the engine needs?
bool reuse_port_available();
bool epoll_exclusive_available();
#if ECHOLAB_WITH_URING
bool io_uring_available();
#endif

}  // namespace echolab
