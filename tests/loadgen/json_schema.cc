#include "tests/loadgen/json_schema.h"

#include <cmath>
#include <set>

namespace echolab::test {
namespace {

const std::set<std::string> kAnnotations = {"$schema", "$id", "$defs", "title", "description"};

class Validator {
 public:
  explicit Validator(const nlohmann::json& root) : root_(root) {}

  void check(const nlohmann::json& schema, const nlohmann::json& value, const std::string& path) {
    if (!schema.is_object()) {
      fail(path, "schema is not an object");
      return;
    }
    for (const auto& [keyword, argument] : schema.items()) {
      if (kAnnotations.count(keyword) != 0 || keyword == "required" ||
          keyword == "additionalProperties") {
        continue;  // handled with "properties" below
      }
      if (keyword == "$ref") {
        check(resolve(argument.get<std::string>(), path), value, path);
      } else if (keyword == "type") {
        check_type(argument, value, path);
      } else if (keyword == "enum") {
        bool found = false;
        for (const auto& option : argument) found |= option == value;
        if (!found) fail(path, value.dump() + " is not one of " + argument.dump());
      } else if (keyword == "const") {
        if (argument != value) fail(path, value.dump() + " is not " + argument.dump());
      } else if (keyword == "minimum") {
        if (value.is_number() && value.get<double>() < argument.get<double>()) {
          fail(path, value.dump() + " is below the minimum " + argument.dump());
        }
      } else if (keyword == "maximum") {
        if (value.is_number() && value.get<double>() > argument.get<double>()) {
          fail(path, value.dump() + " is above the maximum " + argument.dump());
        }
      } else if (keyword == "minItems") {
        if (value.is_array() && value.size() < argument.get<std::size_t>()) {
          fail(path, "fewer than " + argument.dump() + " items");
        }
      } else if (keyword == "maxItems") {
        if (value.is_array() && value.size() > argument.get<std::size_t>()) {
          fail(path, "more than " + argument.dump() + " items");
        }
      } else if (keyword == "items") {
        if (value.is_array()) {
          for (std::size_t i = 0; i < value.size(); ++i) {
            check(argument, value[i], path + "/" + std::to_string(i));
          }
        }
      } else if (keyword == "properties") {
        continue;
      } else {
        fail(path, "schema keyword \"" + keyword + "\" is not supported by this validator");
      }
    }
    if (value.is_object()) {
      check_object(schema, value, path);
    }
  }

  std::vector<std::string> errors;

 private:
  void fail(const std::string& path, const std::string& what) {
    errors.push_back((path.empty() ? "/" : path) + ": " + what);
  }

  const nlohmann::json& resolve(const std::string& ref, const std::string& path) {
    static const nlohmann::json kEmpty = nlohmann::json::object();
    const std::string prefix = "#/$defs/";
    if (ref.rfind(prefix, 0) != 0 || !root_.contains("$defs") ||
        !root_["$defs"].contains(ref.substr(prefix.size()))) {
      fail(path, "unresolvable $ref " + ref);
      return kEmpty;
    }
    return root_["$defs"][ref.substr(prefix.size())];
  }

  static bool has_type(const std::string& type, const nlohmann::json& value) {
    if (type == "object") return value.is_object();
    if (type == "array") return value.is_array();
    if (type == "string") return value.is_string();
    if (type == "boolean") return value.is_boolean();
    if (type == "null") return value.is_null();
    if (type == "number") return value.is_number();
    if (type == "integer") {
      return value.is_number_integer() ||
             (value.is_number_float() && std::floor(value.get<double>()) == value.get<double>());
    }
    return false;
  }

  void check_type(const nlohmann::json& argument, const nlohmann::json& value, const std::string& path) {
    bool ok = false;
    if (argument.is_array()) {
      for (const auto& type : argument) ok |= has_type(type.get<std::string>(), value);
    } else {
      ok = has_type(argument.get<std::string>(), value);
    }
    if (!ok) fail(path, value.dump().substr(0, 60) + " is not of type " + argument.dump());
  }

  void check_object(const nlohmann::json& schema, const nlohmann::json& value, const std::string& path) {
    if (schema.contains("required")) {
      for (const auto& name : schema["required"]) {
        if (!value.contains(name.get<std::string>())) {
          fail(path, "missing required property \"" + name.get<std::string>() + "\"");
        }
      }
    }
    const nlohmann::json properties = schema.value("properties", nlohmann::json::object());
    for (const auto& [name, member] : value.items()) {
      const std::string member_path = path + "/" + name;
      if (properties.contains(name)) {
        check(properties[name], member, member_path);
      } else if (schema.contains("additionalProperties")) {
        const auto& additional = schema["additionalProperties"];
        if (additional.is_boolean()) {
          if (!additional.get<bool>()) fail(member_path, "property not allowed by the schema");
        } else {
          check(additional, member, member_path);
        }
      }
    }
  }

  const nlohmann::json& root_;
};

}  // namespace

std::vector<std::string> validate_against_schema(const nlohmann::json& schema,
                                                 const nlohmann::json& instance) {
  Validator validator(schema);
  validator.check(schema, instance, "");
  return validator.errors;
}

}  // namespace echolab::test
