#include "servers/options.h"

#include <boost/program_options.hpp>
#include <iostream>
#include <limits>
#include <sstream>

#include "core/command_line.h"
#include "core/duration.h"
#include "core/error.h"

namespace po = boost::program_options;

namespace echolab {
namespace {

template <typename T>
T checked(const po::variables_map& values, const char* name, long long low, long long high) {
  const long long value = values[name].as<long long>();
  if (value < low || value > high) {
    throw UsageError(std::string("--") + name + " must be between " + std::to_string(low) + " and " +
                     std::to_string(high) + ", got " + std::to_string(value));
  }
  return static_cast<T>(value);
}


// "prefork, prethread": the names of the engines whose row satisfies `wanted`, for the help
// text and the errors.
template <typename Wanted>
std::string engines_where(Wanted wanted) {
  std::string names;
  for (const EngineInfo& engine : engines()) {
    if (wanted(engine)) {
      names += (names.empty() ? "" : ", ") + std::string(engine.name);
    }
  }
  return names;
}

// The engines whose live clients `option` bounds.
std::string engines_capped_by(std::string_view option) {
  return engines_where([option](const EngineInfo& engine) { return engine.cap_option == option; });
}

// The engines that take --accept-lock and --accept-wait.
std::string engines_offering_accept_lock() {
  return engines_where([](const EngineInfo& engine) { return engine.offers_accept_lock; });
}

}  // namespace

ServerCommandLine parse_server_command_line(int argc, const char* const* argv) {
  ServerCommandLine line;
  constexpr long long kMaxInt = std::numeric_limits<int>::max();
  po::options_description options("echolab-server: an echo server with interchangeable concurrency models");
  options.add_options()
      ("help,h", "show this help")
      ("version", "print version, git commit and build flags")
      ("list-engines", "list the engines, one per line: name, transports, pattern")
      ("json", "with --list-engines: the whole engine table as JSON")
      ("engine,e", po::value(&line.engine)->default_value(line.engine), "concurrency model (see --list-engines)")
      ("listen,l", po::value<std::string>()->default_value("127.0.0.1:7007"),
       "HOST:PORT, [IPV6]:PORT ([::]:PORT is dual stack) or unix:/path; port 0 picks a free port")
      ("transport,t", po::value<std::string>(), "tcp | udp | unix-stream | unix-dgram (default: from the engine and address)")
      ("protocol,p", po::value<std::string>()->default_value("framed"),
       "framed (4-byte big-endian length + payload) | raw (RFC 862: bytes echoed as they come) | "
       "sockperf (sockperf's own client: messages answered as sockperf's server answers them)")
      ("workers,w", po::value<long long>()->default_value(4), ("pool size of " + engines_capped_by("--workers")).c_str())
      ("batch", po::value<long long>()->default_value(32),
       "datagrams per recvmmsg/sendmmsg of udp-batch (fewer when batch x --datagram-buffer passes 64 MiB)")
      ("accept-lock", ("serialise accept() behind a lock, one worker waiting in it at a time (" +
                       engines_offering_accept_lock() + ")").c_str())
      ("accept-wait", po::value<std::string>()->default_value("accept"),
       ("how the workers of " + engines_offering_accept_lock() +
        " wait for a connection: accept (blocked in accept()) | poll (poll() the listener, then accept)")
           .c_str())
      ("max-children", po::value<long long>()->default_value(64),
       ("live children of " + engines_capped_by("--max-children") + "; more wait in the backlog").c_str())
      ("max-threads", po::value<long long>()->default_value(64),
       ("live threads of " + engines_capped_by("--max-threads") + "; more wait in the backlog").c_str())
      ("work", po::value<std::string>()->default_value("none"), "service cost per message: none | cpu:50us | sleep:2ms")
      ("max-frame", po::value<long long>()->default_value(kDefaultMaxFrame), "largest frame payload, bytes; bigger closes the connection")
      ("output-cap", po::value<long long>()->default_value(256 * 1024), "echo bytes held per connection before it stops reading")
      ("datagram-buffer", po::value<long long>()->default_value(kMaxDatagram), "receive buffer for datagrams; bigger ones are truncated and dropped")
      ("sndbuf", po::value<long long>()->default_value(0), "SO_SNDBUF bytes (0: kernel default)")
      ("rcvbuf", po::value<long long>()->default_value(0), "SO_RCVBUF bytes (0: kernel default)")
      ("backlog", po::value<long long>()->default_value(1024), "listen() backlog")
      ("idle-timeout", po::value<std::string>()->default_value("0"),
       "close a stream connection that completes no message for this long (e.g. 10s, 500ms; 0: never)")
      ("no-nodelay", "leave Nagle's algorithm on (TCP_NODELAY is on by default)")
      ("no-reuseaddr", "do not set SO_REUSEADDR")
      ("stats-json", po::value(&line.stats_json), "write the server's counters to FILE at exit ('-': stdout)")
      ("verbose,v", po::bool_switch(&line.verbose), "log each accepted connection's peer on stderr");
  reject_placeholder_tokens(argc, argv);
  po::variables_map values;
  try {
    const po::parsed_options parsed = po::command_line_parser(argc, argv).options(options).run();
    reject_stray_arguments(po::collect_unrecognized(parsed.options, po::include_positional));
    po::store(parsed, values);
    po::notify(values);
  } catch (const po::error& error) {
    throw UsageError(error.what());
  }
  if (values.count("help")) {
    std::ostringstream text;
    text << options << '\n';
    line.action = ServerCommandLine::Action::help;
    line.help_text = text.str();
    return line;
  }
  if (values.count("version")) {
    line.action = ServerCommandLine::Action::version;
    return line;
  }
  if (values.count("list-engines")) {
    line.action = ServerCommandLine::Action::list_engines;
    line.json = values.count("json") != 0;
    return line;
  }
  if (values.count("json")) {
    throw UsageError("--json goes with --list-engines (the counters file is --stats-json)");
  }
  const EngineInfo* engine = find_engine(line.engine);
  if (engine == nullptr) {
    throw UsageError("unknown engine '" + line.engine + "' (see --list-engines)");
  }
  ServerConfig& config = line.config;
  config.listen = parse_endpoint(values["listen"].as<std::string>());
  if (values.count("transport")) {
    const auto transport = parse_transport(values["transport"].as<std::string>());
    if (!transport) {
      throw UsageError("unknown transport '" + values["transport"].as<std::string>() +
                       "': tcp, udp, unix-stream or unix-dgram");
    }
    config.transport = *transport;
  } else {
    const bool streams = engine->serves == Serves::streams;
    config.transport = config.listen.is_unix() ? (streams ? Transport::unix_stream : Transport::unix_dgram)
                                               : (streams ? Transport::tcp : Transport::udp);
  }
  if (!serves_transport(*engine, config.transport)) {
    throw UsageError("engine " + line.engine + " cannot serve " + std::string(to_string(config.transport)) +
                     ": it serves " + transport_list(*engine));
  }
  if (!engine->available()) {
    throw UsageError(unavailable_reason(*engine));
  }
  const auto protocol = parse_protocol(values["protocol"].as<std::string>());
  if (!protocol) {
    throw UsageError("unknown protocol '" + values["protocol"].as<std::string>() + "': framed, raw or sockperf");
  }
  config.protocol.protocol = *protocol;
  config.protocol.work = parse_work(values["work"].as<std::string>());
  config.protocol.max_frame = checked<std::uint32_t>(values, "max-frame", 0, 0x7FFFFFFF);
  config.protocol.output_cap = checked<std::size_t>(values, "output-cap", 1, kMaxInt);
  config.protocol.datagram_buffer = checked<std::size_t>(values, "datagram-buffer", 1, 16 * 1024 * 1024);
  config.workers = checked<int>(values, "workers", 1, ServerStats::kMaxWorkers);
  config.batch = checked<int>(values, "batch", 1, 1024);
  config.accept_lock = values.count("accept-lock") != 0;
  if (config.accept_lock && !engine->offers_accept_lock) {
    throw UsageError("--accept-lock applies only to " + engines_offering_accept_lock() + ", not to engine " +
                     line.engine);
  }
  const std::string accept_wait = values["accept-wait"].as<std::string>();
  if (accept_wait != "accept" && accept_wait != "poll") {
    throw UsageError("unknown --accept-wait '" + accept_wait + "': accept or poll");
  }
  config.accept_wait = accept_wait == "poll" ? AcceptWait::poll : AcceptWait::accept;
  if (!values["accept-wait"].defaulted() && !engine->offers_accept_lock) {
    throw UsageError("--accept-wait applies only to " + engines_offering_accept_lock() + ", not to engine " +
                     line.engine);
  }
  config.max_children = checked<int>(values, "max-children", 1, 1'000'000);
  config.max_threads = checked<int>(values, "max-threads", 1, 1'000'000);
  config.socket.send_buffer = checked<int>(values, "sndbuf", 0, kMaxInt);
  config.socket.receive_buffer = checked<int>(values, "rcvbuf", 0, kMaxInt);
  config.socket.backlog = checked<int>(values, "backlog", 1, kMaxInt);
  const std::string idle = values["idle-timeout"].as<std::string>();
  config.idle_timeout = idle == "0" ? std::chrono::milliseconds(0)
                                    : std::chrono::ceil<std::chrono::milliseconds>(parse_duration(idle, "--idle-timeout"));
  config.socket.no_delay = values.count("no-nodelay") == 0;
  config.socket.reuse_address = values.count("no-reuseaddr") == 0;
  return line;
}

}  // namespace echolab
