// echolab-loadgen against real echo servers: every engine of echolab-server in each mode
// that applies to it, every transport, and socat in raw mode. Each run is short; what is
// asserted is correctness (every message accounted for, every byte verified), never speed.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <tuple>

#include "servers/engine.h"
#include "tests/loadgen/loadgen_harness.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

std::uint64_t at(const nlohmann::json& json, const char* section, const char* key) {
  return json.at(section).at(key).get<std::uint64_t>();
}

// A stream run against a correct server: no error of any kind, and every message sent in
// the measured window came back verified.
void expect_clean_stream_run(const LoadgenOutcome& run) {
  ASSERT_TRUE(run.status.success()) << run.describe();
  ASSERT_FALSE(run.json.is_null()) << run.describe();
  EXPECT_EQ(at(run.json, "errors", "total"), 0u) << run.json["errors"].dump();
  EXPECT_GT(at(run.json, "messages", "received"), 0u);
  EXPECT_EQ(at(run.json, "messages", "sent"), at(run.json, "messages", "received"));
  EXPECT_EQ(at(run.json, "anomalies", "mismatched_bytes"), 0u);
  EXPECT_GT(run.json["latency"]["corrected"]["count"].get<std::uint64_t>(), 0u);
}

// Datagrams may be lost on loopback under load; what must hold is that nothing arrives
// damaged or unasked for, and every message sent is either echoed or counted lost.
void expect_accounted_datagram_run(const LoadgenOutcome& run) {
  ASSERT_TRUE(run.status.success()) << run.describe();
  ASSERT_FALSE(run.json.is_null()) << run.describe();
  const auto& errors = run.json["errors"];
  EXPECT_EQ(errors["mismatched"].get<std::uint64_t>(), 0u) << errors.dump();
  EXPECT_EQ(errors["unexpected"].get<std::uint64_t>(), 0u) << errors.dump();
  EXPECT_GT(at(run.json, "messages", "received"), 0u);
  EXPECT_EQ(at(run.json, "messages", "sent"),
            at(run.json, "messages", "received") + errors["timeout"].get<std::uint64_t>() +
                errors["unfinished"].get<std::uint64_t>())
      << run.json["messages"].dump() << errors.dump();
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// "fork_connect", "unix_stream_closed": gtest names allow no dashes.
std::string case_name(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& param) {
  std::string name = std::get<0>(param.param) + "_" + std::get<1>(param.param);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

std::vector<std::string> available_engines(Serves serves) {
  return engine_names([serves](const EngineInfo& engine) { return engine.serves == serves && engine.available(); });
}

// --- every stream engine, every mode, over TCP -------------------------------------------

class StreamEngineModes : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(StreamEngineModes, EveryMessageVerified) {
  const auto& [engine, mode] = GetParam();
  TempDir dir("loadgen-engine");
  EchoServerProcess server = start_echolab_server(engine, "tcp", "framed", "127.0.0.1:0");
  // An engine serving one connection at a time: more would starve by design.
  const std::string connections = one_at_a_time(engine_info(engine)) ? "1" : (mode == "connect" ? "2" : "4");
  std::vector<std::string> args = {"--target", server.ready().address, "--mode", mode,
                                   "--connections", connections, "--size", "16..2000"};
  if (mode == "open") {
    args.insert(args.end(), {"--rate", "2000"});
  }
  const LoadgenOutcome run = run_loadgen(dir, concat(args, quick_flags()));
  expect_clean_stream_run(run);
  EXPECT_EQ(run.json["config"]["mode"], mode);
  if (mode == "open") {
    EXPECT_EQ(run.json["throughput"]["asked_msgs_per_s"].get<double>(), 2000.0);
    EXPECT_GT(run.json["latency"]["send_lag"]["count"].get<std::uint64_t>(), 0u);
  }
  EXPECT_TRUE(server.terminate(milliseconds(10'000)).has_value());
}

std::vector<std::tuple<std::string, std::string>> stream_cases() {
  std::vector<std::tuple<std::string, std::string>> cases;
  for (const std::string& engine : available_engines(Serves::streams)) {
    for (const char* mode : {"closed", "open", "connect"}) cases.emplace_back(engine, mode);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllStreamEngines, StreamEngineModes, ::testing::ValuesIn(stream_cases()),
                         case_name);

// --- every datagram engine, closed and open, over UDP ------------------------------------

class DatagramEngineModes : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(DatagramEngineModes, EveryMessageAccountedFor) {
  const auto& [engine, mode] = GetParam();
  TempDir dir("loadgen-engine");
  EchoServerProcess server = start_echolab_server(engine, "udp", "framed", "127.0.0.1:0");
  std::vector<std::string> args = {"--target", server.ready().address, "--transport", "udp",
                                   "--mode", mode, "--connections", "2", "--size", "16..1400"};
  if (mode == "open") {
    args.insert(args.end(), {"--rate", "2000"});
  } else {
    args.insert(args.end(), {"--pipeline", "2"});
  }
  expect_accounted_datagram_run(run_loadgen(dir, concat(args, quick_flags())));
  EXPECT_TRUE(server.terminate(milliseconds(10'000)).has_value());
}

std::vector<std::tuple<std::string, std::string>> datagram_cases() {
  std::vector<std::tuple<std::string, std::string>> cases;
  for (const std::string& engine : available_engines(Serves::datagrams)) {
    for (const char* mode : {"closed", "open"}) cases.emplace_back(engine, mode);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllDatagramEngines, DatagramEngineModes,
                         ::testing::ValuesIn(datagram_cases()), case_name);

// --- transports and protocols ------------------------------------------------------------

TEST(LoadgenTransports, UnixStreamFramedAndRaw) {
  TempDir dir("loadgen-unix");
  for (const char* protocol : {"framed", "raw"}) {
    EchoServerProcess server =
        start_echolab_server("select", "unix-stream", protocol, "unix:" + dir.file(std::string(protocol) + ".sock"));
    expect_clean_stream_run(run_loadgen(
        dir, concat({"--target", server.ready().address, "--protocol", protocol, "-c", "3",
                     "--pipeline", "3", "--size", "16..5000"},
                    quick_flags())));
  }
}

TEST(LoadgenTransports, UnixDatagram) {
  TempDir dir("loadgen-unix");
  EchoServerProcess server =
      start_echolab_server("iterative-udp", "unix-dgram", "framed", "unix:" + dir.file("d.sock"));
  expect_accounted_datagram_run(run_loadgen(
      dir, concat({"--target", server.ready().address, "--transport", "unix-dgram", "-c", "2"},
                  quick_flags())));
}

TEST(LoadgenTransports, Ipv6Tcp) {
  if (!ipv6_loopback_available()) {
    GTEST_SKIP() << "no IPv6 loopback in this environment";
  }
  TempDir dir("loadgen-v6");
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "[::1]:0");
  ASSERT_EQ(server.ready().address.rfind("[::1]:", 0), 0u) << server.ready().address;
  expect_clean_stream_run(
      run_loadgen(dir, concat({"--target", server.ready().address, "-c", "2"}, quick_flags())));
}

// Raw mode over a byte stream: echoes come back in arbitrary chunks, checked as they come.
TEST(LoadgenTransports, RawTcpPipelinedMixedSizesAcrossThreads) {
  TempDir dir("loadgen-raw");
  EchoServerProcess server = start_echolab_server("thread", "tcp", "raw", "127.0.0.1:0");
  const LoadgenOutcome run = run_loadgen(
      dir, concat({"--target", server.ready().address, "--protocol", "raw", "-c", "4",
                   "--threads", "2", "--cpus", "0", "--pipeline", "4", "--size", "16:4,1000:2,30000:1"},
                  quick_flags()));
  expect_clean_stream_run(run);
  EXPECT_EQ(run.json["generator"]["threads"].size(), 2u);
}

TEST(LoadgenRunLength, MessagesModeSendsExactlyThatMany) {
  TempDir dir("loadgen-messages");
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", server.ready().address, "-c", "3", "--threads", "2", "--pipeline", "2",
            "--messages", "1000", "--warmup", "0", "--quiet", "--no-status"});
  expect_clean_stream_run(run);
  EXPECT_EQ(at(run.json, "messages", "received"), 1000u);
  EXPECT_EQ(run.json["run"]["stopped_by"], "messages");
}

TEST(LoadgenOutputs, HgrmIsHdrHistogramText) {
  TempDir dir("loadgen-hgrm");
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const std::string hgrm = dir.file("latency.hgrm");
  const LoadgenOutcome run =
      run_loadgen(dir, concat({"--target", server.ready().address, "--hgrm", hgrm}, quick_flags()));
  expect_clean_stream_run(run);
  std::ifstream in(hgrm);
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  EXPECT_EQ(content.rfind("       Value     Percentile TotalCount 1/(1-Percentile)", 0), 0u) << content;
  EXPECT_NE(content.find("#[Max     ="), std::string::npos) << content;
  EXPECT_NE(content.find("Total count    ="), std::string::npos) << content;
  EXPECT_NE(content.find(std::to_string(at(run.json, "messages", "received"))), std::string::npos);
}

TEST(LoadgenOutputs, SummaryOnStdoutAndNoStatusLineWhenNotATerminal) {
  TempDir dir("loadgen-summary");
  EchoServerProcess server = start_echolab_server("thread", "tcp", "framed", "127.0.0.1:0");
  const LoadgenOutcome run = run_loadgen(
      dir, {"--target", server.ready().address, "--duration", "0.3s", "--warmup", "0"});
  ASSERT_TRUE(run.status.success()) << run.describe();
  EXPECT_NE(run.out.find("corrected"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("msgs/s"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find('\r'), std::string::npos) << "status line written to a pipe";
  EXPECT_EQ(run.err, "");
}

// --- socat: an RFC 862 echo server that is not ours --------------------------------------

class SocatRaw : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(SocatRaw, VerifiesEveryByte) {
  const auto& [transport, mode] = GetParam();
  TempDir dir("loadgen-socat");
  const auto socat = start_socat_echo(transport, dir);
  if (!socat) {
    GTEST_SKIP() << "socat is not installed (apt-get install socat)";
  }
  std::vector<std::string> args = {"--target", socat->target, "--transport", transport,
                                   "--protocol", "raw", "--mode", mode};
  if (mode == "open") {
    args.insert(args.end(), {"--rate", "500"});
  }
  if (transport == "udp") {
    // socat forks a child per datagram: slow, and one in flight is all it needs.
    expect_accounted_datagram_run(run_loadgen(dir, concat(args, quick_flags())));
  } else {
    args.insert(args.end(), {"-c", "2", "--size", "16..3000"});
    expect_clean_stream_run(run_loadgen(dir, concat(args, quick_flags())));
  }
}

INSTANTIATE_TEST_SUITE_P(Socat, SocatRaw,
                         ::testing::Values(std::make_tuple("tcp", "closed"),
                                           std::make_tuple("tcp", "connect"),
                                           std::make_tuple("tcp", "open"),
                                           std::make_tuple("unix-stream", "closed"),
                                           std::make_tuple("udp", "closed")),
                         case_name);

}  // namespace
}  // namespace echolab::test
