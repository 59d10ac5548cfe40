// echolab-fd-holder COUNT PROGRAM [ARGS...]: opens COUNT more descriptors (on /dev/null,
// without close-on-exec), then execs PROGRAM, which inherits them all: a parent that leaves
// many descriptors open to its child. Raise RLIMIT_NOFILE before starting it.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: echolab-fd-holder COUNT PROGRAM [ARGS...]\n");
    return 2;
  }
  const long count = std::strtol(argv[1], nullptr, 10);
  for (long i = 0; i < count; ++i) {
    if (::open("/dev/null", O_RDONLY) < 0) {
      std::fprintf(stderr, "echolab-fd-holder: open: %s (after %ld)\n", std::strerror(errno), i);
      return 1;
    }
  }
  ::execv(argv[2], argv + 2);
  std::fprintf(stderr, "echolab-fd-holder: execv %s: %s\n", argv[2], std::strerror(errno));
  return 127;
}
