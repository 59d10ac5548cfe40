// Raw mode (RFC 862) against a client that is not ours: socat. Stream engines over TCP and
// unix-stream get a 256 KiB binary stream, datagram engines over UDP single datagrams; what
// socat prints must be exactly what it was fed.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <tuple>

#include "tests/support/engine_cases.h"
#include "tests/support/server_under_test.h"
#include "tests/support/payload.h"
#include "tests/support/process.h"

namespace echolab::test {
namespace {

SpawnOptions stdin_from(const std::string& path) {
  SpawnOptions options;
  options.stdin_path = path;
  return options;
}

using std::chrono::milliseconds;

constexpr milliseconds kSocatDeadline{30'000};

std::string random_text(std::size_t size, std::uint64_t seed) {
  std::string text(size, '\0');
  FastRandom random(seed);
  random.fill(std::as_writable_bytes(std::span(text)));
  return text;
}

std::string write_file(const TempDir& dir, std::string_view name, const std::string& content) {
  const auto path = dir.file(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// Equality without dumping hundreds of KiB into the failure message.
testing::AssertionResult same_bytes(const std::string& got, const std::string& want) {
  if (got == want) {
    return testing::AssertionSuccess();
  }
  const auto diff = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  return testing::AssertionFailure()
         << "output of " << got.size() << " bytes for " << want.size()
         << " sent, first difference at byte " << (diff.first - got.begin());
}

class RawStreamSocatTest : public testing::TestWithParam<std::tuple<std::string, Listen>> {};

TEST_P(RawStreamSocatTest, SocatGetsItsBytesBack) {
  const auto& [engine, listen] = GetParam();
  const auto socat = find_in_path("socat");
  if (!socat) {
    GTEST_SKIP() << "socat is not installed (apt-get install socat)";
  }
  if (const auto reason = skip_reason(engine, listen); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  ServerUnderTest running(engine, listen, {"--protocol", "raw"});
  const auto input = "echolab raw echo\n" + random_text(256 * 1024, test_seed());
  const auto input_path = write_file(running.dir(), "input.bin", input);
  const auto& address = running.server().ready().address;
  const auto target =
      listen == Listen::unix_stream ? "UNIX-CONNECT:" + address.substr(5) : "TCP:" + address;

  // -t 5: after its input ends socat half-closes and waits up to 5 s for the echo to finish.
  const auto started = std::chrono::steady_clock::now();
  const auto result =
      run_process({*socat, "-t", "5", "-", target}, kSocatDeadline, stdin_from(input_path));
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
  EXPECT_TRUE(result.status.success()) << result.status.describe() << ": " << result.err;
  EXPECT_TRUE(same_bytes(result.out, input)) << "socat stderr: " << result.err;
  RecordProperty("socat_ms", std::to_string(took.count()));

  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_GE(stats_counter(stats, "messages"), 1u);
  EXPECT_EQ(stats_counter(stats, "bytes_in"), input.size());
  EXPECT_EQ(stats_counter(stats, "bytes_out"), input.size());
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, RawStreamSocatTest,
                         testing::Combine(testing::ValuesIn(engine_names(Serves::streams)),
                                          testing::Values(Listen::tcp_v4, Listen::unix_stream)),
                         [](const auto& case_info) {
                           return test_name_part(std::get<0>(case_info.param)) + "_" +
                                  std::string(name_of(std::get<1>(case_info.param)));
                         });

class RawDatagramSocatTest : public testing::TestWithParam<std::string> {};

TEST_P(RawDatagramSocatTest, SocatGetsItsDatagramsBack) {
  const auto& engine = GetParam();
  const auto socat = find_in_path("socat");
  if (!socat) {
    GTEST_SKIP() << "socat is not installed (apt-get install socat)";
  }
  if (const auto reason = skip_reason(engine); !reason.empty()) {
    GTEST_SKIP() << reason;
  }
  ServerUnderTest running(engine, Listen::udp_v4, {"--protocol", "raw"});
  const auto target = "UDP:" + running.server().ready().address;
  // -b 65507: socat reads its input in blocks of that size, one datagram each; both inputs
  // fit in one. -t 1: how long it waits for the echo once its input ended.
  const std::string inputs[] = {"echolab raw udp\n", random_text(60'000, test_seed())};
  int sent = 0;
  for (const auto& input : inputs) {
    const auto path = write_file(running.dir(), "input" + std::to_string(sent++), input);
    // Loopback UDP may drop a datagram, if rarely on an idle machine: allow two retries.
    CompletedProcess result;
    for (int attempt = 0; attempt < 3; ++attempt) {
      result = run_process({*socat, "-t", "1", "-b", "65507", "-", target}, kSocatDeadline,
                           stdin_from(path));
      if (result.out == input) {
        break;
      }
    }
    EXPECT_TRUE(result.status.success()) << result.status.describe() << ": " << result.err;
    EXPECT_TRUE(same_bytes(result.out, input)) << "socat stderr: " << result.err;
  }

  running.expect_no_fd_leak();
  const auto stats = running.stop_and_check();
  if (stats.is_null()) {
    return;
  }
  EXPECT_GE(stats_counter(stats, "messages"), 2u);
  EXPECT_EQ(stats_counter(stats, "protocol_errors"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Engines, RawDatagramSocatTest,
                         testing::ValuesIn(engine_names(Serves::datagrams)),
                         [](const auto& case_info) { return test_name_part(case_info.param); });

}  // namespace
}  // namespace echolab::test
