#include "loadgen/config.h"

#include <nlohmann/json.hpp>

namespace echolab {

std::string_view to_string(LoadMode mode) {
  switch (mode) {
    case LoadMode::closed:
      return "closed";
    case LoadMode::open:
      return "open";
    case LoadMode::connect:
      return "connect";
  }
  return "?";
}

nanoseconds LoadConfig::hard_limit() const {
  if (time_limit > nanoseconds(0)) {
    return time_limit;
  }
  const nanoseconds measured = messages > 0 ? nanoseconds(std::chrono::minutes(10)) : duration;
  return warmup + measured + timeout + std::chrono::seconds(5);
}

namespace {

double seconds(nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

nlohmann::json to_json(const SizeDistribution& size) {
  nlohmann::json j;
  j["spec"] = size.text;
  switch (size.kind) {
    case SizeDistribution::Kind::fixed:
      j["kind"] = "fixed";
      break;
    case SizeDistribution::Kind::uniform:
      j["kind"] = "uniform";
      break;
    case SizeDistribution::Kind::weighted: {
      j["kind"] = "weighted";
      nlohmann::json choices = nlohmann::json::array();
      for (const auto& choice : size.choices) {
        choices.push_back({{"size_bytes", choice.size}, {"weight", choice.weight}});
      }
      j["choices"] = choices;
      break;
    }
  }
  j["min_bytes"] = size.min;
  j["max_bytes"] = size.max;
  return j;
}

}  // namespace

nlohmann::json to_json(const LoadConfig& config) {
  nlohmann::json j;
  j["target"] = config.target_text;
  j["transport"] = to_string(config.transport);
  j["protocol"] = to_string(config.protocol);
  j["mode"] = to_string(config.mode);
  j["connections"] = config.connections;
  j["pipeline"] = config.pipeline;
  j["rate_msgs_per_s"] = config.mode == LoadMode::open ? nlohmann::json(config.rate) : nlohmann::json();
  j["size"] = to_json(config.size);
  j["warmup_s"] = seconds(config.warmup);
  if (config.messages > 0) {
    j["messages"] = config.messages;
    j["duration_s"] = nullptr;
  } else {
    j["messages"] = nullptr;
    j["duration_s"] = seconds(config.duration);
  }
  j["timeout_s"] = seconds(config.timeout);
  j["time_limit_s"] = seconds(config.hard_limit());
  j["interval_s"] = seconds(config.interval);
  j["threads"] = config.threads;
  j["cpus"] = config.cpus;
  j["seed"] = config.seed;
  j["max_send_lag_s"] = seconds(config.max_send_lag);
  j["max_cpu_share"] = config.max_cpu;
  j["socket"] = {{"no_delay", config.socket.no_delay},
                 {"send_buffer_bytes", config.socket.send_buffer},
                 {"receive_buffer_bytes", config.socket.receive_buffer}};
  return j;
}

}  // namespace echolab
