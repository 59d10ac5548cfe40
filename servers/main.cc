// echolab-server: one echo server, many concurrency models (--engine). Prints one ready line
// once listening, serves until SIGINT/SIGTERM, then writes its counters (--stats-json).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/address.h"
#include "core/error.h"
#include "core/io.h"
#include "core/stop.h"
#include "echolab/version.h"
#include "servers/connection.h"
#include "servers/engine.h"
#include "servers/options.h"

using namespace echolab;

namespace {

nlohmann::json engine_table() {
  nlohmann::json table = nlohmann::json::array();
  for (const EngineInfo& engine : engines()) {
    nlohmann::json transports = nlohmann::json::array();
    for (Transport transport : served_transports(engine)) {
      transports.push_back(to_string(transport));
    }
    table.push_back({{"name", engine.name},
                     {"pattern", engine.pattern},
                     {"concurrency_source", engine.concurrency_source},
                     {"costs", engine.costs},
                     {"serves", engine.serves == Serves::streams ? "streams" : "datagrams"},
                     {"transports", transports},
                     {"concurrency", to_string(engine.concurrency)},
                     {"cap_option", engine.cap_option.empty() ? nlohmann::json(nullptr) : nlohmann::json(engine.cap_option)},
                     {"connections_in_children", engine.connections_in_children},
                     {"descriptors_below", engine.descriptors.below < 0 ? nlohmann::json(nullptr)
                                                                        : nlohmann::json(engine.descriptors.below)},
                     {"reuse_port_listener", engine.reuse_port_listener},
                     {"offers_accept_lock", engine.offers_accept_lock},
                     {"socket_io_through_libc", engine.socket_io_through_libc},
                     {"available", engine.available()}});
  }
  return table;
}

void print_engines(bool json) {
  if (json) {
    std::cout << engine_table().dump(2) << '\n';
    return;
  }
  for (const EngineInfo& engine : engines()) {
    const std::string transports = "[" + transport_list(engine) + "] ";
    std::cout << engine.name << std::string(16 - std::min<std::size_t>(15, engine.name.size()), ' ') << transports
              << std::string(20 - std::min<std::size_t>(19, transports.size()), ' ') << engine.pattern
              << (engine.available() ? "" : " (not available here)") << '\n';
  }
}

// An engine that can watch descriptors only up to a limit (select: FD_SETSIZE) cannot serve at
// all when its own listener or wake pipe is past it: refused before the ready line, so that a
// caller never sees a server announce itself and then fail.
void require_watchable(const EngineInfo& engine, int fd, const char* what) {
  const DescriptorLimit& limit = engine.descriptors;
  if (limit.below >= 0 && fd >= limit.below) {
    throw std::runtime_error("engine " + std::string(engine.name) + " can only watch descriptors below " +
                             std::string(limit.name) + " (" + std::to_string(limit.below) + "), but its " + what +
                             " is descriptor " + std::to_string(fd) + "; start it with fewer open descriptors");
  }
}

// Where --stats-json goes. A missing or regular file is replaced whole at exit (written
// beside it, then renamed), so a reader never sees half a report; anything else there (a
// FIFO, /dev/stdout, a symlink) is written in place, since renaming would replace it.
struct StatsTarget {
  std::string path;  // empty: no stats; "-": stdout
  bool replace = false;

  [[nodiscard]] std::string temporary() const { return path + ".tmp." + std::to_string(::getpid()); }
};

// Checked before serving: a benchmark must not run to its end only to lose its counters.
StatsTarget check_stats_target(const std::string& path) {
  StatsTarget target{path, false};
  if (path.empty() || path == "-") {
    return target;
  }
  const auto refuse = [&path](const std::string& why) {
    return UsageError("--stats-json " + path + ": " + why);
  };
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
    if (S_ISDIR(info.st_mode)) {
      throw refuse("is a directory");
    }
    if (::access(path.c_str(), W_OK) != 0) {
      throw refuse(std::string("cannot write (") + std::strerror(errno) + ")");
    }
    return target;
  }
  target.replace = true;
  // Creating (and removing) the temporary file tests what the end will need: the directory
  // exists, this user may add an entry to it, and its file system is writable.
  const std::string probe = target.temporary();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    throw refuse(std::string("cannot create a file beside it (") + std::strerror(errno) + ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return target;
}

void write_stats(const ServerCommandLine& line, const StatsTarget& target, const std::string& address,
                 const ServerStats& stats) {
  const EngineInfo* engine = find_engine(line.engine);
  nlohmann::json report = stats.to_json(engine != nullptr && engine->offers_accept_lock
                                            ? ServerStats::Herd::counted
                                            : ServerStats::Herd::not_counted);
  report["engine"] = line.engine;
  report["transport"] = to_string(line.config.transport);
  report["protocol"] = to_string(line.config.protocol.protocol);
  report["listen"] = address;
  report["pool_size"] = line.config.workers;  // "workers" is the per-worker spread
  report["accept_lock"] = line.config.accept_lock;
  report["accept_wait"] = line.config.accept_wait == AcceptWait::poll ? "poll" : "accept";
  report["work"] = to_string(line.config.protocol.work);
  report["max_frame_bytes"] = line.config.protocol.max_frame;
  report["echolab_version"] = kVersion;
  report["git_commit"] = kGitCommit;
  if (target.path == "-") {
    std::cout << report.dump(2) << std::endl;
    return;
  }
  const std::string written = target.replace ? target.temporary() : target.path;
  std::ofstream out(written);
  out << report.dump(2) << '\n';
  out.close();
  if (!out) {
    const int err = errno != 0 ? errno : EIO;
    if (target.replace) {
      ::unlink(written.c_str());
    }
    throw sys_error("write " + written, err);
  }
  if (target.replace && ::rename(written.c_str(), target.path.c_str()) != 0) {
    const int err = errno;
    ::unlink(written.c_str());
    throw sys_error("rename " + written + " to " + target.path, err);
  }
}

int serve(const ServerCommandLine& line) {
  const EngineInfo& engine = *find_engine(line.engine);
  const StatsTarget stats_target = check_stats_target(line.stats_json);
  ignore_sigpipe();
  install_stop_handlers();
  reserve_spare_fd();
  set_connection_logging(line.verbose);
  if (line.config.protocol.work.kind == WorkSpec::Kind::cpu) {
    calibrate_cpu_work();
  }
  SharedStats stats;
  SocketOptions listen_options = line.config.socket;
  listen_options.reuse_port = engine.reuse_port_listener;
  Listener listener = open_listener(line.config.listen, line.config.transport, listen_options);
  require_watchable(engine, listener.fd(), "listening socket");
  require_watchable(engine, wake_fd(), "stop wake-up pipe");
  watch_for_stop(StopSlot::listener, listener.fd());
  std::once_flag announced;
  const auto announce_ready = [&] {
    std::call_once(announced, [&] {
    std::printf("echolab-server listening %s %s\n", std::string(to_string(line.config.transport)).c_str(),
                listener.address().c_str());
    std::fflush(stdout);  // before any fork: children must not inherit unflushed output
    });
  };
  EngineContext context{line.config, listener.fd(), stats.get(), announce_ready};
  engine.run(context);
  watch_for_stop(StopSlot::listener, -1);
  if (!stats_target.path.empty()) {
    write_stats(line, stats_target, listener.address(), stats.get());
  }
  return engine_failed() ? 1 : 0;
}

// One write per error line: std::cerr is unbuffered, and a line written in pieces can be
// read half-written by whoever watches stderr.
void print_error_line(std::string_view what) {
  std::cerr << ("echolab-server: " + printable(what) + "\n") << std::flush;
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
        std::cout << version_line("echolab-server") << '\n';
        return 0;
      case ServerCommandLine::Action::list_engines:
        print_engines(line.json);
        return 0;
      case ServerCommandLine::Action::serve:
        break;
    }
    return serve(line);
  } catch (const UsageError& error) {
    print_error_line(error.what());
    return 2;
  } catch (const std::system_error& error) {
    print_error_line(error.what());
    return 2;
  } catch (const std::exception& error) {
    print_error_line(error.what());
    return 1;
  }
}
