#pragma once
// A peer that reads everything, for the session's unit tests: feeds `input` to the session
// in chunks of `chunk` bytes and takes all of its output after each. Returns that output;
// `kept` (if given) says whether the session kept the connection to the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/session.h"

namespace echolab {

inline std::vector<std::byte> pump(StreamSession& session, const std::vector<std::byte>& input, std::size_t chunk,
                                   Counters& counters, bool* kept = nullptr) {
  std::vector<std::byte> out;
  bool ok = true;
  for (std::size_t pos = 0; pos < input.size() && ok;) {
    if (!session.wants_input()) {
      ADD_FAILURE() << "a peer that reads everything is never paused";
      break;
    }
    auto space = session.receive_buffer();
    const std::size_t n = std::min({chunk, space.size(), input.size() - pos});
    std::memcpy(space.data(), input.data() + pos, n);
    pos += n;
    ok = session.commit_received(n, counters);
    const auto ready = session.output();
    out.insert(out.end(), ready.begin(), ready.end());
    session.commit_sent(ready.size(), counters);
  }
  if (kept != nullptr) {
    *kept = ok;
  }
  return out;
}

}  // namespace echolab
