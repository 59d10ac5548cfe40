// libFuzzer harness: the frame decoder and StreamSession fed arbitrary bytes in arbitrary
// chunks must agree with a whole-buffer reference parse, never over-read, never allocate
// for an over-size header, and echo exactly the complete frames.
// Input: byte 0 picks max_frame, byte 1 seeds the chunking, the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/framing.h"
#include "core/session.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using echolab::fuzz::check;

using echolab::FrameDecoder;

// Where complete frames end in the whole buffer, and whether a bad header stops it.
struct Reference {
  std::vector<std::size_t> ends;
  bool oversize = false;
};

Reference parse_whole(const std::byte* data, std::size_t size, std::uint32_t max_frame) {
  Reference ref;
  std::size_t pos = 0;
  while (size - pos >= echolab::kFrameHeaderSize) {
    const std::uint32_t length = echolab::decode_frame_header(data + pos);
    if (length > max_frame) {
      ref.oversize = true;
      break;
    }
    if (size - pos - echolab::kFrameHeaderSize < length) {
      break;
    }
    pos += echolab::kFrameHeaderSize + length;
    ref.ends.push_back(pos);
  }
  return ref;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* raw, std::size_t size) {
  const auto input = echolab::fuzz::split_input(raw, size);
  if (!input) {
    return 0;
  }
  const auto [max_frame, chunk_seed, stream, length] = *input;
  echolab::fuzz::Chunks chunks(chunk_seed);
  const Reference ref = parse_whole(stream, length, max_frame);

  // The decoder alone, in pseudo-random chunks.
  FrameDecoder decoder(max_frame);
  std::vector<std::size_t> ends;
  bool oversize = false;
  for (std::size_t pos = 0; pos < length && !oversize;) {
    const std::size_t n = std::min(chunks.next(97), length - pos);
    const std::size_t base = pos;
    oversize = decoder.scan(std::span(stream + pos, n),
                            [&](std::size_t end, std::uint32_t) { ends.push_back(base + end); }) ==
               FrameDecoder::Status::oversize;
    pos += n;
  }
  check(ends == ref.ends);
  check(oversize == ref.oversize);

  // The session: echoes exactly the complete frames, byte for byte.
  echolab::ProtocolConfig config;
  config.max_frame = max_frame;
  echolab::StreamSession session(config);
  echolab::Counters counters;
  std::vector<std::byte> echoed;
  bool ok = true;
  for (std::size_t pos = 0; pos < length && ok;) {
    auto space = session.receive_buffer();
    check(!space.empty());
    const std::size_t n = std::min({space.size(), length - pos, chunks.next(4099)});
    std::memcpy(space.data(), stream + pos, n);
    pos += n;
    ok = session.commit_received(n, counters);
    const auto out = session.output();
    echoed.insert(echoed.end(), out.begin(), out.end());
    session.commit_sent(out.size(), counters);
    check(session.memory_bytes() <= config.output_cap + max_frame + 4 + 4 * 64 * 1024);
  }
  const std::size_t complete = ref.ends.empty() ? 0 : ref.ends.back();
  check(ok == !ref.oversize);
  check(echoed.size() == complete);
  check(complete == 0 || std::memcmp(echoed.data(), stream, complete) == 0);
  check(counters.messages == ref.ends.size());
  return 0;
}
