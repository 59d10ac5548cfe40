#include "loadgen/environment.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "echolab/version.h"

namespace echolab {
namespace {

// The value of the first "key : value" line of /proc/cpuinfo.
std::string cpuinfo_value(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      const std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        return value;
      }
    }
  }
  return {};
}

std::string first_word(const std::string& text) {
  std::istringstream in(text);
  std::string word;
  in >> word;
  return word;
}

}  // namespace

std::string format_utc(std::chrono::system_clock::time_point when) {
  const auto since_epoch = when.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t t = seconds.count();
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof(text) - n, ".%03dZ", static_cast<int>(millis));
  return text;
}

nlohmann::json collect_context() {
  nlohmann::json j;
  j["date_utc"] = format_utc(std::chrono::system_clock::now());
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) {
    j["host_name"] = host;
  }
  char exe[PATH_MAX] = {};
  if (const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1); n > 0) {
    j["executable"] = std::string(exe, static_cast<std::size_t>(n));
  }
  j["num_cpus"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (const std::string model = cpuinfo_value("model name"); !model.empty()) {
    j["cpu_model"] = model;
  }
  if (const std::string mhz = cpuinfo_value("cpu MHz"); !mhz.empty()) {
    j["mhz_per_cpu"] = static_cast<long>(std::lround(std::strtod(mhz.c_str(), nullptr)));
  }
  utsname names{};
  if (::uname(&names) == 0) {
    j["kernel"] = std::string(names.sysname) + " " + names.release;
    j["kernel_version"] = names.version;
    j["machine"] = names.machine;
  }
  std::ifstream loadavg("/proc/loadavg");
  double one = 0;
  double five = 0;
  double fifteen = 0;
  if (loadavg >> one >> five >> fifteen) {
    j["load_avg"] = {one, five, fifteen};
  }
  j["echolab_version"] = kVersion;
  j["git_commit"] = kGitCommit;
  j["compiler"] = kCompiler;
  j["build_flags"] = kBuildFlags;
  const std::string build_type = first_word(kBuildFlags);
  // kBuildFlags starts with CMAKE_BUILD_TYPE, which may be empty.
  const bool named = !build_type.empty() && build_type[0] != '-' &&
                     build_type.find('=') == std::string::npos;
  j["build_type"] = named ? build_type : "unspecified";
#ifdef NDEBUG
  j["library_build_type"] = "release";
#else
  j["library_build_type"] = "debug";
#endif
  return j;
}

}  // namespace echolab
