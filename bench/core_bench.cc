// Micro-benchmarks of the protocol core's hot paths: frame scanning and header coding
// (bytes/s), and a whole in-memory echo through StreamSession (messages/s), no sockets.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "core/framing.h"
#include "core/session.h"

namespace echolab {
namespace {

std::vector<std::byte> frames_of(std::size_t payload, std::size_t count) {
  std::vector<std::byte> stream;
  stream.reserve(count * (payload + kFrameHeaderSize));
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t at = stream.size();
    stream.resize(at + kFrameHeaderSize + payload, std::byte(i));
    encode_frame_header(static_cast<std::uint32_t>(payload), stream.data() + at);
  }
  return stream;
}

void BM_FrameDecode(benchmark::State& state) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  const std::vector<std::byte> stream = frames_of(payload, std::max<std::size_t>(1, (1 << 20) / (payload + 4)));
  const std::size_t chunk = 16 * 1024;  // as a recv() would deliver it
  std::size_t frames = 0;
  for (auto _ : state) {
    FrameDecoder decoder;
    for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
      const std::size_t n = std::min(chunk, stream.size() - pos);
      decoder.scan(std::span(stream).subspan(pos, n), [&](std::size_t, std::uint32_t) { ++frames; });
    }
  }
  benchmark::DoNotOptimize(frames);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_FrameDecode)->Arg(0)->Arg(16)->Arg(512)->Arg(64 * 1024);

void BM_FrameHeaderEncodeDecode(benchmark::State& state) {
  std::byte header[kFrameHeaderSize];
  std::uint32_t length = 0;
  for (auto _ : state) {
    encode_frame_header(length, header);
    benchmark::DoNotOptimize(header);
    length = decode_frame_header(header) + 1;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kFrameHeaderSize));
}
BENCHMARK(BM_FrameHeaderEncodeDecode);

// A session fed one recv-sized chunk at a time and drained after each, as an engine does.
void BM_SessionEcho(benchmark::State& state) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  const std::size_t count = std::max<std::size_t>(1, (256 * 1024) / (payload + 4));
  const std::vector<std::byte> stream = frames_of(payload, count);
  ProtocolConfig config;
  StreamSession session(config);
  Counters counters;
  for (auto _ : state) {
    std::size_t pos = 0;
    while (pos < stream.size()) {
      auto space = session.receive_buffer();
      const std::size_t n = std::min(space.size(), stream.size() - pos);
      std::memcpy(space.data(), stream.data() + pos, n);
      pos += n;
      if (!session.commit_received(n, counters)) {
        state.SkipWithError("protocol error");
        return;
      }
      const auto out = session.output();
      benchmark::DoNotOptimize(out.data());
      session.commit_sent(out.size(), counters);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_SessionEcho)->Arg(16)->Arg(512)->Arg(16 * 1024);

}  // namespace
}  // namespace echolab

BENCHMARK_MAIN();
