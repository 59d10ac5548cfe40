#include "loadgen/spread.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "core/error.h"
#include "loadgen/merge.h"
#include "loadgen/options.h"

namespace echolab {
namespace {

std::string counted(std::uint64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string rate_text(double msgs_per_s) {
  char text[48];
  std::snprintf(text, sizeof(text), "%.1f", msgs_per_s);
  std::string out(text);
  if (out.size() > 2 && out.compare(out.size() - 2, 2, ".0") == 0) out.resize(out.size() - 2);
  return out + " msgs/s";
}

// What one generator (or the whole load) is asked for: "3 connections, 300 msgs/s".
std::string describe_share(const LoadConfig& config) {
  std::string text = counted(static_cast<std::uint64_t>(config.connections), "connection");
  if (config.mode == LoadMode::open) text += ", " + rate_text(config.rate);
  if (config.messages > 0) text += ", " + counted(config.messages, "message");
  return text;
}

std::string rank_range(int first, int last) {
  return first == last ? "rank " + std::to_string(first)
                       : "ranks " + std::to_string(first) + "-" + std::to_string(last);
}

double busiest_thread_share(const RunResult& result) {
  double busiest = 0;
  for (const ThreadUsage& t : result.threads) {
    busiest = std::max(busiest, t.cpu_share());
  }
  return busiest;
}

nlohmann::json describe_generator(const GeneratorResult& part, const LoadConfig& share) {
  const RunResult& r = part.result;
  const nlohmann::json latency = latency_summary(r.tally.corrected);
  double user = 0;
  double sys = 0;
  for (const ThreadUsage& t : r.threads) {
    user += t.user_s;
    sys += t.sys_s;
  }
  return {{"rank", part.rank},
          {"host", part.host},
          {"connections", share.connections},
          {"asked_msgs_per_s", r.asked_msgs_per_s > 0 ? nlohmann::json(r.asked_msgs_per_s) : nlohmann::json()},
          {"sent_msgs_per_s", r.sent_msgs_per_s},
          {"msgs_per_s", r.msgs_per_s},
          {"received", r.tally.received},
          {"p50_us", latency.at("p50_us")},
          {"p99_us", latency.at("p99_us")},
          {"errors", r.tally.failures_total()},
          {"cpu_user_s", user},
          {"cpu_sys_s", sys},
          {"busiest_thread_cpu_share", busiest_thread_share(r)},
          {"start_late_us", *r.start_late_s * 1e6},
          {"valid", r.valid},
          {"invalid_reasons", r.invalid_reasons}};
}

}  // namespace

LoadConfig generator_share(const LoadConfig& total, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks) {
    throw std::invalid_argument("generator_share: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
  }
  const std::string over = " over " + counted(static_cast<std::uint64_t>(ranks), "generator");
  if (total.connections < ranks) {
    throw UsageError("--connections " + std::to_string(total.connections) + over +
                     " leaves some without a connection: give at least one per generator");
  }
  if (total.messages > 0 && total.messages < static_cast<std::uint64_t>(ranks)) {
    throw UsageError("--messages " + std::to_string(total.messages) + over +
                     " leaves some without a message: give at least one per generator");
  }
  LoadConfig share = total;
  const auto index = static_cast<std::uint64_t>(rank);
  const auto parts = static_cast<std::uint64_t>(ranks);
  share.connections = static_cast<int>(even_share(static_cast<std::uint64_t>(total.connections), index, parts));
  if (total.messages > 0) share.messages = even_share(total.messages, index, parts);
  share.rate = total.rate * share.connections / total.connections;
  if (share.threads > share.connections) {
    throw UsageError("--threads " + std::to_string(share.threads) + " is more than the " +
                     counted(static_cast<std::uint64_t>(share.connections), "connection") + " of rank " +
                     std::to_string(rank) + " (--connections " + std::to_string(total.connections) + over +
                     "): every thread needs a connection of its own");
  }
  if (total.mode == LoadMode::open && share.rate < kMinRate) {
    throw UsageError("--rate " + rate_text(total.rate) + over + " gives rank " + std::to_string(rank) + " " +
                     rate_text(share.rate) + ", below the pacer's " + rate_text(kMinRate));
  }
  return share;
}

std::string describe_shares(const LoadConfig& total, int ranks) {
  std::string text = describe_share(total) + " over " + counted(static_cast<std::uint64_t>(ranks), "generator") + ":";
  for (int first = 0; first < ranks;) {
    const std::string share = describe_share(generator_share(total, first, ranks));
    int last = first;
    while (last + 1 < ranks && describe_share(generator_share(total, last + 1, ranks)) == share) ++last;
    text += (first == 0 ? " " : "; ") + rank_range(first, last) + " " + share + (first == last ? "" : " each");
    first = last + 1;
  }
  return text;
}

RunResult merge_generators(std::vector<GeneratorResult> parts, const LoadConfig& total,
                           std::chrono::nanoseconds max_start_skew) {
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
  const int ranks = static_cast<int>(parts.size());
  nlohmann::json generators = nlohmann::json::array();
  std::vector<MergeInput> inputs;
  double skew_s = 0;
  int latest = 0;
  for (int i = 0; i < ranks; ++i) {
    GeneratorResult& part = parts[static_cast<std::size_t>(i)];
    if (part.rank != i) {
      throw std::invalid_argument("merge_generators: no result from rank " + std::to_string(i));
    }
    if (!part.result.start_late_s) {
      throw std::invalid_argument("merge_generators: rank " + std::to_string(i) + " did not record its start");
    }
    // Early (a clock stepped back during the wait) is as far from the others as late.
    const double late_s = std::abs(*part.result.start_late_s);
    if (late_s > skew_s) {
      skew_s = late_s;
      latest = i;
    }
    generators.push_back(describe_generator(part, generator_share(total, i, ranks)));
    inputs.push_back(MergeInput{"rank " + std::to_string(i) + " on " + part.host, std::move(part.result)});
  }
  RunResult merged = merge_results(inputs, false);
  const double limit_s = std::chrono::duration<double>(max_start_skew).count();
  merged.generators = {{"count", ranks},
                       {"split", describe_shares(total, ranks)},
                       {"start_skew_us", skew_s * 1e6},
                       {"max_start_skew_us", limit_s * 1e6},
                       {"ranks", generators}};
  if (skew_s > limit_s) {
    char reason[200];
    std::snprintf(reason, sizeof(reason),
                  "the generators started up to %.3f ms apart (rank %d the furthest from the agreed "
                  "start), over --max-start-skew %.3f ms",
                  skew_s * 1e3, latest, limit_s * 1e3);
    merged.invalid_reasons.emplace_back(reason);
    merged.valid = false;
  }
  return merged;
}

}  // namespace echolab
