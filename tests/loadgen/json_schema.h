#pragma once
// A JSON Schema (draft 2020-12) validator for the subset results/schema/ uses: type, enum,
// const, minimum, maximum, properties, required, additionalProperties, items, minItems,
// maxItems and local $ref ("#/$defs/..."). Any other keyword in a schema is reported as an
// error rather than ignored, so the schema cannot silently outgrow what is checked.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace echolab::test {

// Every violation, as "path: what" ("/errors/timeout: -1 is below the minimum 0"); empty
// when `instance` is valid.
[[nodiscard]] std::vector<std::string> validate_against_schema(const nlohmann::json& schema,
                                                               const nlohmann::json& instance);

}  // namespace echolab::test
