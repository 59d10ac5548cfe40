#include "tests/support/echo_server.h"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace echolab::test {

std::optional<ReadyLine> parse_ready_line(std::string_view line) {
  constexpr std::string_view prefix = "echolab-server listening ";
  if (!line.starts_with(prefix)) {
    return std::nullopt;
  }
  line.remove_prefix(prefix.size());
  const auto space = line.find(' ');
  if (space == 0 || space == line.npos || space + 1 == line.size() ||
      line.find_first_of(" \t\r\n", space + 1) != line.npos) {
    return std::nullopt;
  }
  return ReadyLine{std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
}

EchoServerProcess::EchoServerProcess(std::string binary, std::vector<std::string> args,
                                     milliseconds ready_timeout, const SpawnOptions& options)
    : process_(
          [&] {
            args.insert(args.begin(), std::move(binary));
            return std::move(args);
          }(),
          options) {
  if (!process_.wait_for_stdout_line(ready_timeout)) {
    throw std::runtime_error("no ready line within " + std::to_string(ready_timeout.count()) +
                             " ms: " + describe());
  }
  const auto out = process_.stdout_text();
  const auto ready = parse_ready_line(std::string_view(out).substr(0, out.find('\n')));
  if (!ready) {
    throw std::runtime_error("malformed ready line: " + describe());
  }
  ready_ = *ready;
}

int EchoServerProcess::port() const {
  const auto colon = ready_.address.rfind(':');
  return colon == std::string::npos ? 0 : std::stoi(ready_.address.substr(colon + 1));
}

std::optional<ExitStatus> EchoServerProcess::terminate(milliseconds timeout) {
  process_.send_signal(SIGTERM);
  return process_.wait_for_exit(timeout);
}

std::string EchoServerProcess::describe() {
  return "[" + process_.command_line() + "] stdout: '" + process_.stdout_text() + "' stderr: '" +
         process_.stderr_text() + "'";
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    throw std::runtime_error("cannot open " + path);
  }
  std::stringstream text;
  text << file.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(path + ": invalid JSON (" + error.what() + "): " + text.str());
  }
}

}  // namespace echolab::test
