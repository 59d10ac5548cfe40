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

}  // namespace echolab
