// echolab-server: one echo server, many concurrency models (--engine). Prints one ready line
// once listening, serves until SIGINT/SIGTERM, then writes its counters (--stats-json).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/io.h"
#include "core/stop.h"
#include "echolab/version.h"
#include "servers/connection.h"
#include "servers/engine.h"
#include "servers/options.h"

using namespace echolab;

namespace {

void print_engines() {
  for (const EngineInfo& engine : engines()) {
    std::cout << engine.name << std::string(16 - std::min<std::size_t>(15, engine.name.size()), ' ')
              << (engine.serves == Serves::streams ? "[tcp, unix-stream] " : "[udp, unix-dgram]  ")
              << engine.description << (engine.available() ? "" : " (not available here)") << '\n';
  }
}

void write_stats(const ServerCommandLine& line, const std::string& address, const ServerStats& stats) {
  nlohmann::json report = stats.to_json();
  report["engine"] = line.engine;
  report["transport"] = to_string(line.config.transport);
  report["protocol"] = to_string(line.config.protocol.protocol);
  report["listen"] = address;
  report["pool_size"] = line.config.workers;  // "workers" is the per-worker spread
  report["work"] = to_string(line.config.protocol.work);
  report["max_frame_bytes"] = line.config.protocol.max_frame;
  report["echolab_version"] = kVersion;
  report["git_commit"] = kGitCommit;
  if (line.stats_json == "-") {
    std::cout << report.dump(2) << std::endl;
    return;
  }
  std::ofstream out(line.stats_json);
  out << report.dump(2) << '\n';
  if (!out) {
    throw sys_error("write " + line.stats_json);
  }
}

int serve(const ServerCommandLine& line) {
  const EngineInfo& engine = *find_engine(line.engine);
  ignore_sigpipe();
  install_stop_handlers();
  reserve_spare_fd();
  set_connection_logging(line.verbose);
  if (line.config.protocol.work.kind == WorkSpec::Kind::cpu) {
    calibrate_cpu_work();
  }
  SharedStats stats;
  Listener listener = open_listener(line.config.listen, line.config.transport, line.config.socket);
  watch_for_stop(StopSlot::listener, listener.fd());
  std::printf("echolab-server listening %s %s\n", std::string(to_string(line.config.transport)).c_str(),
              listener.address().c_str());
  std::fflush(stdout);  // before any fork: children must not inherit unflushed output
  EngineContext context{line.config, listener.fd(), stats.get()};
  engine.run(context);
  watch_for_stop(StopSlot::listener, -1);
  if (!line.stats_json.empty()) {
    write_stats(line, listener.address(), stats.get());
  }
  return engine_failed() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const ServerCommandLine line = parse_server_command_line(argc, argv);
    switch (line.action) {
      case ServerCommandLine::Action::help:
        std::cout << line.help_text;
        return 0;
      case ServerCommandLine::Action::version:
        std::cout << "echolab-server " << kVersion << " (commit " << kGitCommit << "; " << kCompiler << "; "
                  << kBuildFlags << ")\n";
        return 0;
      case ServerCommandLine::Action::list_engines:
        print_engines();
        return 0;
      case ServerCommandLine::Action::serve:
        break;
    }
    return serve(line);
  } catch (const UsageError& error) {
    std::cerr << "echolab-server: " << error.what() << '\n';
    return 2;
  } catch (const std::system_error& error) {
    std::cerr << "echolab-server: " << error.what() << '\n';
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "echolab-server: " << error.what() << '\n';
    return 1;
  }
}
