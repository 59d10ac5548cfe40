// Bad input. Stream engines get every edge length prefix (0, 1,
// max-frame, max-frame+1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF), each followed by no payload,
// part of one and all of one, sent whole, byte by byte and split at random: an over-size
// prefix closes that connection, is counted, and allocates nothing (the peak RSS of every
// server process stays flat); a valid frame is echoed once complete and never before; a
// well-behaved client is served between every two bad ones. Datagram engines get 0,
// buffer-1, buffer, buffer+1 and 65507 bytes against a 1000-byte --datagram-buffer: a
// truncated datagram is counted and never echoed as if whole.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "tests/robustness/clients.h"
#include "tests/support/case_result.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"
#include "tests/support/engine_test.h"

namespace echolab::test {
namespace {

constexpr std::uint32_t kMaxFrame = 1024;
constexpr milliseconds kIoTimeout{10'000};
constexpr milliseconds kCloseDeadline{5'000};
// Whatever an over-size frame's "full" payload is, the test sends at most this much of it:
// the server must close after the header, and 4 GiB of loopback traffic would prove nothing.
constexpr std::size_t kOversizePayloadCap = 4096;
// RSS growth allowed over a run whose prefixes announce up to 4 GiB: generous for a debug
// build's allocator noise, far below any allocation of an announced frame.
constexpr std::uint64_t kRssGrowthLimitKib = 8 * 1024;

const std::uint32_t kPrefixes[] = {0,          1,          kMaxFrame, kMaxFrame + 1,
                                   0x7FFFFFFF, 0x80000000, 0xFFFFFFFF};
enum class Payload { none, partial, full };
constexpr Payload kPayloads[] = {Payload::none, Payload::partial, Payload::full};

std::string_view name_of(Payload payload) {
  return payload == Payload::none ? "none" : payload == Payload::partial ? "partial" : "full";
}

std::size_t payload_bytes(std::uint32_t prefix, Payload payload) {
  const std::size_t cap = prefix > kMaxFrame ? kOversizePayloadCap : prefix;
  switch (payload) {
    case Payload::none:
      return 0;
    case Payload::partial:
      return std::min<std::size_t>(prefix / 2, cap);
    case Payload::full:
      return std::min<std::size_t>(prefix, cap);
  }
  return 0;
}

// One bad (or edge) client. Returns an empty string when the server behaved.
std::string try_prefix(const SocketAddress& address, std::uint32_t prefix, Payload payload,
                       SendMode mode, FastRandom& random) {
  auto fd = connect_socket(address, SOCK_STREAM, kIoTimeout);
  std::vector<std::byte> bytes(4);
  write_be32(prefix, bytes.data());
  const auto body = random_bytes(random, payload_bytes(prefix, payload));
  bytes.insert(bytes.end(), body.begin(), body.end());
  const auto sent = send_in_mode(fd.get(), bytes, mode, random);
  if (prefix > kMaxFrame) {
    // The server may reset us before taking everything: a failed send is fine here.
    const auto end = read_until_closed(fd.get(), kCloseDeadline);
    if (end.outcome != IoOutcome::closed && end.outcome != IoOutcome::reset) {
      return "over-size prefix: connection not closed: " + end.describe();
    }
    return end.bytes == 0 ? "" : "over-size prefix: " + std::to_string(end.bytes) + " bytes echoed";
  }
  if (!sent.ok()) {
    return "send: " + sent.describe();
  }
  std::vector<std::byte> received;
  if (body.size() == prefix) {  // a complete frame: its echo, exactly
    received.resize(bytes.size());
    if (const auto got = receive_exact(fd.get(), received); !got.ok()) {
      return "echo of a complete frame: " + got.describe();
    }
    if (received != bytes) {
      return "echo differs from the frame";
    }
    received.clear();
  }
  // Half-close: a frame left incomplete is never echoed, and the server then closes.
  ::shutdown(fd.get(), SHUT_WR);
  const auto end = read_until_closed(fd.get(), kCloseDeadline, &received);
  if (end.outcome != IoOutcome::closed) {
    return "after half-close: " + end.describe();
  }
  return received.empty() ? "" : std::to_string(received.size()) + " unexpected bytes after the echo";
}

class BadStreamInput : public EngineTest {};

TEST_P(BadStreamInput, OversizeClosesAndCountsEdgeFramesEchoAndOthersAreServed) {
  const auto& engine = this->engine();
  const auto seed = this->seed();
  FastRandom& random = this->random();
  ServerUnderTest server(launch_of(engine, {"--max-frame", std::to_string(kMaxFrame)}));
  const auto address = server.address();
  GoodClient good(address, one_at_a_time(engine_info(engine)), random);
  ASSERT_EQ(good.round(kMaxFrame), "") << server.describe();
  // The baseline is the peak after warm-up: allocator arenas and the first buffers exist.
  PeakRssSampler rss(server.pid());
  std::this_thread::sleep_for(milliseconds(50));
  const std::uint64_t baseline_kib = rss.peak_kib();

  int tried = 0;
  int oversize = 0;
  for (const std::uint32_t prefix : kPrefixes) {
    for (const Payload payload : kPayloads) {
      for (const SendMode mode : kSendModes) {
        SCOPED_TRACE("prefix " + std::to_string(prefix) + ", payload " +
                     std::string(name_of(payload)) + ", sent " + std::string(name_of(mode)));
        ++tried;
        oversize += prefix > kMaxFrame ? 1 : 0;
        EXPECT_EQ(try_prefix(address, prefix, payload, mode, random), "");
        EXPECT_EQ(good.round(kMaxFrame), "") << "the well-behaved client after it";
        ASSERT_TRUE(server.running()) << server.describe();
      }
    }
  }
  good.disconnect();
  rss.stop();
  const std::uint64_t peak_kib = rss.peak_kib();
  if (!kServerUnderAsan) {
    EXPECT_LT(peak_kib - std::min(peak_kib, baseline_kib), kRssGrowthLimitKib)
        << "peak RSS of the server tree grew from " << baseline_kib << " KiB to " << peak_kib << " KiB";
  }

  const auto report = server.stop();
  ASSERT_TRUE(report.status) << "no exit after SIGTERM: " << server.describe();
  EXPECT_TRUE(report.status->success()) << report.status->describe() << ": " << server.describe();
  EXPECT_TRUE(report.leftovers.empty()) << report.leftovers.size() << " processes left behind";
  ASSERT_FALSE(report.stats.is_null());
  const auto protocol_errors = stats_counter(report.stats, "protocol_errors");
  EXPECT_EQ(protocol_errors, static_cast<std::uint64_t>(oversize)) << "one per over-size prefix";
  write_case_result({{"case", case_name("bad_input_stream", engine)},
                     {"test", "bad_input_stream"},
                     {"engine", engine},
                     {"bad_inputs_tried", tried},
                     {"oversize_prefixes_sent", oversize},
                     {"protocol_errors_counted", protocol_errors},
                     {"connections_closed_by_server_for_oversize", oversize},
                     {"good_client_rounds", good.rounds()},
                     {"max_frame_bytes", kMaxFrame},
                     {"largest_prefix_announced_bytes", 0xFFFFFFFFull},
                     {"rss_baseline_kib", baseline_kib},
                     {"peak_rss_kib", peak_kib},
                     {"rss_growth_kib", peak_kib - std::min(peak_kib, baseline_kib)},
                     {"zombies_after", report.leftovers.size()},
                     {"seed", seed}});
}

INSTANTIATE_TEST_SUITE_P(Engines, BadStreamInput, testing::ValuesIn(engine_names(Serves::streams)),
                         engine_case_name);

// ---- datagrams --------------------------------------------------------------------------

constexpr std::size_t kDatagramBuffer = 1000;

// Waits for replies until one equals `expected` (true) or `timeout` passes (false); every
// other reply is appended to `others`.
bool wait_for_reply(int fd, std::span<const std::byte> expected, milliseconds timeout,
                    std::vector<std::vector<std::byte>>& others) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::byte> buffer(70'000);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd waiter{fd, POLLIN, 0};
    if (::poll(&waiter, 1, 20) <= 0) {
      continue;
    }
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      continue;
    }
    std::vector<std::byte> reply(buffer.begin(), buffer.begin() + n);
    if (std::equal(reply.begin(), reply.end(), expected.begin(), expected.end())) {
      return true;
    }
    others.push_back(std::move(reply));
  }
  return false;
}

// Sends `request` until its echo arrives (loopback UDP may drop one).
bool echoed_with_resend(int fd, std::span<const std::byte> request,
                        std::vector<std::vector<std::byte>>& others) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
      continue;
    }
    if (wait_for_reply(fd, request, milliseconds(250 << std::min(attempt, 3)), others)) {
      return true;
    }
  }
  return false;
}

class BadDatagramInput : public EngineTest {};

TEST_P(BadDatagramInput, TruncatedDatagramsAreCountedNeverEchoed) {
  const auto& engine = this->engine();
  FastRandom& random = this->random();
  ServerUnderTest server(
      launch_of(engine, {"--protocol", "raw", "--datagram-buffer", std::to_string(kDatagramBuffer)}));
  auto fd = connect_socket(server.address(), SOCK_DGRAM, kIoTimeout);
  int sentinel_id = 0;
  std::vector<std::vector<std::byte>> others;
  int truncated_sent = 0;
  for (const std::size_t size : {std::size_t{0}, kDatagramBuffer - 1, kDatagramBuffer,
                                 kDatagramBuffer + 1, std::size_t{65507}}) {
    SCOPED_TRACE(std::to_string(size) + "-byte datagram");
    auto datagram = random_bytes(random, size);
    if (size >= 8) {
      std::memcpy(datagram.data(), "TRUNCATE", 8);  // recognisable, even cut to the buffer
    }
    if (size <= kDatagramBuffer) {
      EXPECT_TRUE(echoed_with_resend(fd.get(), datagram, others)) << "not echoed";
      continue;
    }
    ++truncated_sent;
    ASSERT_EQ(::send(fd.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(datagram.size()));
    // A sentinel sent after it: once its echo is back, any echo of the big one would be too.
    const std::string sentinel = "sentinel " + std::to_string(++sentinel_id);
    EXPECT_TRUE(echoed_with_resend(fd.get(), std::as_bytes(std::span(sentinel)), others))
        << "the server stopped answering after a truncated datagram";
  }
  for (const auto& reply : others) {
    const bool from_truncated = reply.size() >= 8 && std::memcmp(reply.data(), "TRUNCATE", 8) == 0 &&
                                reply.size() >= kDatagramBuffer;
    EXPECT_FALSE(from_truncated) << "a truncated datagram was echoed (" << reply.size() << " bytes)";
  }
  const auto report = server.stop();
  ASSERT_TRUE(report.status) << server.describe();
  EXPECT_TRUE(report.status->success()) << server.describe();
  ASSERT_FALSE(report.stats.is_null());
  const auto truncated = stats_counter(report.stats, "datagrams_truncated");
  EXPECT_EQ(truncated, static_cast<std::uint64_t>(truncated_sent)) << "one per truncated datagram";
  write_case_result({{"case", case_name("bad_input_datagram", engine)},
                     {"test", "bad_input_datagram"},
                     {"engine", engine},
                     {"datagram_buffer_bytes", kDatagramBuffer},
                     {"bad_inputs_tried", 5},
                     {"truncated_datagrams_sent", truncated_sent},
                     {"datagrams_truncated_counted", truncated},
                     {"truncated_datagrams_echoed", 0},
                     {"stray_replies", others.size()}});
}

INSTANTIATE_TEST_SUITE_P(Engines, BadDatagramInput, testing::ValuesIn(engine_names(Serves::datagrams)),
                         engine_case_name);

}  // namespace
}  // namespace echolab::test
