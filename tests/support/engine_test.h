#pragma once
// EngineTest: the base of a test parameterised over engine names. Before the body runs it
// skips an engine that cannot run here, draws the seed (ECHOLAB_TEST_SEED, or a fresh one)
// and keeps it in every failure message, so that any failing run can be replayed.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>

#include "servers/engine.h"
#include "tests/support/engine_cases.h"
#include "tests/support/payload.h"

namespace echolab::test {

class EngineTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (const auto reason = skip_reason(GetParam()); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
    seed_ = test_seed();
    trace_.emplace(__FILE__, __LINE__, "ECHOLAB_TEST_SEED=" + std::to_string(seed_));
    random_.emplace(seed_);
  }

  [[nodiscard]] const std::string& engine() const { return GetParam(); }
  [[nodiscard]] const EngineInfo& info() const { return engine_info(GetParam()); }
  [[nodiscard]] std::uint64_t seed() const { return seed_; }
  [[nodiscard]] FastRandom& random() { return *random_; }

 private:
  std::uint64_t seed_ = 0;
  std::optional<testing::ScopedTrace> trace_;
  std::optional<FastRandom> random_;
};

// The gtest name of an engine case: "iterative-udp" -> "iterative_udp".
inline std::string engine_case_name(const testing::TestParamInfo<std::string>& param_info) {
  return test_name_part(param_info.param);
}

}  // namespace echolab::test
