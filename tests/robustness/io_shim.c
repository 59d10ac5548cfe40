/* io_shim: an LD_PRELOAD library that makes socket I/O as hostile as POSIX allows, to prove
 * the server never assumes a whole transfer or an uninterrupted call.
 *
 * On sockets only (fstat S_ISSOCK: the server's wake pipe, its stats file and stdout/stderr
 * are left alone), send/recv/read/write/sendto/recvfrom/sendmsg/recvmsg/recvmmsg/sendmmsg
 *   - fail with EINTR without doing anything, one call in ECHOLAB_SHIM_EINTR_ONE_IN (4);
 *   - on stream sockets, move only 1..7 bytes (a short count: legal for any stream socket).
 * Datagram sockets get only the EINTR: a datagram cannot be sent or received in part.
 *
 * Counts are kept in a shared anonymous mapping (inherited by forked children, which leave
 * with _exit and run no destructor) and written by the process that loaded the shim, at its
 * exit, to $ECHOLAB_SHIM_REPORT as JSON: faults injected is a figure of the results.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct shim_counts {
  atomic_ulong calls;      /* socket calls seen */
  atomic_ulong eintr;      /* failed with EINTR on purpose */
  atomic_ulong shortened;  /* length cut to 1..7 bytes */
};

static struct shim_counts* counts;
static struct shim_counts local_counts; /* if mmap fails */
static pid_t loader_pid;
static unsigned eintr_one_in = 4;

static _Thread_local uint64_t rng_state;

static uint64_t next_random(void) {
  if (rng_state == 0) {
    rng_state = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rng_state ^ 0x9E3779B97F4A7C15ull;
  }
  /* SplitMix64 */
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__attribute__((constructor)) static void shim_init(void) {
  void* shared = mmap(NULL, sizeof(struct shim_counts), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  counts = shared == MAP_FAILED ? &local_counts : (struct shim_counts*)shared;
  loader_pid = getpid();
  const char* one_in = getenv("ECHOLAB_SHIM_EINTR_ONE_IN");
  if (one_in != NULL && atoi(one_in) > 0) {
    eintr_one_in = (unsigned)atoi(one_in);
  }
}

__attribute__((destructor)) static void shim_report(void) {
  const char* path = getenv("ECHOLAB_SHIM_REPORT");
  if (path == NULL || getpid() != loader_pid) {
    return;
  }
  FILE* out = fopen(path, "w");
  if (out == NULL) {
    return;
  }
  fprintf(out, "{\"socket_calls\": %lu, \"eintr_injected\": %lu, \"short_counts_injected\": %lu}\n",
          atomic_load(&counts->calls), atomic_load(&counts->eintr),
          atomic_load(&counts->shortened));
  fclose(out);
}

/* 0: not a socket; SOCK_STREAM or SOCK_DGRAM (or another type) otherwise. */
static int socket_type(int fd) {
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) {
    return 0;
  }
  int type = 0;
  socklen_t length = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
    return 0;
  }
  return type;
}

/* Decides the fate of one call: -1 to fail it with EINTR, else the length to pass on. */
static ssize_t plan(int fd, size_t length, int* is_socket) {
  const int type = socket_type(fd);
  *is_socket = type != 0;
  if (type == 0 || counts == NULL) {
    return (ssize_t)length;
  }
  atomic_fetch_add(&counts->calls, 1);
  if (next_random() % eintr_one_in == 0) {
    atomic_fetch_add(&counts->eintr, 1);
    return -1;
  }
  if (type == SOCK_STREAM && length > 7) {
    atomic_fetch_add(&counts->shortened, 1);
    return (ssize_t)(1 + next_random() % 7);
  }
  return (ssize_t)length;
}

#define REAL(name, type) \
  static type real_##name; \
  if (real_##name == NULL) { \
    real_##name = (type)dlsym(RTLD_NEXT, #name); \
  }

typedef ssize_t (*send_fn)(int, const void*, size_t, int);
typedef ssize_t (*recv_fn)(int, void*, size_t, int);
typedef ssize_t (*read_fn)(int, void*, size_t);
typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef ssize_t (*sendto_fn)(int, const void*, size_t, int, const struct sockaddr*, socklen_t);
typedef ssize_t (*recvfrom_fn)(int, void*, size_t, int, struct sockaddr*, socklen_t*);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr*, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr*, int);

ssize_t send(int fd, const void* data, size_t length, int flags) {
  REAL(send, send_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, length, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  return real_send(fd, data, (size_t)allowed, flags);
}

ssize_t recv(int fd, void* data, size_t length, int flags) {
  REAL(recv, recv_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, length, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  return real_recv(fd, data, (size_t)allowed, flags);
}

ssize_t read(int fd, void* data, size_t length) {
  REAL(read, read_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, length, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  return real_read(fd, data, (size_t)allowed);
}

ssize_t write(int fd, const void* data, size_t length) {
  REAL(write, write_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, length, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  return real_write(fd, data, (size_t)allowed);
}

ssize_t sendto(int fd, const void* data, size_t length, int flags, const struct sockaddr* to,
               socklen_t to_length) {
  REAL(sendto, sendto_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, length, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  return real_sendto(fd, data, (size_t)allowed, flags, to, to_length);
}

ssize_t recvfrom(int fd, void* data, size_t length, int flags, struct sockaddr* from,
                 socklen_t* from_length) {
  REAL(recvfrom, recvfrom_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, length, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  return real_recvfrom(fd, data, (size_t)allowed, flags, from, from_length);
}

/* msghdr calls: EINTR only, and on stream sockets a short count by trimming the iovecs to
 * 1..7 bytes in a private copy (the caller's msghdr is const for sendmsg). */
static size_t trimmed_iov(const struct msghdr* message, struct iovec* out, size_t out_max,
                          size_t budget) {
  size_t n = 0;
  for (size_t i = 0; i < message->msg_iovlen && n < out_max && budget > 0; ++i) {
    out[n] = message->msg_iov[i];
    if (out[n].iov_len > budget) {
      out[n].iov_len = budget;
    }
    budget -= out[n].iov_len;
    ++n;
  }
  return n;
}

ssize_t sendmsg(int fd, const struct msghdr* message, int flags) {
  REAL(sendmsg, sendmsg_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, 8, &is_socket); /* 8: "longer than a short count" */
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  if (!is_socket || allowed >= 8 || socket_type(fd) != SOCK_STREAM) {
    return real_sendmsg(fd, message, flags);
  }
  struct iovec iov[8];
  struct msghdr copy = *message;
  copy.msg_iov = iov;
  copy.msg_iovlen = trimmed_iov(message, iov, 8, (size_t)allowed);
  return real_sendmsg(fd, &copy, flags);
}

ssize_t recvmsg(int fd, struct msghdr* message, int flags) {
  REAL(recvmsg, recvmsg_fn);
  int is_socket;
  const ssize_t allowed = plan(fd, 8, &is_socket);
  if (allowed < 0) {
    errno = EINTR;
    return -1;
  }
  if (!is_socket || allowed >= 8 || socket_type(fd) != SOCK_STREAM) {
    return real_recvmsg(fd, message, flags);
  }
  struct iovec* original = message->msg_iov;
  const size_t original_length = message->msg_iovlen;
  struct iovec iov[8];
  message->msg_iov = iov;
  message->msg_iovlen = trimmed_iov(&(struct msghdr){.msg_iov = original, .msg_iovlen = original_length},
                                    iov, 8, (size_t)allowed);
  const ssize_t n = real_recvmsg(fd, message, flags);
  message->msg_iov = original;
  message->msg_iovlen = original_length;
  return n;
}

/* The batch calls (datagram sockets only in echolab): EINTR only, before anything moves. */
typedef int (*recvmmsg_fn)(int, struct mmsghdr*, unsigned int, int, struct timespec*);
typedef int (*sendmmsg_fn)(int, struct mmsghdr*, unsigned int, int);

int recvmmsg(int fd, struct mmsghdr* messages, unsigned int count, int flags, struct timespec* timeout) {
  REAL(recvmmsg, recvmmsg_fn);
  int is_socket;
  if (plan(fd, 0, &is_socket) < 0) {
    errno = EINTR;
    return -1;
  }
  return real_recvmmsg(fd, messages, count, flags, timeout);
}

int sendmmsg(int fd, struct mmsghdr* messages, unsigned int count, int flags) {
  REAL(sendmmsg, sendmmsg_fn);
  int is_socket;
  if (plan(fd, 0, &is_socket) < 0) {
    errno = EINTR;
    return -1;
  }
  return real_sendmmsg(fd, messages, count, flags);
}
