#include "core/address.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/socket.h"

namespace echolab {
namespace {

TEST(ParseEndpoint, HostPortV6AndUnix) {
  Endpoint v4 = parse_endpoint("127.0.0.1:7007");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, "7007");
  Endpoint v6 = parse_endpoint("[::1]:0");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, "0");
  Endpoint any = parse_endpoint(":80");
  EXPECT_TRUE(any.host.empty());
  Endpoint path = parse_endpoint("unix:/tmp/x.sock");
  EXPECT_TRUE(path.is_unix());
  EXPECT_EQ(path.unix_path, "/tmp/x.sock");
}

TEST(ParseEndpoint, RejectsMalformed) {
  for (const char* bad : {"7007", "::1:80", "[::1]80", "[::1", "host:", "unix:"}) {
    EXPECT_THROW(static_cast<void>(parse_endpoint(bad)), UsageError) << bad;
  }
}

// getaddrinfo keeps the low 16 bits of a numeric service, so 99999 would listen on (or
// measure) port 34463 while the command line and the JSON say 99999.
TEST(ParseEndpoint, RejectsPortsOutside16BitsAndNonNumericPorts) {
  for (const char* bad : {"127.0.0.1:99999", "127.0.0.1:65536", "[::1]:70000", ":http", ":12ab", ":-1",
                          ": 80", ":+80", ":80 ", ":0x50", ":1e3", ":000065536", ":4294967376"}) {
    EXPECT_THROW(static_cast<void>(parse_endpoint(bad)), UsageError) << bad;
  }
  EXPECT_EQ(parse_endpoint("127.0.0.1:65535").port, "65535");
  EXPECT_EQ(parse_endpoint("[::]:0").port, "0");
}

TEST(Printable, EscapesControlAndNonAsciiBytesOnly) {
  EXPECT_EQ(printable("plain /tmp/a b:1\\"), "plain /tmp/a b:1\\");
  EXPECT_EQ(printable("a\nb\rc\x1b[2J\x7f\xc3\xa9"), "a\\x0ab\\x0dc\\x1b[2J\\x7f\\xc3\\xa9");
  EXPECT_EQ(printable(std::string_view("z\0z", 3)), "z\\x00z");
}

// A peer's socket path is chosen by the peer: printed raw, a newline in it would forge
// lines in the server's log (even a ready line).
TEST(FormatAddress, UnixPathIsPrintedOnOneLine) {
  const std::string path = "/tmp/c\necholab-server listening tcp 1.2.3.4:5";
  const auto address = resolve(parse_endpoint("unix:" + path), Transport::unix_stream, true).front();
  const std::string text = format_address(address);
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_EQ(text, "unix:/tmp/c\\x0aecholab-server listening tcp 1.2.3.4:5");
}

TEST(Resolve, Ipv4AndIpv6Loopback) {
  auto v4 = resolve(parse_endpoint("127.0.0.1:7"), Transport::tcp, false);
  ASSERT_FALSE(v4.empty());
  EXPECT_EQ(v4.front().family(), AF_INET);
  EXPECT_EQ(format_address(v4.front()), "127.0.0.1:7");
  auto v6 = resolve(parse_endpoint("[::1]:7"), Transport::udp, false);
  ASSERT_FALSE(v6.empty());
  EXPECT_EQ(v6.front().family(), AF_INET6);
  EXPECT_EQ(format_address(v6.front()), "[::1]:7");
}

TEST(Resolve, PassiveAnyAddress) {
  auto any = resolve(parse_endpoint("[::]:0"), Transport::tcp, true);
  ASSERT_FALSE(any.empty());
  EXPECT_EQ(format_address(any.front()), "[::]:0");
}

TEST(Resolve, UnknownHostIsAUsageError) {
  EXPECT_THROW(static_cast<void>(resolve(parse_endpoint("no-such-host.invalid:80"), Transport::tcp, false)),
               UsageError);
}

TEST(Resolve, UnixPathMustFitAndMatchTheTransport) {
  EXPECT_THROW(static_cast<void>(resolve(parse_endpoint("unix:/" + std::string(200, 'x')), Transport::unix_stream, true)),
               UsageError);
  EXPECT_THROW(static_cast<void>(resolve(parse_endpoint("unix:/tmp/a"), Transport::tcp, true)), UsageError);
  EXPECT_THROW(static_cast<void>(resolve(parse_endpoint("127.0.0.1:1"), Transport::unix_dgram, true)), UsageError);
  auto un = resolve(parse_endpoint("unix:/tmp/a.sock"), Transport::unix_dgram, true);
  EXPECT_EQ(format_address(un.front()), "unix:/tmp/a.sock");
}

TEST(OpenListener, DualStackSeesIpv4ClientsAsMapped) {
  Listener listener = open_listener(parse_endpoint("[::]:0"), Transport::tcp, SocketOptions{});
  const std::string port = listener.address().substr(listener.address().rfind(':') + 1);
  EXPECT_EQ(listener.address(), "[::]:" + port);
  Fd client = open_client(parse_endpoint("127.0.0.1:" + port), Transport::tcp, SocketOptions{});
  SocketAddress peer;
  Fd accepted(::accept(listener.fd(), peer.get(), &peer.length));
  ASSERT_TRUE(accepted.valid());
  EXPECT_EQ(format_address(peer).rfind("[::ffff:127.0.0.1]:", 0), 0u) << format_address(peer);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/echolab-address-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { ::rmdir(dir_.c_str()); }
  std::string dir_;
};

using UnixListener = TempDir;

TEST_F(UnixListener, StaleSocketFileIsReplacedAndRemovedAtExit) {
  const std::string path = dir_ + "/s.sock";
  // A crashed server leaves its socket file behind, with nobody accepting on it.
  {
    Fd raw(::socket(AF_UNIX, SOCK_STREAM, 0));
    auto address = resolve(parse_endpoint("unix:" + path), Transport::unix_stream, true).front();
    ASSERT_EQ(::bind(raw.get(), address.get(), address.length), 0);
  }
  struct stat info {};
  ASSERT_EQ(::lstat(path.c_str(), &info), 0) << "stale socket file should exist";
  {
    Listener fresh = open_listener(parse_endpoint("unix:" + path), Transport::unix_stream, {});
    EXPECT_EQ(fresh.address(), "unix:" + path);
    // A second server on a live socket is refused rather than stealing it.
    EXPECT_THROW(static_cast<void>(open_listener(parse_endpoint("unix:" + path), Transport::unix_stream, {})),
                 UsageError);
  }
  EXPECT_NE(::lstat(path.c_str(), &info), 0) << "socket file must be removed at exit";
}

// A server that exits after another one took its path over (the path was removed, or found
// stale, and bound again) must leave the newcomer's socket file alone.
TEST_F(UnixListener, ExitRemovesOnlyTheSocketFileItBound) {
  const std::string path = dir_ + "/s.sock";
  const Endpoint endpoint = parse_endpoint("unix:" + path);
  struct stat info {};
  {
    std::optional<Listener> first = open_listener(endpoint, Transport::unix_stream, {});
    ASSERT_EQ(::unlink(path.c_str()), 0);
    Listener second = open_listener(endpoint, Transport::unix_stream, {});
    first.reset();
    EXPECT_EQ(::lstat(path.c_str(), &info), 0) << "the first listener removed the second one's socket file";
  }
  EXPECT_NE(::lstat(path.c_str(), &info), 0) << "the second listener must remove its own file";
  {
    // Nor a file of another kind that took the path.
    std::optional<Listener> listener = open_listener(endpoint, Transport::unix_dgram, {});
    ASSERT_EQ(::unlink(path.c_str()), 0);
    Fd file(::creat(path.c_str(), 0600));
    ASSERT_TRUE(file.valid());
    listener.reset();
    EXPECT_EQ(::lstat(path.c_str(), &info), 0) << "a regular file at the path was removed";
    ::unlink(path.c_str());
  }
}

TEST_F(UnixListener, RefusesToReplaceANonSocket) {
  const std::string path = dir_ + "/file";
  Fd file(::creat(path.c_str(), 0600));
  EXPECT_THROW(static_cast<void>(open_listener(parse_endpoint("unix:" + path), Transport::unix_dgram, {})),
               UsageError);
  ::unlink(path.c_str());
}

TEST(OpenListener, BusyPortNamesTheCall) {
  Listener first = open_listener(parse_endpoint("127.0.0.1:0"), Transport::udp, {});
  try {
    Listener second = open_listener(parse_endpoint(first.address()), Transport::udp, {});
    FAIL() << "bound twice";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("bind"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace echolab
