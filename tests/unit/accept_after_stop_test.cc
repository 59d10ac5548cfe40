// A connection accepted as the stop arrives is never served: accept_connection closes it
// unanswered and reports the listener as stopped. A blocked accept() and a stop signal can
// finish together (the handler runs as accept returns); a pool worker used to serve that
// client after the stop. Its own binary, because the stop it requests lasts for the process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/fd.h"
#include "core/io.h"
#include "core/stop.h"

namespace echolab {
namespace {

TEST(AcceptAfterStop, ConnectionIsClosedUnansweredAndTheListenerReportedStopped) {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);

  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const char hello[] = "hello";
  ASSERT_EQ(::send(client.get(), hello, sizeof(hello), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));

  install_stop_handlers();
  request_stop();
  Counters counters;
  const AcceptResult accepted = accept_connection(listener.get(), counters);
  EXPECT_FALSE(accepted.fd.valid());
  EXPECT_TRUE(accepted.fatal) << "the acceptor's loop must end";
  EXPECT_EQ(accepted.error, EINVAL);
  EXPECT_EQ(counters.connections_accepted, 0u) << "refused, like a client refused for want of descriptors";
  EXPECT_EQ(counters.connections_refused, 1u);

  // The client learns at once: end of stream or a reset, never an echo.
  char reply[16];
  const ssize_t n = ::recv(client.get(), reply, sizeof(reply), 0);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << "recv returned " << n;
}

}  // namespace
}  // namespace echolab
