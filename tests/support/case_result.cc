#include "tests/support/case_result.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace echolab::test {

namespace fs = std::filesystem;

std::string write_case_result(const nlohmann::json& result) {
  const char* configured = std::getenv("ECHOLAB_ROBUSTNESS_OUT");
  const fs::path dir = configured != nullptr && *configured != '\0'
                           ? fs::path(configured)
                           : fs::path(ECHOLAB_BINARY_DIR) / "robustness";
  std::error_code error;
  fs::create_directories(dir, error);
  const fs::path path = dir / (result.value("case", "unnamed") + ".json");
  std::ofstream out(path);
  out << result.dump(2) << '\n';
  if (!out) {
    std::cerr << "[   INFO   ] could not write " << path << '\n';
    return {};
  }
  std::cout << "[   INFO   ] result: " << path.string() << '\n';
  return path.string();
}

std::string case_name(std::string_view test, std::string_view engine) {
  std::string name = std::string(test) + "_" + std::string(engine);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      c = '_';
    }
  }
  return name;
}

}  // namespace echolab::test
