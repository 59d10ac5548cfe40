// The sockperf protocol without sockets: the header as sockperf's client writes it, the
// decoder over any split of the stream, and the session and datagram path answering exactly
// the messages sockperf's own server answers (from a client, reply requested, no warm-up),
// each with the client flag cleared and its sequence number kept.
#include "core/sockperf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "core/session.h"
#include "tests/unit/session_pump.h"

namespace echolab {
namespace {

constexpr std::uint16_t kPing = kSockperfClient | kSockperfReplyRequested;  // ping-pong's flags

std::vector<std::byte> message(std::uint64_t sequence, std::uint16_t flags, std::uint32_t length,
                               std::uint8_t fill = 0xAB) {
  // A length under the header's or absurdly large: the header alone (what a peer may send).
  const bool whole = length >= kSockperfHeaderSize && length <= (1u << 20);
  std::vector<std::byte> bytes(whole ? length : kSockperfHeaderSize, std::byte{fill});
  encode_sockperf_header({sequence, flags, length}, bytes.data());
  return bytes;
}

void append(std::vector<std::byte>& to, const std::vector<std::byte>& bytes) {
  to.insert(to.end(), bytes.begin(), bytes.end());
}

// The reply sockperf's server sends for `request`: the same bytes, the client flag cleared.
std::vector<std::byte> reply_to(std::vector<std::byte> request) {
  SockperfHeader header = decode_sockperf_header(request.data());
  header.flags = static_cast<std::uint16_t>(header.flags & ~kSockperfClient);
  encode_sockperf_header(header, request.data());
  return request;
}

ProtocolConfig sockperf_config(std::uint32_t max_frame = kDefaultMaxFrame) {
  ProtocolConfig config;
  config.protocol = Protocol::sockperf;
  config.max_frame = max_frame;
  return config;
}

TEST(SockperfHeader, IsPackedBigEndianAsSockperfWritesIt) {
  std::byte bytes[kSockperfHeaderSize];
  encode_sockperf_header({0x0102030405060708ull, 0x0003, 0x0A0B0C0Du}, bytes);
  const std::uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x03, 0x0A, 0x0B, 0x0C, 0x0D};
  EXPECT_EQ(std::memcmp(bytes, want, sizeof want), 0);
  const SockperfHeader back = decode_sockperf_header(bytes);
  EXPECT_EQ(back.sequence, 0x0102030405060708ull);
  EXPECT_EQ(back.flags, 0x0003);
  EXPECT_EQ(back.length, 0x0A0B0C0Du);
}

TEST(SockperfHeader, OnlyClientPongRequestsWithoutWarmupWantAReply) {
  EXPECT_TRUE(sockperf_wants_reply(kPing));
  EXPECT_FALSE(sockperf_wants_reply(kSockperfClient));                          // under load
  EXPECT_FALSE(sockperf_wants_reply(kPing | kSockperfWarmup));                  // warm-up
  EXPECT_FALSE(sockperf_wants_reply(kSockperfReplyRequested));                  // a server's
  EXPECT_TRUE(sockperf_wants_reply(static_cast<std::uint16_t>(kPing | 0x100)));  // unknown bits
}

TEST(SockperfDecoder, SplitHeadersAndManyMessagesPerRead) {
  std::vector<std::byte> stream;
  append(stream, message(1, kPing, 14));
  append(stream, message(2, kSockperfClient, 100));
  append(stream, message(3, kPing | kSockperfWarmup, 15));
  append(stream, message(4, kPing, 64));
  const std::vector<std::size_t> want_ends = {14, 114, 129, 193};
  const std::vector<bool> want_replies = {true, false, false, true};
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{13}, std::size_t{14}, std::size_t{15},
                            std::size_t{193}}) {
    SockperfDecoder decoder(kDefaultMaxFrame);
    std::vector<std::size_t> ends;
    std::vector<bool> replies;
    for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
      const std::size_t n = std::min(chunk, stream.size() - pos);
      ASSERT_EQ(decoder.scan(std::span(stream).subspan(pos, n),
                             [&](std::size_t end, bool wants_reply) {
                               ends.push_back(pos + end);
                               replies.push_back(wants_reply);
                             }),
                SockperfDecoder::Status::ok);
      EXPECT_EQ(decoder.at_message_boundary(), pos + n == 14 || pos + n == 114 || pos + n == 129 ||
                                                   pos + n == 193)
          << "chunk " << chunk << " at " << pos + n;
    }
    EXPECT_EQ(ends, want_ends) << "chunk " << chunk;
    EXPECT_EQ(replies, want_replies) << "chunk " << chunk;
  }
}

TEST(SockperfDecoder, LengthUnderTheHeaderOrOverTheLimitIsRejected) {
  for (std::uint32_t bad : {0u, 1u, 13u, 101u, 0xFFFFFFFFu}) {
    SockperfDecoder decoder(100);
    std::vector<std::byte> stream = message(7, kPing, 100);
    append(stream, message(8, kPing, bad));
    int seen = 0;
    // Split inside the bad header too: the check must not depend on where reads end.
    EXPECT_EQ(decoder.scan(std::span(stream).first(110), [&](std::size_t, bool) { ++seen; }),
              SockperfDecoder::Status::ok);
    EXPECT_EQ(decoder.scan(std::span(stream).subspan(110), [&](std::size_t, bool) { ++seen; }),
              SockperfDecoder::Status::bad_length)
        << bad;
    EXPECT_EQ(seen, 1) << "the good message before it is still reported";
    EXPECT_EQ(decoder.rejected_length(), bad);
    EXPECT_EQ(decoder.scan(std::span(stream).first(14), [&](std::size_t, bool) { ++seen; }),
              SockperfDecoder::Status::bad_length)
        << "a failed decoder stays failed";
  }
}

TEST(SockperfSession, AnswersPingsWithTheClientFlagClearedAndTheSequenceKept) {
  const auto config = sockperf_config();
  StreamSession session(config);
  Counters counters;
  const auto ping = message(0x1122334455667788ull, kPing, 64, 0x5A);
  const auto out = pump(session, ping, 1024, counters);
  ASSERT_EQ(out.size(), ping.size());
  EXPECT_EQ(out, reply_to(ping));
  const SockperfHeader header = decode_sockperf_header(out.data());
  EXPECT_EQ(header.sequence, 0x1122334455667788ull);
  EXPECT_EQ(header.flags, kSockperfReplyRequested);
  EXPECT_EQ(header.length, 64u);
  EXPECT_EQ(counters.messages, 1u);
  EXPECT_EQ(counters.messages_no_reply, 0u);
}

// Under load only one message in --reply-every asks for a reply, and a warm-up never gets
// one: the others must vanish from the output, in whatever reads they arrive.
TEST(SockperfSession, MessagesThatAskNoReplyAreCountedNotSent) {
  std::vector<std::byte> input;
  std::vector<std::byte> want;
  std::uint64_t answered = 0;
  std::uint64_t silent = 0;
  std::mt19937 generator(7);
  for (std::uint64_t sequence = 1; sequence <= 300; ++sequence) {
    const auto length = static_cast<std::uint32_t>(14 + generator() % 90);
    std::uint16_t flags = sequence % 10 == 0 ? kPing : kSockperfClient;
    if (sequence % 37 == 0) {
      flags = kPing | kSockperfWarmup;
    }
    if (sequence % 53 == 0) {
      flags = kSockperfReplyRequested;  // not from a client: sockperf's server ignores it
    }
    const auto one = message(sequence, flags, length, static_cast<std::uint8_t>(sequence));
    append(input, one);
    if (sockperf_wants_reply(flags)) {
      append(want, reply_to(one));
      ++answered;
    } else {
      ++silent;
    }
  }
  ASSERT_GT(answered, 20u);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{14}, std::size_t{100}, std::size_t{4096},
                            input.size()}) {
    const auto config = sockperf_config();
    StreamSession session(config);
    Counters counters;
    bool kept = false;
    EXPECT_EQ(pump(session, input, chunk, counters, &kept), want) << "chunk " << chunk;
    EXPECT_TRUE(kept);
    EXPECT_EQ(counters.messages, answered);
    EXPECT_EQ(counters.messages_no_reply, silent);
    EXPECT_EQ(counters.protocol_errors, 0u);
    EXPECT_TRUE(session.at_message_boundary());
  }
}

TEST(SockperfSession, OutputNotYetSentSurvivesCutMessages) {
  // The peer reads nothing between reads: kept replies accumulate while silent messages
  // after them are cut out, and a message split across reads is kept whole.
  const auto config = sockperf_config();
  StreamSession session(config);
  Counters counters;
  std::vector<std::byte> input;
  std::vector<std::byte> want;
  for (std::uint64_t sequence = 1; sequence <= 40; ++sequence) {
    const auto one = message(sequence, sequence % 3 == 0 ? kPing : kSockperfClient, 30,
                             static_cast<std::uint8_t>(sequence));
    append(input, one);
    if (sequence % 3 == 0) {
      append(want, reply_to(one));
    }
  }
  for (std::size_t pos = 0; pos < input.size();) {
    auto space = session.receive_buffer();
    const std::size_t n = std::min<std::size_t>({17, space.size(), input.size() - pos});
    std::memcpy(space.data(), input.data() + pos, n);
    pos += n;
    ASSERT_TRUE(session.commit_received(n, counters));
  }
  const auto out = session.output();
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.end()), want);
}

TEST(SockperfSession, BadLengthClosesAfterTheRepliesBeforeIt) {
  for (std::uint32_t bad : {0u, 13u, 1025u}) {
    const auto config = sockperf_config(1024);
    std::vector<std::byte> input = message(1, kPing, 20);
    append(input, message(2, kSockperfClient, 20));
    append(input, message(3, kPing, bad));
    append(input, message(4, kPing, 20));  // after the bad header: never answered
    for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, input.size()}) {
      StreamSession session(config);
      Counters counters;
      bool kept = true;
      const auto out = pump(session, input, chunk, counters, &kept);
      EXPECT_FALSE(kept) << "length " << bad << ", chunk " << chunk;
      EXPECT_EQ(out, reply_to(message(1, kPing, 20))) << "length " << bad << ", chunk " << chunk;
      EXPECT_EQ(counters.protocol_errors, 1u);
      EXPECT_EQ(counters.messages, 1u);
      EXPECT_FALSE(session.wants_input());
    }
  }
}

TEST(SockperfSession, MemoryStaysBoundedByTheLimit) {
  const auto config = sockperf_config(4096);
  StreamSession session(config);
  Counters counters;
  std::vector<std::byte> input;
  for (std::uint64_t sequence = 1; sequence <= 200; ++sequence) {
    append(input, message(sequence, sequence % 2 == 0 ? kPing : kSockperfClient, 4096));
  }
  bool kept = false;
  const auto out = pump(session, input, 1000, counters, &kept);
  EXPECT_TRUE(kept);
  EXPECT_EQ(out.size(), 100u * 4096);
  EXPECT_LE(session.memory_bytes(), stream_memory_bound(config));
}

// reactor-pool: only the messages that want a reply are owed work; they come out in order,
// each turned into its reply.
TEST(SockperfSession, DeferredWorkOwesOnlyTheAnsweredMessages) {
  const auto config = sockperf_config();
  StreamSession session(config);
  session.defer_work();
  Counters counters;
  std::vector<std::byte> input;
  append(input, message(1, kSockperfClient, 20, 1));
  append(input, message(2, kPing, 20, 2));
  append(input, message(3, kSockperfClient, 30, 3));
  append(input, message(4, kPing, 25, 4));
  const auto tail = message(5, kPing, 40, 5);
  input.insert(input.end(), tail.begin(), tail.begin() + 9);  // a fifth, unfinished
  auto space = session.receive_buffer();
  std::memcpy(space.data(), input.data(), input.size());
  ASSERT_TRUE(session.commit_received(input.size(), counters));
  EXPECT_EQ(session.take_new_work(), 2u);
  EXPECT_EQ(counters.messages_no_reply, 2u);
  EXPECT_FALSE(session.has_output());
  session.finish_work(true);
  session.finish_work(true);
  std::vector<std::byte> want = reply_to(message(2, kPing, 20, 2));
  append(want, reply_to(message(4, kPing, 25, 4)));
  auto out = session.output();
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.end()), want);
  session.commit_sent(out.size(), counters);
  // The rest of the fifth completes it.
  space = session.receive_buffer();
  std::memcpy(space.data(), tail.data() + 9, tail.size() - 9);
  ASSERT_TRUE(session.commit_received(tail.size() - 9, counters));
  EXPECT_EQ(session.take_new_work(), 1u);
  session.finish_work(true);
  out = session.output();
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.end()), reply_to(tail));
}

TEST(SockperfDatagram, AnswersOnlyPingsInPlace) {
  const auto config = sockperf_config();
  Counters counters;
  auto ping = message(42, kPing, 100);
  const auto want = reply_to(ping);
  EXPECT_TRUE(accept_datagram(ping, false, config, counters));
  EXPECT_EQ(ping, want) << "the reply is the datagram, client flag cleared";
  auto under_load = message(43, kSockperfClient, 100);
  EXPECT_FALSE(accept_datagram(under_load, false, config, counters));
  auto warmup = message(44, kPing | kSockperfWarmup, 100);
  EXPECT_FALSE(accept_datagram(warmup, false, config, counters));
  EXPECT_EQ(counters.messages, 1u);
  EXPECT_EQ(counters.messages_no_reply, 2u);
  EXPECT_EQ(counters.protocol_errors, 0u);
  EXPECT_EQ(counters.datagrams_dropped, 0u);
}

TEST(SockperfDatagram, MalformedOrTruncatedIsCountedAndDropped) {
  const auto config = sockperf_config(1000);
  Counters counters;
  auto lying = message(1, kPing, 100);
  lying.resize(60);  // the header says 100 bytes
  EXPECT_FALSE(accept_datagram(lying, false, config, counters));
  auto short_one = message(1, kPing, 14);
  short_one.resize(13);
  EXPECT_FALSE(accept_datagram(short_one, false, config, counters));
  auto under_header = message(1, kPing, 10);  // a whole datagram announcing 10 bytes
  EXPECT_FALSE(accept_datagram(under_header, false, config, counters));
  auto too_big = message(1, kPing, 1001);
  EXPECT_FALSE(accept_datagram(too_big, false, config, counters));
  EXPECT_EQ(counters.protocol_errors, 4u);
  auto cut = message(1, kPing, 100);
  EXPECT_FALSE(accept_datagram(cut, true, config, counters));
  EXPECT_EQ(counters.datagrams_truncated, 1u);
  EXPECT_EQ(counters.datagrams_dropped, 5u);
  EXPECT_EQ(counters.messages, 0u);
}

TEST(Protocol, SockperfParsesAndPrints) {
  ASSERT_EQ(parse_protocol("sockperf"), Protocol::sockperf);
  EXPECT_EQ(to_string(Protocol::sockperf), "sockperf");
}

}  // namespace
}  // namespace echolab
