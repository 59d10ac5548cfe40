// libFuzzer harness: the sockperf decoder and a StreamSession in sockperf mode fed arbitrary
// bytes in arbitrary chunks must agree with a whole-buffer reference parse, never over-read,
// stay within their memory bound, and send exactly the replies of the complete messages that
// ask for one (client flag cleared), nothing of the others. The datagram path gets the whole
// input as one datagram.
// Input: byte 0 picks max_frame, byte 1 seeds the chunking, the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/session.h"
#include "core/sockperf.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using echolab::fuzz::check;

using echolab::SockperfDecoder;

struct Reference {
  std::vector<std::size_t> ends;
  std::vector<bool> wants_reply;
  std::vector<std::byte> replies;  // what the session must send
  bool bad_length = false;
};

Reference parse_whole(const std::byte* data, std::size_t size, std::uint32_t max_length) {
  Reference ref;
  std::size_t pos = 0;
  while (size - pos >= echolab::kSockperfHeaderSize) {
    const auto header = echolab::decode_sockperf_header(data + pos);
    if (header.length < echolab::kSockperfHeaderSize || header.length > max_length) {
      ref.bad_length = true;
      break;
    }
    if (size - pos < header.length) {
      break;
    }
    const bool wanted = echolab::sockperf_wants_reply(header.flags);
    if (wanted) {
      const std::size_t at = ref.replies.size();
      ref.replies.insert(ref.replies.end(), data + pos, data + pos + header.length);
      ref.replies[at + 9] &= ~std::byte{1};
    }
    pos += header.length;
    ref.ends.push_back(pos);
    ref.wants_reply.push_back(wanted);
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

  // The decoder alone, in pseudo-random chunks (many shorter than a header).
  SockperfDecoder decoder(max_frame);
  std::vector<std::size_t> ends;
  std::vector<bool> wants_reply;
  bool bad_length = false;
  for (std::size_t pos = 0; pos < length && !bad_length;) {
    const std::size_t n = std::min(chunks.next(31), length - pos);
    const std::size_t base = pos;
    bad_length = decoder.scan(std::span(stream + pos, n),
                              [&](std::size_t end, bool wanted) {
                                ends.push_back(base + end);
                                wants_reply.push_back(wanted);
                              }) == SockperfDecoder::Status::bad_length;
    pos += n;
  }
  check(ends == ref.ends);
  check(wants_reply == ref.wants_reply);
  check(bad_length == ref.bad_length);

  // The session: sends exactly the replies, byte for byte.
  echolab::ProtocolConfig config;
  config.protocol = echolab::Protocol::sockperf;
  config.max_frame = max_frame;
  echolab::StreamSession session(config);
  echolab::Counters counters;
  std::vector<std::byte> sent;
  bool ok = true;
  for (std::size_t pos = 0; pos < length && ok;) {
    auto space = session.receive_buffer();
    check(!space.empty());
    const std::size_t n = std::min({space.size(), length - pos, chunks.next(4099)});
    std::memcpy(space.data(), stream + pos, n);
    pos += n;
    ok = session.commit_received(n, counters);
    // Sometimes the peer reads nothing for a while: output accumulates before cut messages
    // (up to the output cap: an engine stops receiving there).
    if ((chunks.state() >> 8) % 4 != 0 || !session.wants_input() || pos == length) {
      const auto out = session.output();
      sent.insert(sent.end(), out.begin(), out.end());
      session.commit_sent(out.size(), counters);
    }
    check(session.memory_bytes() <= echolab::stream_memory_bound(config) + 2 * 64 * 1024);
  }
  check(ok == !ref.bad_length);
  check(sent == ref.replies);
  std::uint64_t wanted = 0;
  for (bool one : ref.wants_reply) {
    wanted += one ? 1 : 0;
  }
  check(counters.messages == wanted);
  check(counters.messages_no_reply == ref.ends.size() - wanted);
  check(counters.protocol_errors == (ref.bad_length ? 1u : 0u));

  // The datagram path: the whole stream as one datagram is one message or dropped.
  std::vector<std::byte> datagram(stream, stream + length);
  echolab::Counters datagram_counters;
  const bool whole = ref.ends.size() == 1 && ref.ends.front() == length;
  const bool answered = echolab::accept_datagram(datagram, false, config, datagram_counters);
  check(answered == (whole && ref.wants_reply.front()));
  check(!answered || datagram == ref.replies);
  check(datagram_counters.protocol_errors == (whole ? 0u : 1u));
  return 0;
}
