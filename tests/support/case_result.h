#pragma once
// The results contract of the measuring tests: each writes <case>.json (case =
// <test>_<engine>, e.g. bad_input_stream_select.json) into $ECHOLAB_ROBUSTNESS_OUT, with
// "case", "test", "engine" and figures whose keys carry their units (_bytes, _kib, _ticks...);
// tests/robustness/collect.py merges them into results/robustness.json.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace echolab::test {

// Writes `result` (which must hold "case" and "engine") to $ECHOLAB_ROBUSTNESS_OUT/<case>.json
// (the directory is created). Returns the path written, or empty (and prints why) if the
// directory is unusable: results never decide whether a test passes.
std::string write_case_result(const nlohmann::json& result);

// "<test>_<engine>" with the engine name made file-safe: the case name of one engine's run.
[[nodiscard]] std::string case_name(std::string_view test, std::string_view engine);

}  // namespace echolab::test
