#pragma once
// eventually(): the one way a test waits for something it can observe (a count reached, a
// thread blocked in a call, a queue drained), instead of sleeping a fixed time that a slow
// or sanitized build outlasts.
#include <chrono>
#include <thread>

namespace echolab::test {

// Calls `done` until it returns true or `timeout` has passed, sleeping `every` between
// calls; its last answer. `done` is called at least once, and once more after the deadline
// passes, so a condition that came true during the last sleep is not missed.
template <typename Done>
[[nodiscard]] bool eventually(Done&& done, std::chrono::milliseconds timeout,
                              std::chrono::milliseconds every = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool expired = std::chrono::steady_clock::now() >= deadline;
    if (done()) {
      return true;
    }
    if (expired) {
      return false;
    }
    std::this_thread::sleep_for(every);
  }
}

}  // namespace echolab::test
