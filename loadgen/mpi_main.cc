// echolab-loadgen-mpi: one load from many generators, one per MPI rank, launched by mpirun
// on one host or many. Every rank runs echolab-loadgen's run (loadgen/run.h) with its share
// of --connections, --rate and --messages (loadgen/spread.h); the ranks connect, start
// together at a time rank 0 picks a little ahead, and send their results to rank 0, which
// merges them exactly and writes one result.
//
// The ranks talk twice, from the main thread only (MPI_THREAD_FUNNELED):
//   1. Set-up: every rank tells rank 0 "ready" or why not (a user mistake, a target it
//      cannot reach). Rank 0 answers with an absolute start time, or with "do not start"
//      and the exit status after printing the first failure in one line, rank and host named.
//   2. Results: every rank sends rank 0 its whole result, or the error that ended its run.
// The results travel as echolab-loadgen's JSON and are merged by merge_results(), the code
// of `echolab-loadgen merge`, rather than summed count by count with MPI_Reduce: then one
// place knows how histograms, interval series, error kinds and validity merge, and the
// per-rank breakdown comes from the same data. The JSON is lossless (loadgen/result.h),
// and at most a few hundred kilobytes per rank. With --hlog, each rank's interval log
// (every tag: corrected, uncorrected, send_lag) rides in the same message as text, and
// rank 0 merges the logs as `echolab-loadgen merge A.hlog B.hlog` does (merge_log_texts),
// aligned on absolute time.
//
// Every wait on other ranks is a non-blocking collective tested against a deadline; past it
// the job is aborted (MPI_Abort ends every rank), so a stuck or lost rank never hangs a run.
// A rank that dies outright is reported by mpirun itself, which then ends the others.
#include <fcntl.h>
#include <mpi.h>
#include <sched.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/address.h"
#include "core/duration.h"
#include "core/error.h"
#include "core/fd.h"
#include "core/stop.h"
#include "echolab/version.h"
#include "loadgen/merge.h"
#include "loadgen/options.h"
#include "loadgen/report.h"
#include "loadgen/run.h"
#include "loadgen/spread.h"

#if defined(__SANITIZE_ADDRESS__)
// Open MPI's components are dlopen'd and unloaded at MPI_Finalize; what they allocate is
// reported by LeakSanitizer as leaks of an unknown module, with no frame a suppression could
// name, and turns every run's exit status into LeakSanitizer's. So this program is not
// leak-checked; the code it shares with echolab-loadgen is, by the loadgen tests.
extern "C" const char* __asan_default_options();
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

namespace {

using namespace echolab;
using std::chrono::system_clock;
using Deadline = std::chrono::steady_clock::time_point;

constexpr const char* kProgram = "echolab-loadgen-mpi";
constexpr int kUsageExit = 2;
constexpr int kSystemExit = 1;
constexpr int kRoot = 0;
// How far ahead rank 0 puts the start: time for the broadcast to reach every rank
// (microseconds on one host, well under a millisecond across a LAN), little enough not to
// leave the connections idle.
constexpr std::chrono::milliseconds kStartAhead{50};
// A start further ahead of a rank's clock than this means the hosts' clocks disagree: that
// rank would idle until then, and every start it reports would be off by as much.
constexpr std::chrono::seconds kClockDisagreement{5};
// Set-up on the slowest rank (launch, probe, connect), beyond two --timeout.
constexpr std::chrono::seconds kSetupWait{60};
// After the runs' hard limit, for the results to reach rank 0.
constexpr std::chrono::seconds kReportWait{30};

struct World {
  int rank = 0;
  int size = 1;
  std::string host;
  [[nodiscard]] bool root() const { return rank == kRoot; }
};

// Why a rank cannot go on: its exit status and its line.
struct Failure {
  int exit_code = kSystemExit;
  std::string message;
};

// Thrown from the start agreement when rank 0 said not to start (it has said why).
struct NotStarting {
  int exit_code;
};

void print_error(const std::string& message) {
  // printable(): text from a user's argument or a peer must not forge lines on the terminal.
  std::cerr << (std::string(kProgram) + ": " + printable(message) + "\n") << std::flush;
}

Failure failure_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const UsageError& e) {
    return {kUsageExit, e.what()};
  } catch (const std::bad_alloc&) {
    return {kSystemExit, "out of memory (std::bad_alloc): fewer --connections or --threads, or a smaller --size "
                         "or --pipeline, need less"};
  } catch (const std::exception& e) {
    return {kSystemExit, e.what()};
  }
}

nlohmann::json describe(const Failure& failure) {
  return {{"exit_code", failure.exit_code}, {"message", failure.message}};
}

// Ends every rank of the job, after saying why.
[[noreturn]] void abort_job(const World& world, const std::string& why) {
  print_error("rank " + std::to_string(world.rank) + " on " + world.host + ": " + why + ": aborting the job");
  MPI_Abort(MPI_COMM_WORLD, kSystemExit);
  std::_Exit(kSystemExit);  // MPI_Abort does not return; should it, this rank still ends
}

// Waits for a non-blocking collective until `deadline`, then gives up on the whole job.
void wait_for(MPI_Request& request, Deadline deadline, const World& world, const char* what) {
  for (;;) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done != 0) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      abort_job(world, std::string("the other ranks sent no ") + what +
                           " in time (a rank is stuck, or its host unreachable)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Rank 0 receives every rank's JSON text, in rank order; the others get nothing back.
std::vector<nlohmann::json> gather_json(const World& world, const nlohmann::json& mine, Deadline deadline,
                                        const char* what) {
  // Replacing bytes that are not UTF-8 (a user's argument echoed in an error, say) rather
  // than throwing: nothing may keep a rank from its part in the collective.
  const std::string text = mine.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > INT_MAX) {
    abort_job(world, std::string("its ") + what + " is past 2 GiB");
  }
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(world.root() ? static_cast<std::size_t>(world.size) : 0);
  MPI_Request request;
  MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, kRoot, MPI_COMM_WORLD, &request);
  wait_for(request, deadline, world, what);
  std::vector<int> offsets(lengths.size());
  long long total = 0;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    offsets[i] = static_cast<int>(std::min<long long>(total, INT_MAX));
    total += lengths[i];
  }
  if (total > INT_MAX) {
    abort_job(world, std::string("the ranks' ") + what + " add up past 2 GiB");
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, kRoot,
               MPI_COMM_WORLD, &request);
  wait_for(request, deadline, world, what);
  std::vector<nlohmann::json> texts;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    texts.push_back(nlohmann::json::parse(all.substr(static_cast<std::size_t>(offsets[i]),
                                                     static_cast<std::size_t>(lengths[i]))));
  }
  return texts;
}

// The lowest failing rank's failure, naming it and its host, and which other ranks failed.
std::optional<Failure> first_failure(const std::vector<nlohmann::json>& reports) {
  std::optional<Failure> first;
  std::string others;
  for (std::size_t rank = 0; rank < reports.size(); ++rank) {
    if (!reports[rank].contains("failure")) continue;
    if (first) {
      others += (others.empty() ? "" : ", ") + std::to_string(rank);
      continue;
    }
    const nlohmann::json& failure = reports[rank].at("failure");
    first = Failure{failure.at("exit_code").get<int>(),
                    "rank " + std::to_string(rank) + " on " + reports[rank].at("host").get<std::string>() + ": " +
                        failure.at("message").get<std::string>()};
  }
  if (first && !others.empty()) {
    first->message += " (" + std::string(others.find(',') == std::string::npos ? "rank " : "ranks ") + others +
                      " failed too)";
  }
  return first;
}

// The start time every rank runs from, or nullopt and the exit status when one could not
// set up (rank 0 has printed it). `mine`: this rank's own set-up failure.
struct StartDecision {
  std::optional<system_clock::time_point> start;
  int exit_code = 0;
};

StartDecision agree_on_start(const World& world, const std::optional<Failure>& mine, Deadline deadline) {
  nlohmann::json status = {{"host", world.host}};
  if (mine) status["failure"] = describe(*mine);
  const std::vector<nlohmann::json> reports = gather_json(world, status, deadline, "set-up status");
  // {start in ns since the epoch, 0 for "do not start"; the exit status then}
  std::array<std::int64_t, 2> decision{0, 0};
  if (world.root()) {
    if (const std::optional<Failure> failure = first_failure(reports)) {
      print_error(failure->message);
      decision = {0, failure->exit_code};
    } else {
      const auto start = std::chrono::time_point_cast<std::chrono::nanoseconds>(system_clock::now() + kStartAhead);
      decision = {start.time_since_epoch().count(), 0};
    }
  }
  MPI_Request request;
  MPI_Ibcast(decision.data(), static_cast<int>(decision.size()), MPI_INT64_T, kRoot, MPI_COMM_WORLD, &request);
  wait_for(request, deadline, world, "start time");
  if (decision[0] == 0) return {std::nullopt, static_cast<int>(decision[1])};
  return {system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
              std::chrono::nanoseconds(decision[0]))),
          0};
}

// `pattern` for `rank`: every "%r" replaced by it. Empty stays empty.
std::string for_rank(const std::string& pattern, int rank) {
  std::string text;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 2, "%r") == 0) {
      text += std::to_string(rank);
      ++i;
    } else {
      text += pattern[i];
    }
  }
  return text;
}

// --rank-json's (or --rank-hlog's) FILE for `rank`. Ranks on one host would write over
// each other without "%r", so it is required.
std::string rank_output(const std::string& option, const std::string& pattern, int rank) {
  if (pattern.empty()) return {};
  if (pattern.find("%r") == std::string::npos) {
    throw UsageError("--" + option + " " + pattern + " has no %r: every rank would write the same file");
  }
  return for_rank(pattern, rank);
}

// --netns: this rank's load runs in the network namespace `name` (made by `ip netns add`,
// which keeps it at /run/netns/NAME). Only the calling thread moves, before the generator
// threads exist, so they follow it; MPI's own connections, made at MPI_Init, stay where
// they were: a network namespace cannot reach the launcher's loopback, so a rank could not
// be started inside one (`ip netns exec` as a wrapper fails in MPI_Init).
void enter_network_namespace(const std::string& name) {
  if (name.empty()) return;
  if (name.find('/') != std::string::npos || name == "." || name == "..") {
    throw UsageError("--netns " + name + ": a name as `ip netns list` shows it, not a path");
  }
  const std::string path = "/run/netns/" + name;
  const Fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) {
    throw UsageError("--netns " + name + ": " + describe_errno("open " + path, errno) +
                     " (made by `ip netns add` or scripts/netns-hosts.sh create)");
  }
  if (::setns(ns.get(), CLONE_NEWNET) != 0) {
    throw UsageError("--netns " + name + ": " + describe_errno("setns", errno) + " (needs root: CAP_SYS_ADMIN)");
  }
}

CommandFlavour mpi_flavour() {
  return {"Usage: mpirun -np N [--host H1,H2,... | --hostfile FILE] echolab-loadgen-mpi --target ADDR [options]\n\n"
          "One load from N generators, one per MPI rank. --connections, --rate and --messages are\n"
          "totals, shared out over the ranks (the lowest ranks take the remainders). The ranks\n"
          "connect, start together at a time rank 0 picks, and rank 0 merges their results\n"
          "exactly (histogram counts summed, never percentiles averaged) into one result with\n"
          "a per-rank breakdown. The hosts' clocks must be synchronised (NTP, PTP).\n\n"
          "Options",
          {{"max-start-skew", "1ms",
            "a rank starting further than this from the agreed start marks the merged run invalid"},
           {"rank-json", "",
            "also write each rank's own result (its share, on its host) to FILE, %r replaced by the rank"},
           {"rank-hlog", "",
            "also write each rank's own interval log (.hlog, every tag) to FILE, %r replaced by the rank"},
           {"netns", "",
            "run each rank's load in the network namespace NAME (ip netns; %r replaced by the rank), as if "
            "on a host of its own (scripts/netns-hosts.sh makes them; needs root)"}}};
}

int run_rank(const World& world, const std::vector<std::string>& args) {
  ParsedCommand command;
  std::optional<Failure> failure;
  LoadConfig share;
  std::chrono::nanoseconds max_start_skew{};
  Outputs outputs;
  std::string rank_json;
  std::string rank_hlog;
  try {
    command = parse_command_line(args, mpi_flavour());
    if (command.action != ParsedCommand::Action::run) {
      // Every rank was given the same command line: rank 0 answers for all.
      if (world.root()) {
        std::cout << (command.action == ParsedCommand::Action::help ? command.help_text
                                                                    : version_line(kProgram) + "\n");
      }
      return 0;
    }
    max_start_skew = parse_duration(command.extra.at("max-start-skew"), "--max-start-skew", std::chrono::seconds(10));
    share = generator_share(command.config, world.rank, world.size);
    rank_json = rank_output("rank-json", command.extra.at("rank-json"), world.rank);
    rank_hlog = rank_output("rank-hlog", command.extra.at("rank-hlog"), world.rank);
    check_outputs(Outputs{rank_json, "", rank_hlog});
    // The recorder keeps every tag per interval for a log (--hlog): this rank's own is one.
    if (!rank_hlog.empty()) share.hlog_path = rank_hlog;
    // Every rank starts at the agreed moment: rank 0's window is the run's.
    if (!world.root()) share.window_path.clear();
    enter_network_namespace(for_rank(command.extra.at("netns"), world.rank));
    if (world.root()) {
      outputs = Outputs{command.config.json_path, command.config.hgrm_path, command.config.hlog_path};
      check_outputs(outputs);
      std::cerr << (std::string(kProgram) + ": " + describe_shares(command.config, world.size) + "\n") << std::flush;
    }
  } catch (...) {
    failure = failure_of(std::current_exception());
  }

  bool agreed = false;
  Deadline started{};
  std::optional<RunResult> result;
  if (!failure) {
    install_stop_handlers();
    try {
      const Deadline setup_deadline = std::chrono::steady_clock::now() + kSetupWait + 2 * share.timeout;
      result = run_load(share, {}, [&] {
        const StartDecision decision = agree_on_start(world, std::nullopt, setup_deadline);
        agreed = true;
        started = std::chrono::steady_clock::now();
        if (!decision.start) throw NotStarting{decision.exit_code};
        const auto ahead = *decision.start - system_clock::now();
        if (ahead > kStartAhead + kClockDisagreement) {
          throw std::runtime_error(
              "the start rank 0 chose is " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ahead).count()) +
              " s ahead of this host's clock: synchronise the hosts' clocks (NTP, PTP)");
        }
        return *decision.start;
      });
    } catch (const NotStarting& stop) {
      return stop.exit_code;
    } catch (...) {
      failure = failure_of(std::current_exception());
    }
  }
  if (!agreed) {
    // This rank failed before the agreement: the others learn it there, and nobody starts.
    return agree_on_start(world, failure, std::chrono::steady_clock::now() + kSetupWait).exit_code;
  }

  nlohmann::json report = {{"host", world.host}};
  // Every rank parsed the same command line: with --hlog, each sends rank 0 its log.
  const bool merging_logs = !command.config.hlog_path.empty();
  std::string own_log;
  if (!failure) {
    try {
      if (merging_logs || !rank_hlog.empty()) own_log = hlog_text(*result);
      if (!rank_json.empty()) write_output(rank_json, to_json(*result).dump(1) + "\n");
      if (!rank_hlog.empty()) write_output(rank_hlog, own_log);
    } catch (...) {
      failure = failure_of(std::current_exception());
    }
  }
  if (failure) {
    report["failure"] = describe(*failure);
  } else {
    // The whole load's configuration, as this rank parsed it: the merge then refuses ranks
    // started with other options (mpirun's MPMD form allows that), and the rank's share
    // is derived again from it.
    result->config = to_json(command.config);
    report["result"] = to_json(*result);
    if (merging_logs) report["hlog"] = std::move(own_log);
  }
  const Deadline report_deadline = started + share.hard_limit() + kReportWait;
  const std::vector<nlohmann::json> reports = gather_json(world, report, report_deadline, "results");
  if (!world.root()) {
    return failure ? failure->exit_code : 0;
  }
  if (const std::optional<Failure> first = first_failure(reports)) {
    print_error(first->message);
    return first->exit_code;
  }
  try {
    std::vector<GeneratorResult> parts;
    std::vector<LogText> logs;
    for (std::size_t rank = 0; rank < reports.size(); ++rank) {
      const std::string host = reports[rank].at("host").get<std::string>();
      parts.push_back(GeneratorResult{static_cast<int>(rank), host, result_from_json(reports[rank].at("result"))});
      if (merging_logs) {
        logs.push_back(LogText{"rank " + std::to_string(rank) + " on " + host,
                               reports[rank].at("hlog").get<std::string>()});
      }
    }
    const RunResult merged = merge_generators(std::move(parts), command.config, max_start_skew);
    // A single rank's log is already the whole (a merge takes two or more).
    std::optional<std::string> merged_log;
    if (merging_logs) merged_log = logs.size() == 1 ? logs.front().text : hlog_text(merge_log_texts(logs, false));
    emit(merged, outputs, command.config.quiet, merged_log);
  } catch (...) {
    const Failure merge_failure = failure_of(std::current_exception());
    print_error(merge_failure.message);
    return merge_failure.exit_code;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  World world;
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world.size);
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int host_length = 0;
  MPI_Get_processor_name(host, &host_length);
  world.host.assign(host, static_cast<std::size_t>(host_length));
  const int status = run_rank(world, std::vector<std::string>(argv + 1, argv + argc));
  MPI_Finalize();
  return status;
}
