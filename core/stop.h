#pragma once
// Graceful stop on SIGINT/SIGTERM/SIGHUP, without races and without polling.
//
// The handler sets a flag, writes a byte to a self-pipe (so select/poll loops wake up), and
// calls shutdown(SHUT_RD) on the descriptors this process registered with watch_for_stop():
// shutdown is async-signal-safe, and its effect persists, so a blocking accept() or recv()
// returns at once whether it was already blocked or is about to block. Frames already
// received can still be answered: only the read side is shut. kDrainTime later (SIGALRM),
// the write sides are shut too, so a send blocked on a peer that never reads cannot hold
// the process past its deadline.
//
// What every signal means to a process that called install_stop_handlers():
//   SIGINT, SIGTERM, SIGHUP   stop as above (a hang-up of the controlling terminal is a stop).
//   SIGALRM                   the drain deadline, acted on only once a stop is pending and
//                             kDrainTime has really passed since; any other is ignored.
//   SIGCHLD                   wakes the wake pipe (reaping); harmless when stray.
//   SIGPIPE                   ignored (ignore_sigpipe: a send to a closed peer is an error).
//   SIGUSR1, SIGUSR2, SIGVTALRM, SIGPROF, SIGIO/SIGPOLL, SIGPWR, SIGSTKFLT and the real-time
//   signals                   ignored, unless something (a profiler, a sanitizer) installed a
//                             handler first: a stray kill must not end or disturb the service.
//   SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGSYS, SIGTRAP, SIGXCPU, SIGXFSZ
//                             keep their default (core dump): they report a broken process
//                             or an operator asking for a core. SIGKILL and SIGSTOP cannot be
//                             caught; children of the process engines die with their parent.
#include <chrono>

namespace echolab {

// How long a stopping server keeps answering what it owes before it closes regardless.
inline constexpr std::chrono::seconds kDrainTime{2};

// Installs the handlers (without SA_RESTART), ignores the stray signals listed above, and
// creates the wake pipe. Call once, early, from the main thread.
void install_stop_handlers();

[[nodiscard]] bool stop_requested();

// The signal that asked for the stop, or 0 (no stop, or request_stop()).
[[nodiscard]] int stop_signal();

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

// For a listening socket this process shares with others (a prefork worker's): on a stop,
// the handler puts a socket that accepts nothing in its place with dup2() instead of
// shutting it down, which would stop every sharer. An accept() already blocked returns EINTR
// and, retried, EINVAL, as does one about to start; the shared socket is left untouched.
// Throws std::system_error if the stand-in socket cannot be made. -1 clears.
void detach_on_stop(int fd);

// Blocks the stop signals, SIGCHLD and SIGALRM in the calling thread, so that only the main
// thread runs the handlers. Call at the start of every worker thread.
void block_stop_signals_in_this_thread();

// For a freshly forked child: forget the parent's wake pipe notifications and watched
// descriptors, reset the SIGCHLD disposition (keeping the stop handlers), and make the
// child die with its parent: a stop (SIGTERM) when the parent, recorded as `parent` before
// fork(), exits for any reason, SIGKILL included. The death signal is tied to the thread
// that forked, so fork only from the main thread. Exits the child at once if the parent
// is already gone.
void reset_stop_state_after_fork(int parent);

}  // namespace echolab
