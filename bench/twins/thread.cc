// twin-thread: accept, then a detached thread per connection. SIGTERM's default action ends
// the process and every thread with it.
#include <thread>

#include "twin.h"

int main(int argc, char** argv) {
  const int listener = twin::listen_and_announce(twin::parse(argc, argv));
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    twin::no_delay(fd);
    try {
      std::thread(twin::echo_blocking, fd).detach();
    } catch (const std::system_error&) {
      ::close(fd);  // no thread to be had: this client is closed, the server goes on
    }
  }
}
