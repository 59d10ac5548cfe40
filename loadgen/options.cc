#include "loadgen/options.h"

#include <algorithm>
#include <sched.h>

#include <charconv>
#include <cmath>
#include <sstream>

#include <boost/program_options.hpp>

#include "core/command_line.h"
#include "core/duration.h"
#include "core/error.h"
#include "loadgen/message.h"

namespace echolab {
namespace po = boost::program_options;

namespace {

constexpr std::uint32_t kMaxStreamPayload = 16u << 20;  // 16 MiB: far past any echo test
// Weights only matter relative to each other; bounding them keeps their running sum finite
// and every choice's share representable.
constexpr double kMinWeight = 1e-6;
constexpr double kMaxWeight = 1e6;
// The kernel caps socket buffers at net.core.[rw]mem_max anyway (and doubles the request).
constexpr std::uint64_t kMaxSocketBuffer = 1u << 30;
// More than any run within its time limit can send (10^12 at 10 M msgs/s is a day).
constexpr std::uint64_t kMaxMessages = 1'000'000'000'000;
// A per-message timeout past an hour is a mistake (and poll() takes int milliseconds).
constexpr std::chrono::hours kMaxTimeout{1};

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

std::optional<double> to_double(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::uint64_t> to_unsigned(std::string_view text) {
  text = trim(text);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::uint32_t parse_one_size(std::string_view text, std::string_view whole) {
  const auto value = to_unsigned(text);
  if (!value || *value > kMaxStreamPayload) {
    throw UsageError("bad --size '" + std::string(whole) +
                     "': expected N, MIN..MAX or SIZE:WEIGHT,... with sizes in bytes up to " +
                     std::to_string(kMaxStreamPayload));
  }
  return static_cast<std::uint32_t>(*value);
}

// The option table. Values stay strings where echolab parses them itself (durations,
// sizes), so that every error message is ours and names the option.
po::options_description describe_options(const CommandFlavour& flavour) {
  po::options_description desc(
      flavour.usage.empty()
          ? "Usage: echolab-loadgen --target ADDR [options]\n"
            "       echolab-loadgen merge A.json B.json ... --json OUT\n\n"
            "Drives an echo server with many connections and measures honest latency: the open\n"
            "mode times each message from its intended send time (no coordinated omission).\n\n"
            "Options"
          : flavour.usage);
  // clang-format off
  desc.add_options()
    ("help,h", "show this help")
    ("version", "print the version and exit")
    ("target,t", po::value<std::string>(), "HOST:PORT, [V6ADDR]:PORT or unix:/path, as echolab-server prints it")
    ("transport", po::value<std::string>(), "tcp | udp | unix-stream | unix-dgram (default: tcp, or unix-stream for unix: targets)")
    ("protocol", po::value<std::string>()->default_value("framed"), "framed (4-byte length + payload) | raw (RFC 862)")
    ("mode", po::value<std::string>()->default_value("closed"), "closed | open | connect")
    ("connections,c", po::value<std::string>()->default_value("1"), "connections (sockets for datagrams)")
    ("pipeline,d", po::value<std::string>()->default_value("1"), "messages in flight per connection (closed mode)")
    ("rate,r", po::value<std::string>(), "open mode: messages per second over all connections")
    ("size,s", po::value<std::string>()->default_value("64"), "payload bytes: N, MIN..MAX (uniform) or SIZE:WEIGHT,...; at least 16")
    ("warmup", po::value<std::string>()->default_value("1s"), "warm-up, excluded from results")
    ("duration", po::value<std::string>()->default_value("10s"), "measured time (after warm-up)")
    ("messages,n", po::value<std::string>(), "measure this many messages instead of a duration")
    ("timeout", po::value<std::string>()->default_value("2s"), "per-message (and per-connect) timeout")
    ("time-limit", po::value<std::string>(), "hard limit of the whole run (default: warm-up + duration + timeout + 5s)")
    ("interval", po::value<std::string>()->default_value("1s"), "time-series interval")
    ("threads,T", po::value<std::string>()->default_value("1"), "generator threads (epoll loops)")
    ("cpus", po::value<std::string>(), "pin thread i to the i-th CPU of this list, e.g. 2,3 or 0-3")
    ("json", po::value<std::string>(), "write the JSON result to FILE ('-': stdout)")
    ("hgrm", po::value<std::string>(), "write the latency distribution in HdrHistogram .hgrm format")
    ("hlog", po::value<std::string>(), "write one histogram per interval in HdrHistogram's interval log (.hlog) format")
    ("window-file", po::value<std::string>(),
     "when the run starts, write its measured window to FILE (JSON, CLOCK_MONOTONIC seconds), for a tool that "
     "samples the machine meanwhile and must keep out of it")
    ("quiet,q", "no summary table")
    ("no-status", "no live status line, even on a terminal")
    ("seed", po::value<std::string>()->default_value("1"), "seed of the message-size sequence")
    ("max-send-lag", po::value<std::string>()->default_value("5ms"), "p99 send lag past which the run is marked invalid")
    ("max-cpu", po::value<std::string>()->default_value("0.9"), "share of its time (0..1) a generator thread may be busy (not waiting for its next send or an echo) before the run is marked invalid")
    ("no-delay", po::value<bool>()->default_value(true), "TCP_NODELAY on client sockets")
    ("send-buffer", po::value<std::string>()->default_value("0"), "SO_SNDBUF bytes (0: kernel default)")
    ("receive-buffer", po::value<std::string>()->default_value("0"), "SO_RCVBUF bytes (0: kernel default)")
    ("source-addresses", po::value<std::string>(), "tcp to a 127.0.0.0/8 target: bind connections round robin to these "
                                                   "source addresses, a range 127.0.0.1-127.0.0.8 or a count 8 (default: "
                                                   "more than one only when the ephemeral ports would run out)");
  // clang-format on
  for (const CommandFlavour::Option& option : flavour.options) {
    desc.add_options()(option.name.c_str(), po::value<std::string>()->default_value(option.default_value),
                       option.help.c_str());
  }
  return desc;
}

template <typename T>
T get(const po::variables_map& vm, const char* name) {
  return vm[name].as<T>();
}

// Whole-number options: digits only (no sign, exponent or fraction), within [min, max].
// Boost's lexical_cast would take "-1" for an unsigned as 2^64-1.
std::uint64_t whole_option(const po::variables_map& vm, const char* name, std::uint64_t min,
                           std::uint64_t max) {
  const std::string text = get<std::string>(vm, name);
  const auto value = to_unsigned(text);
  if (!value || *value < min || *value > max) {
    throw UsageError("bad --" + std::string(name) + " '" + text + "': expected a whole number from " +
                     std::to_string(min) + " to " + std::to_string(max));
  }
  return *value;
}

int int_option(const po::variables_map& vm, const char* name, int min, int max) {
  return static_cast<int>(whole_option(vm, name, static_cast<std::uint64_t>(min),
                                       static_cast<std::uint64_t>(max)));
}

// Real-number options: finite (no nan, inf or overflow to them), within [min, max].
double real_option(const po::variables_map& vm, const char* name, double min, double max,
                   const std::string& meaning) {
  const std::string text = get<std::string>(vm, name);
  const auto value = to_double(text);
  if (!value || !(*value >= min && *value <= max)) {
    throw UsageError("bad --" + std::string(name) + " '" + text + "': " + meaning);
  }
  return *value;
}

// Run lengths: a bare number means seconds ("--duration 10").
std::chrono::nanoseconds duration_option(const po::variables_map& vm, const char* name) {
  return parse_duration(get<std::string>(vm, name), std::string("--") + name, std::chrono::hours(24 * 365),
                        BareNumber::seconds);
}

}  // namespace

SizeDistribution parse_size(std::string_view text) {
  SizeDistribution dist;
  dist.text = std::string(text);
  if (const auto dots = text.find(".."); dots != std::string_view::npos) {
    dist.kind = SizeDistribution::Kind::uniform;
    dist.min = parse_one_size(text.substr(0, dots), text);
    dist.max = parse_one_size(text.substr(dots + 2), text);
    if (dist.min > dist.max) {
      throw UsageError("bad --size '" + dist.text + "': MIN is larger than MAX");
    }
    return dist;
  }
  if (text.find(':') == std::string_view::npos && text.find(',') == std::string_view::npos) {
    dist.min = dist.max = parse_one_size(text, text);
    return dist;
  }
  dist.kind = SizeDistribution::Kind::weighted;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    SizeDistribution::Choice choice;
    const std::size_t colon = item.find(':');
    choice.size = parse_one_size(item.substr(0, colon), text);
    if (colon != std::string_view::npos) {
      const auto weight = to_double(item.substr(colon + 1));
      if (!weight || !(*weight >= kMinWeight && *weight <= kMaxWeight)) {
        throw UsageError("bad --size '" + dist.text + "': weights must be numbers from 0.000001 to 1000000");
      }
      choice.weight = *weight;
    }
    dist.choices.push_back(choice);
  }
  const auto [lo, hi] = std::minmax_element(
      dist.choices.begin(), dist.choices.end(),
      [](const auto& a, const auto& b) { return a.size < b.size; });
  dist.min = lo->size;
  dist.max = hi->size;
  return dist;
}

std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  const std::string whole(text);
  auto bad = [&whole]() {
    return UsageError("bad --cpus '" + whole + "': expected a list such as 0,2 or 1-3");
  };
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t dash = item.find('-');
    const auto first = to_unsigned(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : to_unsigned(item.substr(dash + 1));
    if (!first || !last || *first > *last) {
      throw bad();
    }
    if (*last >= CPU_SETSIZE) {
      // cpu_set_t holds CPU_SETSIZE CPUs: CPU_SET past it writes out of bounds.
      throw UsageError("bad --cpus '" + whole + "': CPU numbers go up to " +
                       std::to_string(CPU_SETSIZE - 1));
    }
    for (auto cpu = *first; cpu <= *last; ++cpu) {
      cpus.push_back(static_cast<int>(cpu));
    }
  }
  if (cpus.empty()) {
    throw bad();
  }
  return cpus;
}

void validate(LoadConfig& config) {
  auto fail = [](const std::string& line) { throw UsageError(line); };
  const bool datagram = config.is_datagram();
  if (config.target.is_unix() != is_unix(config.transport)) {
    fail("--target " + config.target_text + " does not fit --transport " +
         std::string(to_string(config.transport)) +
         (config.target.is_unix() ? ": use unix-stream or unix-dgram"
                                  : ": unix transports need a unix:/path target"));
  }
  if (config.connections < 1 || config.connections > kMaxConnections) {
    fail("--connections must be between 1 and " + std::to_string(kMaxConnections));
  }
  if (config.threads < 1 || config.threads > kMaxThreads) {
    fail("--threads must be between 1 and " + std::to_string(kMaxThreads));
  }
  if (config.threads > config.connections) {
    fail("--threads " + std::to_string(config.threads) + " is more than --connections " +
         std::to_string(config.connections) + ": every thread needs a connection of its own");
  }
  if (config.pipeline < 1 || config.pipeline > kMaxPipeline) {
    fail("--pipeline must be between 1 and " + std::to_string(kMaxPipeline));
  }
  if (config.rate != 0 && !(config.rate >= kMinRate && config.rate <= kMaxRate)) {
    fail("--rate must be from 0.001 to 100000000 messages per second: the pacer schedules in "
         "whole nanoseconds and a run lasts at most a year");
  }
  if (config.mode == LoadMode::open) {
    if (config.rate <= 0) {
      fail("--mode open needs --rate R (messages per second over all connections)");
    }
    if (config.pipeline != 1) {
      fail("--pipeline is for --mode closed: in open mode the schedule decides what is in flight");
    }
  } else if (config.rate != 0) {
    fail("--rate needs --mode open (closed and connect modes send as fast as replies come)");
  }
  if (config.mode == LoadMode::connect) {
    if (datagram) {
      fail("--mode connect needs a stream transport (tcp or unix-stream): datagrams have no connection");
    }
    if (config.pipeline != 1) {
      fail("--mode connect sends one message per connection: --pipeline does not apply");
    }
  }
  if (datagram && config.protocol == Protocol::raw && config.pipeline > 1) {
    // A raw (RFC 862) datagram server gives no framing and no ordering guarantee; with one
    // message in flight per socket a reply can only belong to that message.
    fail("--pipeline > 1 on raw datagrams is not supported: use --protocol framed, or more --connections");
  }
  if (config.source_addresses && config.transport != Transport::tcp) {
    fail("--source-addresses is for --transport tcp (it picks the IPv4 source address of each "
         "connection), not " + std::string(to_string(config.transport)));
  }
  if (config.size.min < kMessageHeaderSize) {
    fail("--size " + config.size.text + " is too small: every message carries a " +
         std::to_string(kMessageHeaderSize) + "-byte header (id, sequence number, checksum)");
  }
  const std::size_t max_wire = wire_size(config.protocol, config.size.max);
  if (datagram && max_wire > kMaxDatagram) {
    fail("--size " + config.size.text + " does not fit a datagram: at most " +
         std::to_string(kMaxDatagram - (config.protocol == Protocol::framed ? kFrameHeaderSize : 0)) +
         " payload bytes with --protocol " + std::string(to_string(config.protocol)));
  }
  if (config.messages == 0 && config.duration <= nanoseconds(0)) {
    fail("--duration must be positive");
  }
  if (config.timeout < std::chrono::milliseconds(1) || config.timeout > kMaxTimeout) {
    fail("--timeout must be from 1ms to 1h");
  }
  if (config.interval < std::chrono::milliseconds(10)) {
    fail("--interval must be at least 10ms");
  }
  if (!(config.max_cpu > 0 && config.max_cpu <= 1)) {
    fail("--max-cpu is a share of one core: between 0 and 1");
  }
  if (config.hard_limit() < config.warmup + config.timeout) {
    fail("--time-limit is shorter than --warmup plus --timeout: the run could not measure anything");
  }
  const auto intervals = config.hard_limit() / config.interval;
  if (intervals > 1'000'000) {
    fail("--interval is too short for this run: over a million intervals");
  }
}

ParsedCommand parse_command_line(const std::vector<std::string>& args, const CommandFlavour& flavour) {
  ParsedCommand command;
  const po::options_description desc = describe_options(flavour);
  po::variables_map vm;
  reject_placeholder_tokens(args);
  try {
    const po::parsed_options parsed = po::command_line_parser(args).options(desc).run();
    reject_stray_arguments(po::collect_unrecognized(parsed.options, po::include_positional));
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)");
  }
  if (vm.count("help")) {
    std::ostringstream text;
    text << desc;
    command.action = ParsedCommand::Action::help;
    command.help_text = text.str();
    return command;
  }
  if (vm.count("version")) {
    command.action = ParsedCommand::Action::version;
    return command;
  }
  if (!vm.count("target")) {
    throw UsageError("--target is required, e.g. --target 127.0.0.1:7007 (see --help)");
  }
  LoadConfig& config = command.config;
  config.target_text = get<std::string>(vm, "target");
  config.target = parse_endpoint(config.target_text);
  if (vm.count("transport")) {
    const auto transport = parse_transport(get<std::string>(vm, "transport"));
    if (!transport) {
      throw UsageError("bad --transport '" + get<std::string>(vm, "transport") +
                       "': expected tcp, udp, unix-stream or unix-dgram");
    }
    config.transport = *transport;
  } else {
    config.transport = config.target.is_unix() ? Transport::unix_stream : Transport::tcp;
  }
  const auto protocol = parse_protocol(get<std::string>(vm, "protocol"));
  if (!protocol) {
    throw UsageError("bad --protocol '" + get<std::string>(vm, "protocol") +
                     "': expected framed or raw");
  }
  if (*protocol == Protocol::sockperf) {
    // The server side only: sockperf's own client is the load generator for it.
    throw UsageError("--protocol sockperf is for echolab-server, driven by sockperf's own client "
                     "(sockperf ping-pong / under-load); echolab-loadgen speaks framed or raw");
  }
  config.protocol = *protocol;
  const std::string mode = get<std::string>(vm, "mode");
  if (mode == "closed") {
    config.mode = LoadMode::closed;
  } else if (mode == "open") {
    config.mode = LoadMode::open;
  } else if (mode == "connect") {
    config.mode = LoadMode::connect;
  } else {
    throw UsageError("bad --mode '" + mode + "': expected closed, open or connect");
  }
  config.connections = int_option(vm, "connections", 1, kMaxConnections);
  config.pipeline = int_option(vm, "pipeline", 1, kMaxPipeline);
  if (vm.count("rate")) {
    config.rate = real_option(vm, "rate", kMinRate, kMaxRate,
                              "expected messages per second from 0.001 to 100000000 (what the "
                              "pacer can schedule)");
  }
  config.size = parse_size(get<std::string>(vm, "size"));
  config.warmup = duration_option(vm, "warmup");
  config.duration = duration_option(vm, "duration");
  if (vm.count("messages")) {
    config.messages = whole_option(vm, "messages", 1, kMaxMessages);
    if (!vm["duration"].defaulted()) {
      throw UsageError("--duration and --messages both end the run: give one of them");
    }
  }
  config.timeout = duration_option(vm, "timeout");
  if (vm.count("time-limit")) {
    config.time_limit = duration_option(vm, "time-limit");
    if (config.time_limit <= nanoseconds(0)) {
      throw UsageError("--time-limit must be positive");
    }
  }
  config.interval = duration_option(vm, "interval");
  config.threads = int_option(vm, "threads", 1, kMaxThreads);
  if (vm.count("cpus")) {
    config.cpus = parse_cpu_list(get<std::string>(vm, "cpus"));
  }
  if (vm.count("json")) config.json_path = get<std::string>(vm, "json");
  if (vm.count("hgrm")) config.hgrm_path = get<std::string>(vm, "hgrm");
  if (vm.count("hlog")) config.hlog_path = get<std::string>(vm, "hlog");
  if (vm.count("window-file")) config.window_path = get<std::string>(vm, "window-file");
  config.quiet = vm.count("quiet") > 0;
  config.live_status = vm.count("no-status") == 0;
  config.seed = whole_option(vm, "seed", 0, UINT64_MAX);
  config.max_send_lag = duration_option(vm, "max-send-lag");
  config.max_cpu = real_option(vm, "max-cpu", 0, 1, "expected a share of one core, above 0 and at most 1");
  config.socket.no_delay = get<bool>(vm, "no-delay");
  config.socket.send_buffer = int_option(vm, "send-buffer", 0, static_cast<int>(kMaxSocketBuffer));
  config.socket.receive_buffer = int_option(vm, "receive-buffer", 0, static_cast<int>(kMaxSocketBuffer));
  if (vm.count("source-addresses")) {
    config.source_addresses = parse_source_addresses(get<std::string>(vm, "source-addresses"));
  }
  validate(config);
  for (const CommandFlavour::Option& option : flavour.options) {
    command.extra[option.name] = get<std::string>(vm, option.name.c_str());
  }
  return command;
}

}  // namespace echolab
