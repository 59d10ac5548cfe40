// An engine whose row needs io_uring (its socket I/O is not libc's), on a machine where a
// seccomp policy forbids io_uring: its available() probe really tries a ring, so
// --list-engines --json says it is unavailable, and asked to serve, the server refuses in
// one line saying what the engine needs (exit 2, no ready line) instead of starting and
// failing later.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "servers/engine.h"
#include "tests/support/engine_cases.h"
#include "tests/support/process.h"

namespace echolab::test {
namespace {

constexpr milliseconds kTimeout{20'000};

class UnavailableEngineTest : public testing::TestWithParam<std::string> {};

TEST_P(UnavailableEngineTest, RefusedInOneLineUnderASeccompPolicyWithoutIoUring) {
  const EngineInfo& info = engine_info(GetParam());
  const auto listed = run_process({ECHOLAB_NO_IO_URING, server_binary(), "--list-engines", "--json"}, kTimeout);
  ASSERT_TRUE(listed.status.success()) << listed.status.describe() << ": " << listed.err;
  bool seen = false;
  for (const auto& row : nlohmann::json::parse(listed.out)) {
    if (row["name"] == info.name) {
      seen = true;
      EXPECT_FALSE(row["available"].get<bool>()) << "the probe did not try a ring: " << row.dump();
    }
  }
  EXPECT_TRUE(seen) << listed.out;

  const auto served = run_process(
      {ECHOLAB_NO_IO_URING, server_binary(), "--engine", std::string(info.name), "--listen", "127.0.0.1:0"}, kTimeout);
  EXPECT_TRUE(served.status.exited && served.status.code == 2) << served.status.describe();
  EXPECT_EQ(served.out, "") << "no ready line";
  EXPECT_EQ(split_lines(served.err), std::vector<std::string>{"echolab-server: " + unavailable_reason(info)});
}

INSTANTIATE_TEST_SUITE_P(Engines, UnavailableEngineTest,
                         testing::ValuesIn(engine_names([](const EngineInfo& engine) {
                           return !engine.socket_io_through_libc;
                         })),
                         [](const auto& param_info) { return test_name_part(param_info.param); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(UnavailableEngineTest);

}  // namespace
}  // namespace echolab::test
