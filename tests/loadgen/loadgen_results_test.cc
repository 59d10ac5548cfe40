// The JSON results of real runs against results/schema/loadgen-result.schema.json, and the
// merge of results from generators that ran side by side: counts add, histograms merge
// exactly, mismatched configurations are refused in one line.
#include <gtest/gtest.h>

#include <time.h>

#include <filesystem>
#include <fstream>

#include "loadgen/histogram.h"
#include "tests/loadgen/json_schema.h"
#include "tests/loadgen/loadgen_harness.h"

namespace echolab::test {
namespace {

const char* kSchema = "results/schema/loadgen-result.schema.json";

nlohmann::json schema() { return read_json_file(source_path(kSchema)); }

void expect_valid(const nlohmann::json& result) {
  const auto errors = validate_against_schema(schema(), result);
  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(LoadgenSchema, TheValidatorRejectsWhatTheSchemaForbids) {
  nlohmann::json bad = {{"schema", "something else"}};
  EXPECT_FALSE(validate_against_schema(schema(), bad).empty());
}

class LoadgenResults : public ::testing::Test {
 protected:
  TempDir dir_{"loadgen-results"};
};

TEST_F(LoadgenResults, RealOutputOfEveryModeMatchesTheSchema) {
  EchoServerProcess tcp = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  EchoServerProcess udp = start_echolab_server("udp-pool", "udp", "framed", "127.0.0.1:0");
  const std::vector<std::vector<std::string>> runs = {
      {"--target", tcp.ready().address},
      {"--target", tcp.ready().address, "--mode", "open", "--rate", "1000", "-c", "2",
       "--size", "16:3,100:1"},
      {"--target", tcp.ready().address, "--mode", "connect", "--size", "16..200"},
      {"--target", udp.ready().address, "--transport", "udp", "--pipeline", "2"},
  };
  for (const auto& args : runs) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const LoadgenOutcome run = run_loadgen(dir_, concat(args, quick_flags("0.3s")));
    ASSERT_TRUE(run.status.success()) << run.describe();
    expect_valid(run.json);
  }
}

// Sends 25 µs apart are polled for, not slept for: the thread holds its core whatever it
// does. Its busy time is recorded beside its CPU time, and --max-cpu judges the busy time
// alone (judged by CPU time, this run would be invalid on any quiet machine).
TEST_F(LoadgenResults, OpenLoopRecordsBusyBesideCpuAndMaxCpuJudgesBusy) {
  EchoServerProcess tcp = start_echolab_server("epoll", "tcp", "framed", "127.0.0.1:0");
  const LoadgenOutcome run = run_loadgen(
      dir_, concat({"--target", tcp.ready().address, "--mode", "open", "--rate", "40000", "-c", "4"},
                   quick_flags("0.3s")));
  ASSERT_FALSE(run.json.is_null()) << run.describe();
  expect_valid(run.json);
  const nlohmann::json& thread = run.json.at("generator").at("threads").at(0);
  EXPECT_LE(thread.at("busy_s").get<double>(), thread.at("wall_s").get<double>());
  EXPECT_GT(thread.at("largest_burst_msgs").get<std::uint64_t>(), 0u);
  bool judged_busy = false;
  for (const auto& reason : run.json.at("invalid_reasons")) {
    judged_busy |= reason.get<std::string>().find("generator thread 0 was busy") != std::string::npos;
  }
  EXPECT_EQ(judged_busy, thread.at("busy_share").get<double>() > 0.9) << run.json.at("invalid_reasons").dump()
                                                                       << " " << thread.dump();
}

double monotonic_s() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// --window-file: the measured window, on the clock a sampling tool reads, inside the run and
// as long as it was asked to be; a run bounded by a message count has no known end.
TEST_F(LoadgenResults, TheWindowFileHoldsTheMeasuredWindowOnTheMonotonicClock) {
  EchoServerProcess tcp = start_echolab_server("epoll", "tcp", "framed", "127.0.0.1:0");
  const std::string window_path = dir_.file("window.json");
  const double before = monotonic_s();
  const LoadgenOutcome run = run_loadgen(
      dir_, {"--target", tcp.ready().address, "--warmup", "0.2s", "--duration", "0.4s", "--timeout", "1s",
             "--quiet", "--no-status", "--window-file", window_path});
  const double after = monotonic_s();
  ASSERT_TRUE(run.status.success()) << run.describe();
  const nlohmann::json window = read_json_file(window_path);
  EXPECT_EQ(window.at("clock"), "CLOCK_MONOTONIC");
  const double start = window.at("start_s").get<double>();
  const double measure_start = window.at("measure_start_s").get<double>();
  const double send_end = window.at("send_end_s").get<double>();
  EXPECT_GT(start, before);
  EXPECT_NEAR(measure_start - start, 0.2, 1e-6);
  EXPECT_NEAR(send_end - measure_start, 0.4, 1e-6);
  EXPECT_LT(send_end, after);
  EXPECT_FALSE(std::filesystem::exists(window_path + ".tmp"));

  const LoadgenOutcome counted = run_loadgen(
      dir_, {"--target", tcp.ready().address, "--warmup", "0", "--messages", "200", "--timeout", "1s",
             "--quiet", "--no-status", "--window-file", window_path});
  ASSERT_TRUE(counted.status.success()) << counted.describe();
  EXPECT_TRUE(read_json_file(window_path).at("send_end_s").is_null());
}

// The real validator too, where Debian's python3-jsonschema is installed.
TEST_F(LoadgenResults, Python3JsonschemaAgrees) {
  const std::string python = "/usr/bin/python3";
  const CompletedProcess probe = run_process({python, "-c", "import jsonschema"}, milliseconds(20'000));
  if (!probe.status.success()) {
    GTEST_SKIP() << "python3-jsonschema is not installed (apt-get install python3-jsonschema)";
  }
  EchoServerProcess tcp = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const std::string result = dir_.file("open.json");
  const LoadgenOutcome run = run_loadgen(
      dir_, concat({"--target", tcp.ready().address, "--mode", "open", "--rate", "500", "--json", result},
                   quick_flags()));
  ASSERT_TRUE(run.status.success()) << run.describe();
  const CompletedProcess check = run_process(
      {python, "-c",
       "import json, sys, jsonschema\n"
       "schema = json.load(open(sys.argv[1]))\n"
       "jsonschema.Draft202012Validator.check_schema(schema)\n"
       "jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))\n",
       source_path(kSchema), result},
      milliseconds(30'000));
  EXPECT_TRUE(check.status.success()) << check.err;
}

TEST_F(LoadgenResults, MergeOfSimultaneousRunsIsExact) {
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const std::string a = dir_.file("a.json");
  const std::string b = dir_.file("b.json");
  const std::string merged_path = dir_.file("merged.json");
  const std::string hgrm = dir_.file("merged.hgrm");
  auto command = [&](const std::string& out, const std::string& threads) {
    return concat({loadgen_binary(), "--target", server.ready().address, "-c", "2", "--threads",
                   threads, "--json", out},
                  quick_flags("0.5s"));
  };
  {
    // Side by side, as two generators spreading one load.
    Process first(command(a, "1"));
    Process second(command(b, "2"));
    for (Process* p : {&first, &second}) {
      const auto status = p->wait_for_exit(kLoadgenDeadline);
      ASSERT_TRUE(status && status->success()) << p->stderr_text();
    }
  }
  const LoadgenOutcome merge =
      run_loadgen(dir_, {"merge", a, b, "--json", merged_path, "--hgrm", hgrm, "--quiet"});
  ASSERT_TRUE(merge.status.success()) << merge.describe();
  const nlohmann::json ja = read_json_file(a);
  const nlohmann::json jb = read_json_file(b);
  const nlohmann::json merged = read_json_file(merged_path);
  expect_valid(merged);
  for (const char* key : {"sent", "received", "bytes_received"}) {
    EXPECT_EQ(merged["messages"][key].get<std::uint64_t>(),
              ja["messages"][key].get<std::uint64_t>() + jb["messages"][key].get<std::uint64_t>())
        << key;
  }
  EXPECT_EQ(merged["errors"]["total"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(merged["run"]["sources"].size(), 2u);
  EXPECT_EQ(merged["generator"]["threads"].size(), 3u);
  EXPECT_DOUBLE_EQ(merged["throughput"]["msgs_per_s"].get<double>(),
                   ja["throughput"]["msgs_per_s"].get<double>() + jb["throughput"]["msgs_per_s"].get<double>());
  // Exact: the merged histogram equals the two parts merged bucket by bucket.
  for (const char* which : {"corrected", "uncorrected"}) {
    Histogram expected = Histogram::from_json(ja["histograms"][which]);
    expected.merge(Histogram::from_json(jb["histograms"][which]));
    EXPECT_TRUE(Histogram::from_json(merged["histograms"][which]) == expected) << which;
    EXPECT_EQ(merged["latency"][which]["p99_us"].get<double>(),
              static_cast<double>(std::min(expected.value_at_percentile(99), expected.max())) / 1000.0);
  }
  std::ifstream in(hgrm);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "       Value     Percentile TotalCount 1/(1-Percentile)");
}

TEST_F(LoadgenResults, MergeRefusesDifferentConfigurationsInOneLine) {
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const std::string a = dir_.file("a.json");
  const std::string b = dir_.file("b.json");
  ASSERT_TRUE(run_loadgen(dir_, concat({"--target", server.ready().address, "--json", a}, quick_flags()))
                  .status.success());
  ASSERT_TRUE(run_loadgen(dir_, concat({"--target", server.ready().address, "--json", b, "--size", "100"},
                                       quick_flags()))
                  .status.success());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"merge", a, b, "--json", "-"},
           {"merge", a, "--json", "-"},
           {"merge", a, dir_.file("missing.json"), "--json", "-"}}) {
    const LoadgenOutcome merge = run_loadgen(dir_, args);
    EXPECT_EQ(merge.status.code, 2) << merge.describe();
    EXPECT_EQ(split_lines(merge.err).size(), 1u) << merge.describe();
    EXPECT_EQ(merge.out, "");
  }
}

}  // namespace
}  // namespace echolab::test
