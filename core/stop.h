#pragma once
// Graceful stop on SIGINT/SIGTERM, without races and without polling.
//
// The handler sets a flag, writes a byte to a self-pipe (so select/poll loops wake up), and
// calls shutdown(SHUT_RD) on the descriptors this process registered with watch_for_stop():
// shutdown is async-signal-safe, and its effect persists, so a blocking accept() or recv()
// returns at once whether it was already blocked or is about to block. Frames already
// received can still be answered: only the read side is shut. kDrainTime later (SIGALRM),
// the write sides are shut too, so a send blocked on a peer that never reads cannot hold
// the process past its deadline.
#include <chrono>

namespace echolab {

// How long a stopping server keeps answering what it owes before it closes regardless.
inline constexpr std::chrono::seconds kDrainTime{2};

// Installs the handlers (without SA_RESTART) and creates the wake pipe. Call once, early.
void install_stop_handlers();

[[nodiscard]] bool stop_requested();

// Service work (--work) on frames not yet answered is abandoned once this is true: a stop was
// requested and kWorkCutoff of its drain has passed, leaving the rest of kDrainTime to send
// what was done. Callable from any thread; cheap enough to ask once per message.
inline constexpr std::chrono::milliseconds kWorkCutoff{1500};
[[nodiscard]] bool work_cutoff_passed();

// Asks this process to stop, exactly as a signal would (used by tests and by parents that
// already learned of the stop).
void request_stop();

// Readable once stop was requested or a child/thread reported an exit with notify_wake().
// Level-triggered: drain it with drain_wake_fd().
[[nodiscard]] int wake_fd();
void drain_wake_fd();
// Async-signal-safe; wakes whoever polls wake_fd() (SIGCHLD, a finished thread...).
void notify_wake();

// Slots of descriptors that the stop handler shuts down (SHUT_RD): slot 0 for the listening
// or bound socket, slot 1 for the connection a single-threaded worker is serving. -1 clears.
enum class StopSlot { listener = 0, connection = 1 };
void watch_for_stop(StopSlot slot, int fd);

// Blocks SIGINT/SIGTERM/SIGCHLD in the calling thread, so that only the main thread runs
// the handlers. Call at the start of every worker thread.
void block_stop_signals_in_this_thread();

// For a freshly forked child: forget the parent's wake pipe notifications and reset the
// SIGCHLD disposition, keeping the SIGTERM handler.
void reset_stop_state_after_fork();

}  // namespace echolab
