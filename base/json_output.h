// What every `--json` output of dmagent and dmserver shares (docs/json-output.md): one object
// per output, `schema_version` first, snake_case member names. The dsregcmd-style text views
// keep dsregcmd's names; only the JSON follows this convention.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace dm {

// Bumped when a member is renamed or removed or changes type; adding members keeps it.
inline constexpr int kJsonSchemaVersion = 1;

// `body`'s members after {"schema_version": kJsonSchemaVersion}. `body` must be an object.
nlohmann::ordered_json JsonDocument(const nlohmann::ordered_json& body);

// The path of the first member name that is not snake_case ([a-z][a-z0-9_]*), e.g.
// "device_state.AzureAdJoined"; nullopt when every name in `doc` follows the convention.
std::optional<std::string> KeyOutsideConvention(const nlohmann::json& doc);

}  // namespace dm
