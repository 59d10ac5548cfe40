#include "core/session.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "tests/unit/session_pump.h"

namespace echolab {
namespace {

std::vector<std::byte> frame(std::uint32_t length, std::uint8_t fill) {
  std::vector<std::byte> bytes(kFrameHeaderSize + length, std::byte{fill});
  encode_frame_header(length, bytes.data());
  return bytes;
}

TEST(StreamSession, FramedEchoesWholeFramesOnly) {
  ProtocolConfig config;
  StreamSession session(config);
  Counters counters;
  const auto one = frame(10, 1);
  // The first 7 bytes are not a complete frame: nothing may be echoed yet.
  auto space = session.receive_buffer();
  std::memcpy(space.data(), one.data(), 7);
  ASSERT_TRUE(session.commit_received(7, counters));
  EXPECT_FALSE(session.has_output());
  EXPECT_FALSE(session.at_message_boundary());
  space = session.receive_buffer();
  std::memcpy(space.data(), one.data() + 7, one.size() - 7);
  ASSERT_TRUE(session.commit_received(one.size() - 7, counters));
  ASSERT_EQ(session.output().size(), one.size());
  EXPECT_EQ(std::memcmp(session.output().data(), one.data(), one.size()), 0);
  EXPECT_TRUE(session.at_message_boundary());
  EXPECT_EQ(counters.messages, 1u);
}

TEST(StreamSession, RandomFramesSurviveAnyChunking) {
  ProtocolConfig config;
  std::mt19937 rng(7);
  std::vector<std::byte> input;
  for (int i = 0; i < 200; ++i) {
    const auto f = frame(static_cast<std::uint32_t>(rng() % 70000), static_cast<std::uint8_t>(i));
    input.insert(input.end(), f.begin(), f.end());
  }
  // Byte-at-a-time is ByteAtATimeSmallFrames: over these 7 MB it would be slow in a debug build.
  for (std::size_t chunk : {3u, 4096u, 65536u, 1u << 20}) {
    StreamSession session(config);
    Counters counters;
    const auto out = pump(session, input, chunk, counters);
    EXPECT_EQ(out, input) << "chunk " << chunk;
    EXPECT_EQ(counters.messages, 200u);
    EXPECT_EQ(counters.bytes_in, input.size());
    EXPECT_EQ(counters.bytes_out, input.size());
  }
}

TEST(StreamSession, ByteAtATimeSmallFrames) {
  ProtocolConfig config;
  std::vector<std::byte> input;
  for (std::uint32_t length = 0; length < 50; ++length) {
    const auto f = frame(length, static_cast<std::uint8_t>(length));
    input.insert(input.end(), f.begin(), f.end());
  }
  StreamSession session(config);
  Counters counters;
  EXPECT_EQ(pump(session, input, 1, counters), input);
  EXPECT_EQ(counters.messages, 50u);
}

TEST(StreamSession, RawEchoesEveryByteAtOnce) {
  ProtocolConfig config;
  config.protocol = Protocol::raw;
  StreamSession session(config);
  Counters counters;
  std::vector<std::byte> input(10000);
  for (std::size_t i = 0; i < input.size(); ++i) {
    input[i] = std::byte(i * 7);
  }
  EXPECT_EQ(pump(session, input, 999, counters), input);
}

TEST(StreamSession, OversizeFrameIsAProtocolErrorAndNothingIsReservedForIt) {
  ProtocolConfig config;
  config.max_frame = 1024;
  StreamSession session(config);
  Counters counters;
  std::vector<std::byte> input = frame(1025, 9);
  bool ok = true;
  const auto out = pump(session, input, input.size(), counters, &ok);
  EXPECT_FALSE(ok);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(counters.protocol_errors, 1u);

  // A header announcing 2 GiB must not make the session grow towards it.
  StreamSession huge(config);
  std::byte header[4];
  encode_frame_header(0x80000000u, header);
  auto space = huge.receive_buffer();
  std::memcpy(space.data(), header, 4);
  EXPECT_FALSE(huge.commit_received(4, counters));
  EXPECT_LE(huge.memory_bytes(), 64u * 1024);
}

TEST(StreamSession, StopsReadingWhenThePeerDoesNotReadItsEchoes) {
  ProtocolConfig config;
  config.output_cap = 64 * 1024;
  config.max_frame = 1024;
  StreamSession session(config);
  Counters counters;
  const auto f = frame(1000, 3);
  int frames = 0;
  while (session.wants_input()) {
    auto space = session.receive_buffer();
    const std::size_t n = std::min(space.size(), f.size());
    ASSERT_EQ(n, f.size());
    std::memcpy(space.data(), f.data(), n);
    ASSERT_TRUE(session.commit_received(n, counters));
    ASSERT_LT(++frames, 1000) << "never paused";
  }
  EXPECT_GE(session.output().size(), config.output_cap);
  // Bounded: cap + one frame in progress + one receive chunk.
  EXPECT_LE(session.memory_bytes(), config.output_cap + config.max_frame + 4 + 2 * 64 * 1024);
  session.commit_sent(session.output().size(), counters);
  EXPECT_TRUE(session.wants_input());
}

TEST(StreamSession, FramesBeforeAProtocolErrorStaySendable) {
  ProtocolConfig config;
  config.max_frame = 1000;
  StreamSession session(config);
  Counters counters;
  std::vector<std::byte> input = frame(20, 1);
  const auto empty = frame(0, 0);
  input.insert(input.end(), empty.begin(), empty.end());
  const std::size_t complete = input.size();
  std::byte header[4];
  encode_frame_header(5000, header);
  input.insert(input.end(), header, header + 4);
  auto space = session.receive_buffer();
  std::memcpy(space.data(), input.data(), input.size());
  EXPECT_FALSE(session.commit_received(input.size(), counters));
  EXPECT_FALSE(session.wants_input()) << "nothing more is read from a peer that broke the protocol";
  ASSERT_EQ(session.output().size(), complete);
  EXPECT_EQ(std::memcmp(session.output().data(), input.data(), complete), 0);
  EXPECT_EQ(counters.messages, 2u);
  EXPECT_EQ(counters.protocol_errors, 1u);
}

// The bound of stream_memory_bound, checked after every receive over many ways a stream can
// be split, with a peer that reads its echoes at once and one that reads only when the
// session stops reading (ready output at the cap).
TEST(StreamSession, MemoryStaysWithinTheStatedBound) {
  std::mt19937 rng(13);
  struct Shape {
    std::uint32_t max_frame;
    std::size_t output_cap;
  };
  for (const Shape shape : {Shape{1u << 20, 256 * 1024}, Shape{100'000, 64 * 1024}, Shape{1000, 4096}}) {
    ProtocolConfig config;
    config.max_frame = shape.max_frame;
    config.output_cap = shape.output_cap;
    const std::size_t bound = stream_memory_bound(config);
    std::vector<std::byte> input;
    for (int i = 0; i < 12; ++i) {
      const std::uint32_t length = i % 3 == 0 ? shape.max_frame : static_cast<std::uint32_t>(rng() % (shape.max_frame + 1));
      const auto f = frame(length, static_cast<std::uint8_t>(i));
      input.insert(input.end(), f.begin(), f.end());
    }
    const std::vector<std::size_t> chunks = shape.max_frame <= 1000 ? std::vector<std::size_t>{1, 3, 4096, 0}
                                                                   : std::vector<std::size_t>{7, 4096, 65536, 1u << 21, 0};
    for (const std::size_t chunk : chunks) {  // 0: random sizes
      for (const bool lazy_reader : {false, true}) {
        SCOPED_TRACE("max_frame " + std::to_string(shape.max_frame) + " chunk " + std::to_string(chunk) +
                     (lazy_reader ? " lazy reader" : " eager reader"));
        StreamSession session(config);
        Counters counters;
        std::vector<std::byte> out;
        std::size_t peak = 0;
        for (std::size_t pos = 0; pos < input.size() || session.has_output();) {
          if (pos < input.size() && session.wants_input()) {
            auto space = session.receive_buffer();
            peak = std::max(peak, session.memory_bytes());
            const std::size_t want = chunk == 0 ? 1 + rng() % 200'000 : chunk;
            const std::size_t n = std::min({want, space.size(), input.size() - pos});
            std::memcpy(space.data(), input.data() + pos, n);
            pos += n;
            ASSERT_TRUE(session.commit_received(n, counters));
          }
          if (!lazy_reader || !session.wants_input() || pos == input.size()) {
            const auto ready = session.output();
            const std::size_t n = lazy_reader ? (ready.size() + 1) / 2 : ready.size();
            out.insert(out.end(), ready.begin(), ready.begin() + static_cast<std::ptrdiff_t>(n));
            session.commit_sent(n, counters);
          }
        }
        EXPECT_LE(peak, bound);
        EXPECT_EQ(out, input);
      }
    }
  }
}

// One max-size frame in progress holds its own size plus at most one receive chunk, not
// twice its size (a doubling vector's growth).
TEST(StreamSession, OnePartialMaxSizeFrameCostsItsSize) {
  for (const std::uint32_t max_frame : {1u << 20, 4u << 20}) {
    ProtocolConfig config;
    config.max_frame = max_frame;
    StreamSession session(config);
    Counters counters;
    auto input = frame(max_frame, 5);
    input.pop_back();
    std::size_t reservations = 0;  // for the frame: once its header is in, and only once
    std::size_t last_capacity = 0;
    for (std::size_t pos = 0; pos < input.size();) {
      auto space = session.receive_buffer();
      if (session.memory_bytes() != last_capacity && session.memory_bytes() >= max_frame) {
        ++reservations;
      }
      last_capacity = session.memory_bytes();
      const std::size_t n = std::min<std::size_t>({space.size(), input.size() - pos, 64 * 1024});
      std::memcpy(space.data(), input.data() + pos, n);
      pos += n;
      ASSERT_TRUE(session.commit_received(n, counters));
      EXPECT_FALSE(session.has_output());
      ASSERT_LE(session.memory_bytes(), kFrameHeaderSize + max_frame + kSessionReceiveChunk) << "at " << pos;
    }
    EXPECT_LE(session.memory_bytes(), stream_memory_bound(config));
    EXPECT_EQ(reservations, 1u) << "each reservation copies the frame so far";
  }
}

TEST(StreamSession, RawProgressNeedsBytesNotJustReads) {
  ProtocolConfig config;
  config.protocol = Protocol::raw;
  StreamSession session(config);
  Counters counters;
  // A trickler: one byte a read. Every read is a message, but not progress.
  for (std::size_t i = 1; i < kRawProgressBytes; ++i) {
    auto space = session.receive_buffer();
    space[0] = std::byte{'x'};
    ASSERT_TRUE(session.commit_received(1, counters));
    EXPECT_FALSE(session.take_progress()) << "after " << i << " bytes";
  }
  EXPECT_EQ(counters.messages, kRawProgressBytes - 1);
  auto space = session.receive_buffer();
  space[0] = std::byte{'x'};
  ASSERT_TRUE(session.commit_received(1, counters));
  EXPECT_TRUE(session.take_progress());
  EXPECT_FALSE(session.take_progress()) << "taken once";
  // A line of text at once is progress.
  space = session.receive_buffer();
  std::memcpy(space.data(), "a line of text, echoed\n", 23);
  ASSERT_TRUE(session.commit_received(23, counters));
  EXPECT_TRUE(session.take_progress());
}

TEST(StreamSession, FramedProgressIsACompletedFrame) {
  ProtocolConfig config;
  StreamSession session(config);
  Counters counters;
  const auto one = frame(100, 2);
  for (std::size_t i = 0; i < one.size(); ++i) {
    auto space = session.receive_buffer();
    space[0] = one[i];
    ASSERT_TRUE(session.commit_received(1, counters));
    EXPECT_EQ(session.take_progress(), i + 1 == one.size()) << "byte " << i;
  }
}

TEST(Datagram, RawEchoesAnything) {
  ProtocolConfig config;
  config.protocol = Protocol::raw;
  Counters counters;
  std::vector<std::byte> empty;
  EXPECT_TRUE(accept_datagram(empty, false, config, counters));
  std::vector<std::byte> some(100, std::byte{1});
  EXPECT_TRUE(accept_datagram(some, false, config, counters));
  EXPECT_EQ(counters.messages, 2u);
}

TEST(Datagram, FramedPrefixMustMatchTheSize) {
  ProtocolConfig config;
  Counters counters;
  auto good = frame(100, 1);
  EXPECT_TRUE(accept_datagram(good, false, config, counters));
  auto lying = frame(100, 1);
  encode_frame_header(99, lying.data());
  EXPECT_FALSE(accept_datagram(lying, false, config, counters));
  std::vector<std::byte> short_one(3);
  EXPECT_FALSE(accept_datagram(short_one, false, config, counters));
  EXPECT_EQ(counters.protocol_errors, 2u);
  EXPECT_EQ(counters.datagrams_dropped, 2u);
  EXPECT_EQ(counters.messages, 1u);
}

TEST(Datagram, TruncatedIsCountedAndDropped) {
  ProtocolConfig config;
  config.protocol = Protocol::raw;
  Counters counters;
  std::vector<std::byte> cut(1000);
  EXPECT_FALSE(accept_datagram(cut, true, config, counters));
  EXPECT_EQ(counters.datagrams_truncated, 1u);
  EXPECT_EQ(counters.messages, 0u);
}

// Deferred work (reactor-pool): completed frames wait for their work, come out in order as
// it is reported done, count against the output cap, and a cut-off ends the connection
// without sending it or anything after it.
TEST(StreamSession, DeferredWorkReleasesFramesInOrder) {
  ProtocolConfig config;
  config.output_cap = 64;
  StreamSession session(config);
  session.defer_work();
  Counters counters;
  std::vector<std::byte> input;
  for (std::uint8_t i = 1; i <= 3; ++i) {
    const auto one = frame(20, i);
    input.insert(input.end(), one.begin(), one.end());
  }
  const auto tail = frame(5, 9);
  input.insert(input.end(), tail.begin(), tail.begin() + 2);  // an unfinished fourth frame
  auto space = session.receive_buffer();
  std::memcpy(space.data(), input.data(), input.size());
  ASSERT_TRUE(session.commit_received(input.size(), counters));
  EXPECT_EQ(session.take_new_work(), 3u);
  EXPECT_EQ(session.take_new_work(), 0u);
  EXPECT_FALSE(session.has_output()) << "nothing is sent before its work is done";
  EXPECT_TRUE(session.owes_work());
  EXPECT_FALSE(session.wants_input()) << "72 bytes owed work are over the 64-byte cap";
  EXPECT_EQ(counters.messages, 0u) << "whoever runs the work counts it";

  session.finish_work(true);
  ASSERT_EQ(session.output().size(), 24u);
  EXPECT_EQ(session.output()[4], std::byte{1});
  session.commit_sent(24, counters);
  EXPECT_TRUE(session.wants_input());
  session.finish_work(true);
  ASSERT_EQ(session.output().size(), 24u);
  EXPECT_EQ(session.output()[4], std::byte{2});
  session.finish_work(false);  // a stop's cutoff: the third is never sent
  EXPECT_EQ(session.output().size(), 24u);
  EXPECT_FALSE(session.owes_work());
  EXPECT_FALSE(session.wants_input()) << "the connection ends once the second frame is sent";
}

}  // namespace
}  // namespace echolab
