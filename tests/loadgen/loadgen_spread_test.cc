// A load spread over generators that start at an agreed time (run_load's StartAgreement,
// loadgen/spread.h), in-process and without MPI: a run starts when agreed and says how late
// it was, a refused start ends the run before it begins, and two generators side by side
// merge into one result that the schema accepts, its histograms the exact sum of theirs.
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <thread>

#include "loadgen/options.h"
#include "loadgen/run.h"
#include "loadgen/spread.h"
#include "tests/loadgen/json_schema.h"
#include "tests/loadgen/loadgen_harness.h"

namespace echolab::test {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

LoadConfig load(const std::string& target, std::vector<std::string> args) {
  args.insert(args.begin(), {"--target", target, "--warmup", "0.1s", "--duration", "0.4s", "--timeout", "1s",
                             "--quiet", "--no-status"});
  return parse_command_line(args).config;
}

double unix_seconds(system_clock::time_point when) {
  return std::chrono::duration<double>(when.time_since_epoch()).count();
}

TEST(LoadgenAgreedStart, TheRunStartsWhenAgreedAndSaysHowLate) {
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const LoadConfig config = load(server.ready().address, {"-c", "2"});
  int calls = 0;
  system_clock::time_point agreed;
  const RunResult result = run_load(config, {}, [&] {
    ++calls;
    agreed = system_clock::now() + 300ms;
    return agreed;
  });
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(result.start_late_s.has_value());
  EXPECT_GE(*result.start_late_s, 0.0);
  EXPECT_LT(*result.start_late_s, 0.1) << "woke far past the agreed start";
  // The measured window opens one warm-up after the real start.
  EXPECT_NEAR(result.start_unix_s, unix_seconds(agreed) + *result.start_late_s + 0.1, 1e-5);
  EXPECT_GT(result.tally.received, 0u);
  EXPECT_EQ(result.tally.failures_total(), 0u);
  EXPECT_DOUBLE_EQ(to_json(result)["run"]["start_late_s"].get<double>(), *result.start_late_s);
  EXPECT_FALSE(run_load(config).start_late_s.has_value()) << "a run on its own agrees with nobody";
}

TEST(LoadgenAgreedStart, ARefusedStartEndsTheRunBeforeItBegins) {
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  LoadConfig config = load(server.ready().address, {"-c", "2"});
  config.duration = 10s;
  const auto before = std::chrono::steady_clock::now();
  try {
    (void)run_load(config, {}, []() -> system_clock::time_point {
      throw std::runtime_error("rank 2 on h: cannot reach");
    });
    ADD_FAILURE() << "the run went on";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "rank 2 on h: cannot reach");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
}

TEST(LoadgenSpreadRuns, TwoGeneratorsSideBySideMergeExactlyIntoOneResultTheSchemaAccepts) {
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const LoadConfig total = load(server.ready().address, {"--mode", "open", "--rate", "400", "-c", "3"});
  const system_clock::time_point start = system_clock::now() + 300ms;
  std::vector<GeneratorResult> parts(2);
  std::vector<std::exception_ptr> errors(2);
  std::vector<std::thread> generators;
  for (int rank = 0; rank < 2; ++rank) {
    generators.emplace_back([&, rank] {
      const auto i = static_cast<std::size_t>(rank);
      try {
        parts[i] = GeneratorResult{rank, "host" + std::to_string(rank),
                                   run_load(generator_share(total, rank, 2), {}, [start] { return start; })};
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  for (std::thread& generator : generators) generator.join();
  for (const std::exception_ptr& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  Histogram expected = parts[0].result.tally.corrected;
  expected.merge(parts[1].result.tally.corrected);
  const std::uint64_t received = parts[0].result.tally.received + parts[1].result.tally.received;
  for (GeneratorResult& part : parts) part.result.config = to_json(total);
  // A loose skew limit: how punctual a loaded test machine wakes is not this test's subject.
  const RunResult merged = merge_generators(parts, total, 1s);
  EXPECT_TRUE(merged.tally.corrected == expected);
  EXPECT_EQ(merged.tally.received, received);
  EXPECT_GT(received, 0u);
  EXPECT_DOUBLE_EQ(merged.asked_msgs_per_s, 400.0);
  const nlohmann::json& ranks = merged.generators["ranks"];
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(ranks[0]["connections"], 2);
  EXPECT_EQ(ranks[1]["connections"], 1);
  EXPECT_EQ(ranks[0]["received"].get<std::uint64_t>() + ranks[1]["received"].get<std::uint64_t>(), received);
  EXPECT_GE(merged.generators["start_skew_us"].get<double>(), 0.0);
  const auto violations =
      validate_against_schema(read_json_file(source_path("results/schema/loadgen-result.schema.json")), to_json(merged));
  EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations);
}

}  // namespace
}  // namespace echolab::test
