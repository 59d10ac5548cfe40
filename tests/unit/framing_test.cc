#include "core/framing.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace echolab {
namespace {

std::vector<std::byte> frame(std::uint32_t length, std::byte fill = std::byte{0x5A}) {
  std::vector<std::byte> bytes(kFrameHeaderSize + length, fill);
  encode_frame_header(length, bytes.data());
  return bytes;
}

std::vector<std::byte> concat(const std::vector<std::vector<std::byte>>& parts) {
  std::vector<std::byte> all;
  for (const auto& part : parts) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// Feeds `stream` in chunks of the given sizes (cycled); returns the absolute end offsets
// and lengths of the frames the decoder reported.
struct Seen {
  std::vector<std::size_t> ends;
  std::vector<std::uint32_t> lengths;
  FrameDecoder::Status status = FrameDecoder::Status::ok;
};

Seen feed(FrameDecoder& decoder, const std::vector<std::byte>& stream, std::vector<std::size_t> chunks) {
  Seen seen;
  std::size_t pos = 0;
  std::size_t chunk_index = 0;
  while (pos < stream.size() && seen.status == FrameDecoder::Status::ok) {
    const std::size_t n = std::min(chunks[chunk_index++ % chunks.size()], stream.size() - pos);
    const std::size_t base = pos;
    seen.status = decoder.scan(std::span(stream).subspan(pos, n), [&](std::size_t end, std::uint32_t length) {
      seen.ends.push_back(base + end);
      seen.lengths.push_back(length);
    });
    pos += n;
  }
  return seen;
}

TEST(FrameHeader, RoundTripsBigEndian) {
  std::byte header[4];
  encode_frame_header(0x01020304, header);
  EXPECT_EQ(header[0], std::byte{1});
  EXPECT_EQ(header[3], std::byte{4});
  EXPECT_EQ(decode_frame_header(header), 0x01020304u);
}

TEST(FrameDecoder, WholeFrameInOneRead) {
  FrameDecoder decoder;
  const auto seen = feed(decoder, frame(100), {1000});
  ASSERT_EQ(seen.ends, (std::vector<std::size_t>{104}));
  EXPECT_EQ(seen.lengths[0], 100u);
  EXPECT_TRUE(decoder.at_frame_boundary());
}

TEST(FrameDecoder, ByteAtATime) {
  FrameDecoder decoder;
  const auto stream = concat({frame(3), frame(0), frame(17)});
  const auto seen = feed(decoder, stream, {1});
  EXPECT_EQ(seen.ends, (std::vector<std::size_t>{7, 11, 32}));
  EXPECT_EQ(seen.lengths, (std::vector<std::uint32_t>{3, 0, 17}));
  EXPECT_TRUE(decoder.at_frame_boundary());
}

TEST(FrameDecoder, SplitOverTwoAndThreeReads) {
  const auto stream = frame(50);
  for (std::size_t first = 1; first < stream.size(); ++first) {
    FrameDecoder two;
    EXPECT_EQ(feed(two, stream, {first, stream.size()}).ends, (std::vector<std::size_t>{54})) << first;
    FrameDecoder three;
    EXPECT_EQ(feed(three, stream, {first, 2, stream.size()}).ends, (std::vector<std::size_t>{54})) << first;
  }
}

TEST(FrameDecoder, PipelinedFramesInOneRead) {
  FrameDecoder decoder;
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::size_t> expected_ends;
  std::size_t end = 0;
  for (std::uint32_t length = 0; length < 40; ++length) {
    frames.push_back(frame(length));
    end += kFrameHeaderSize + length;
    expected_ends.push_back(end);
  }
  const auto seen = feed(decoder, concat(frames), {1 << 20});
  EXPECT_EQ(seen.ends, expected_ends);
}

TEST(FrameDecoder, ZeroLengthFramesAreFrames) {
  FrameDecoder decoder;
  const auto seen = feed(decoder, concat({frame(0), frame(0), frame(0)}), {2});
  EXPECT_EQ(seen.ends, (std::vector<std::size_t>{4, 8, 12}));
}

TEST(FrameDecoder, MaxSizeIsAcceptedOneMoreIsNot) {
  FrameDecoder at_limit(1000);
  EXPECT_EQ(feed(at_limit, frame(1000), {333}).ends, (std::vector<std::size_t>{1004}));

  FrameDecoder over(1000);
  const auto seen = feed(over, frame(1001), {333});
  EXPECT_EQ(seen.status, FrameDecoder::Status::oversize);
  EXPECT_TRUE(seen.ends.empty());
  EXPECT_TRUE(over.failed());
  EXPECT_EQ(over.rejected_length(), 1001u);
}

TEST(FrameDecoder, OversizeIsRejectedAtTheHeaderAndStaysRejected) {
  for (std::uint32_t length : {0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu, kDefaultMaxFrame + 1}) {
    FrameDecoder decoder;
    std::byte header[4];
    encode_frame_header(length, header);
    std::size_t frames = 0;
    // Three header bytes are not yet an error; the fourth is.
    EXPECT_EQ(decoder.scan(std::span<const std::byte>(header, 3), [&](auto, auto) { ++frames; }),
              FrameDecoder::Status::ok);
    EXPECT_EQ(decoder.scan(std::span<const std::byte>(header + 3, 1), [&](auto, auto) { ++frames; }),
              FrameDecoder::Status::oversize);
    const std::vector<std::byte> more = frame(1);
    EXPECT_EQ(decoder.scan(more, [&](auto, auto) { ++frames; }), FrameDecoder::Status::oversize);
    EXPECT_EQ(frames, 0u);
  }
}

TEST(FrameDecoder, GoodFramesBeforeABadHeaderAreReported) {
  FrameDecoder decoder(10);
  const auto seen = feed(decoder, concat({frame(5), frame(10), frame(11), frame(1)}), {1 << 10});
  EXPECT_EQ(seen.lengths, (std::vector<std::uint32_t>{5, 10}));
  EXPECT_EQ(seen.status, FrameDecoder::Status::oversize);
}

TEST(FrameDecoder, RandomChunkingFindsTheSameFrames) {
  std::mt19937 rng(42);
  std::vector<std::vector<std::byte>> frames;
  std::vector<std::size_t> expected;
  std::size_t end = 0;
  for (int i = 0; i < 300; ++i) {
    const auto length = static_cast<std::uint32_t>(rng() % 3000);
    frames.push_back(frame(length, std::byte(i)));
    end += kFrameHeaderSize + length;
    expected.push_back(end);
  }
  const auto stream = concat(frames);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::size_t> chunks;
    for (int i = 0; i < 50; ++i) {
      chunks.push_back(1 + rng() % 5000);
    }
    FrameDecoder decoder;
    EXPECT_EQ(feed(decoder, stream, chunks).ends, expected);
  }
}

}  // namespace
}  // namespace echolab
