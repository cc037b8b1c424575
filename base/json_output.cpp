#include "base/json_output.h"

namespace dm {
namespace {

bool IsSnakeCase(const std::string& name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::optional<std::string> Find(const nlohmann::json& j, const std::string& path) {
  if (j.is_object()) {
    for (const auto& [name, value] : j.items()) {
      const std::string here = path.empty() ? name : path + "." + name;
      if (!IsSnakeCase(name)) return here;
      if (auto bad = Find(value, here)) return bad;
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      if (auto bad = Find(j[i], path + "[" + std::to_string(i) + "]")) return bad;
    }
  }
  return std::nullopt;
}

}  // namespace

nlohmann::ordered_json JsonDocument(const nlohmann::ordered_json& body) {
  nlohmann::ordered_json doc = {{"schema_version", kJsonSchemaVersion}};
  for (const auto& [name, value] : body.items()) doc[name] = value;
  return doc;
}

std::optional<std::string> KeyOutsideConvention(const nlohmann::json& doc) { return Find(doc, ""); }

}  // namespace dm
