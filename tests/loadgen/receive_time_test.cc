// When a reply counts as received. The event loop reads the clock once when its wait returns
// and hands that time to every connection it wakes; a reply read later in the same turn
// (behind a batch of datagrams, another connection's events, or a stretch without the CPU)
// may have arrived after that time. Timed from it, the echo would look faster than the wire:
// on a loaded CI machine, an impaired link that adds 2 ms showed a 1.1 ms round trip.
//
// Here one connection of each kind sends a real message to a peer that answers 20 ms later,
// and is then told its wait returned just after the send, well before the answer left. The
// recorded round trip must still cover the 20 ms: a receive is timed when it is read.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/fd.h"
#include "core/framing.h"
#include "loadgen/connection.h"
#include "loadgen/datagram_connection.h"
#include "loadgen/message.h"
#include "loadgen/recorder.h"
#include "loadgen/stream_connection.h"
#include "tests/support/socket_client.h"

namespace echolab {
namespace {

constexpr auto kPeerDelay = std::chrono::milliseconds(20);
constexpr std::int64_t kPeerDelayNs = 20'000'000;

class OpenTickets final : public TicketSource {
 public:
  bool take_ticket(std::int64_t) override { return true; }
  bool issuing() const override { return true; }
};

SocketAddress loopback_address(int fd) {
  SocketAddress address;
  if (::getsockname(fd, address.get(), &address.length) != 0) ADD_FAILURE() << "getsockname";
  return address;
}

Fd bound_socket(int type) {
  Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  return fd;
}

// Everything a connection shares with its thread, for one connection of `transport`.
struct OneConnection {
  explicit OneConnection(Transport transport, const SocketAddress& peer)
      : config(config_for(transport)), target(peer), pool(64, 1), sizes(config.size, 1),
        recorder(0, 1'000'000'000, 4), epoll(::epoll_create1(EPOLL_CLOEXEC)),
        context{config, target, pool, sizes, recorder, syscalls, tickets, epoll.get(), 8, {}} {}
  static LoadConfig config_for(Transport transport) {
    LoadConfig c;
    c.transport = transport;
    c.protocol = Protocol::framed;
    c.mode = LoadMode::open;
    c.rate = 1;
    return c;
  }

  LoadConfig config;
  SocketAddress target;
  PayloadPool pool;
  SizeSampler sizes;
  Recorder recorder;
  Counters syscalls;
  OpenTickets tickets;
  Fd epoll;
  WorkerContext context;
};

// Waits on the connection's epoll set and hands each event over with a fresh time.
void pump_until(OneConnection& one, Connection& connection, const auto& done) {
  const std::int64_t deadline = monotonic_ns() + 5'000'000'000;
  while (!done() && monotonic_ns() < deadline) {
    epoll_event event{};
    if (::epoll_wait(one.epoll.get(), &event, 1, 100) == 1) {
      connection.on_events(event.events, monotonic_ns());
    }
  }
}

// The readiness the event loop would have reported, consumed here so that the connection
// is told of it with a time of the test's choosing.
void await_readable(const OneConnection& one) {
  epoll_event event{};
  ASSERT_EQ(::epoll_wait(one.epoll.get(), &event, 1, 5000), 1);
  ASSERT_NE(event.events & EPOLLIN, 0u);
}

TEST(LoadgenReceiveTime, ADatagramIsTimedWhenReadNotWhenTheWaitReturned) {
  const Fd peer = bound_socket(SOCK_DGRAM);
  OneConnection one(Transport::udp, loopback_address(peer.get()));
  DatagramConnection connection(one.context, 0, 0);
  connection.start(monotonic_ns());
  const std::int64_t sent = monotonic_ns();
  connection.submit(sent, sent);

  std::vector<std::byte> request(2048);
  sockaddr_storage from{};
  socklen_t from_length = sizeof(from);
  const ssize_t n = ::recvfrom(peer.get(), request.data(), request.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_length);
  ASSERT_GT(n, 0);
  std::this_thread::sleep_for(kPeerDelay);
  ASSERT_EQ(::sendto(peer.get(), request.data(), static_cast<std::size_t>(n), 0,
                     reinterpret_cast<const sockaddr*>(&from), from_length), n);
  await_readable(one);

  connection.on_events(EPOLLIN, sent + 1000);  // "the wait returned 1 us after the send"
  one.recorder.finish(monotonic_ns());
  ASSERT_EQ(one.recorder.tally().received, 1u);
  EXPECT_GE(one.recorder.tally().uncorrected.min(), kPeerDelayNs);
  EXPECT_GE(one.recorder.tally().corrected.min(), kPeerDelayNs);
}

TEST(LoadgenReceiveTime, StreamBytesAreTimedWhenReadNotWhenTheWaitReturned) {
  const Fd listener = bound_socket(SOCK_STREAM);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  OneConnection one(Transport::tcp, loopback_address(listener.get()));
  StreamConnection connection(one.context, 0, 0);
  connection.start(monotonic_ns());
  const Fd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(peer);
  pump_until(one, connection, [&] { return connection.settled(); });
  ASSERT_TRUE(connection.settled());

  const std::int64_t sent = monotonic_ns();
  connection.submit(sent, sent);
  const std::size_t wire = wire_size(Protocol::framed, 64);
  std::vector<std::byte> request(wire);
  const test::IoResult received = test::receive_exact(peer.get(), request);
  ASSERT_TRUE(received.ok()) << "peer: " << received.describe();
  std::this_thread::sleep_for(kPeerDelay);
  const test::IoResult echoed = test::send_all(peer.get(), request);
  ASSERT_TRUE(echoed.ok()) << "peer: " << echoed.describe();
  await_readable(one);

  connection.on_events(EPOLLIN, sent + 1000);
  one.recorder.finish(monotonic_ns());
  ASSERT_EQ(one.recorder.tally().received, 1u);
  EXPECT_GE(one.recorder.tally().uncorrected.min(), kPeerDelayNs);
  EXPECT_GE(one.recorder.tally().corrected.min(), kPeerDelayNs);
}

}  // namespace
}  // namespace echolab
