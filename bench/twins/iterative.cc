// twin-iterative: accept one client, echo until it leaves, accept the next. SIGTERM's
// default action ends it.
#include "twin.h"

int main(int argc, char** argv) {
  const int listener = twin::listen_and_announce(twin::parse(argc, argv));
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // ECONNABORTED, EMFILE...: try the next one
    twin::no_delay(fd);
    twin::echo_blocking(fd);
  }
}
