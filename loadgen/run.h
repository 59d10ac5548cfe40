#pragma once
// run_load: one whole run. Resolves and probes the target (a refused or silent target is a
// one-line error before any thread starts), splits the connections, message quota and rate
// over --threads event loops, lets them connect, starts the clock for all of them at once,
// and merges what they measured, exactly, into a RunResult.
#include <chrono>
#include <functional>

#include "core/address.h"
#include "loadgen/config.h"
#include "loadgen/live_status.h"
#include "loadgen/result.h"

namespace echolab {

// Called from run_load's own thread, a few times a second, while the run goes on.
using StatusCallback = std::function<void(const LiveStatus&)>;

// The first resolved address that answers: streams must accept a connection, datagram
// targets must echo one probe message within --timeout. Throws UsageError with one line
// ("cannot reach HOST:PORT: connect: Connection refused") otherwise.
[[nodiscard]] SocketAddress probe_target(const LoadConfig& config);

// A run that starts together with other generators (echolab-loadgen-mpi) agrees on the
// moment here. Called once every generator thread has connected, it returns an absolute
// CLOCK_REALTIME time; run_load sleeps until then, starts the whole run there (warm-up,
// then the measured window, as always), and records in RunResult::start_late_s how late it
// really started. Anything it throws ends the run before it starts and propagates.
using StartAgreement = std::function<std::chrono::system_clock::time_point()>;

// Throws UsageError or std::system_error during set-up only (a generator thread that fails
// to set up included); once running, every failure is counted in the result. One exception:
// generator threads still running well past the hard time limit (a bug) are left behind,
// detached, and std::runtime_error "generator threads did not stop at the hard time limit"
// is thrown: never a hang, never an exit of the process.
[[nodiscard]] RunResult run_load(const LoadConfig& config, const StatusCallback& on_status = {},
                                 const StartAgreement& agree_on_start = {});

}  // namespace echolab
