#pragma once
// LoadConfig: everything a run of echolab-loadgen depends on, as parsed from the command line
// (loadgen/options.h) and written back verbatim into the JSON result, so that a result file
// says exactly what produced it and two files can be checked for "same configuration".
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/address.h"
#include "core/session.h"
#include "core/socket.h"
#include "loadgen/sources.h"

namespace echolab {

using std::chrono::nanoseconds;

enum class LoadMode {
  closed,   // C connections, each with D messages in flight
  open,     // a fixed send schedule of R msgs/s, whatever the replies do
  connect,  // connect, one message, echo, close, again
};
[[nodiscard]] std::string_view to_string(LoadMode mode);

// Message payload sizes (bytes after the 4-byte frame header in framed mode; the whole
// message in raw mode). Every payload starts with a 16-byte header (connection id,
// sequence number, checksum), which is why kMinPayload is the smallest size.
struct SizeDistribution {
  enum class Kind { fixed, uniform, weighted };
  struct Choice {
    std::uint32_t size = 0;
    double weight = 1.0;
  };
  Kind kind = Kind::fixed;
  std::uint32_t min = 64;  // fixed: min == max
  std::uint32_t max = 64;
  std::vector<Choice> choices;  // weighted only
  std::string text = "64";      // as the user wrote it
};

struct LoadConfig {
  std::string target_text;  // as given to --target
  Endpoint target;
  Transport transport = Transport::tcp;
  Protocol protocol = Protocol::framed;
  LoadMode mode = LoadMode::closed;
  int connections = 1;
  int pipeline = 1;
  double rate = 0;  // msgs/s over all connections (open mode)
  SizeDistribution size;
  nanoseconds warmup{std::chrono::seconds(1)};
  nanoseconds duration{std::chrono::seconds(10)};
  std::uint64_t messages = 0;  // when > 0, the run ends after this many instead of a duration
  nanoseconds timeout{std::chrono::seconds(2)};
  nanoseconds time_limit{0};  // 0: derived from the others, see hard_limit()
  nanoseconds interval{std::chrono::seconds(1)};
  int threads = 1;
  std::vector<int> cpus;  // thread i runs on cpus[i % size]; empty: no pinning
  std::string json_path;  // "-" for stdout
  std::string hgrm_path;
  std::string hlog_path;  // HdrHistogram interval log; also keeps per-interval uncorrected/send_lag
  // --window-file: written when the run starts, with its measured window, so that a tool
  // sampling the machine meanwhile (echolab-bench's /proc sampler) can keep out of it.
  std::string window_path;
  bool quiet = false;  // no summary table
  bool live_status = true;  // still only when stdout is a terminal
  std::uint64_t seed = 1;
  nanoseconds max_send_lag{std::chrono::milliseconds(5)};  // p99 of send lag; past it: invalid
  double max_cpu = 0.9;  // busy share of each generator thread (ThreadUsage::busy_s); past it: invalid
  SocketOptions socket;
  // --source-addresses: bind each tcp connection to one of these before connecting. Without
  // it, addresses are added only when the ephemeral ports would run out (loadgen/sources.h).
  std::optional<SourceRange> source_addresses;

  // The run never lasts longer than this (set-up excluded), even if the target stops
  // answering: warm-up + duration (or 10 min with --messages) + one timeout to drain + 5 s.
  [[nodiscard]] nanoseconds hard_limit() const;
  [[nodiscard]] bool is_datagram() const { return !is_stream(transport); }
};

// The configuration as the JSON result records it (every duration with its unit in the key).
[[nodiscard]] nlohmann::json to_json(const LoadConfig& config);

}  // namespace echolab
