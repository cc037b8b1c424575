// What each managed setting is. One table serves the CSPs (validation, defaults, scope) and
// the engine (precedence group, when it takes effect): the timing is data, not code paths.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace dm::policy {

enum class ValueType { kBool, kInt, kString };

enum class TakesEffect { kImmediately, kNextSignIn, kAfterReboot };
std::string_view TakesEffectName(TakesEffect t);  // "Immediately", "NextSignIn", "AfterReboot"

// PassportForWork precedence groups (csp-and-container.md section 1.4): the feature group is
// taken whole from the scope that sets UsePassportForWork, the PIN group whole from the scope
// that sets any of its members; the rest resolve per setting.
enum class Group { kNone, kHelloFeature, kPinComplexity };

// How a kString value is checked (ignored for other types).
enum class StringFormat {
  kAny,
  kHostName,       // "contoso.com"
  kHostList,       // ';'-separated host names (ConfigureWebcamAccessDomainNames)
  kWebSignInList,  // ';'-separated host names or https URLs (ConfigureWebSignInAllowedUrls)
  kBracedGuid,     // "{8F1A...-...}" (DeviceUnlock/GroupA, GroupB)
};

struct SettingDef {
  std::string_view name;  // "PassportForWork/EnablePinRecovery"
  ValueType type;
  std::optional<long> min;  // inclusive range for kInt
  std::optional<long> max;
  // Value when not configured, as the CSP reports it; nullopt = no value ("not configured"
  // has its own meaning, e.g. the PIN character classes).
  std::optional<std::string_view> default_value;
  bool device_only;  // 405 under ./User
  TakesEffect takes_effect;
  Group group;
  bool user_only = false;  // 405 under ./Device (Authentication/AllowEAPCertSSO)
  StringFormat format = StringFormat::kAny;
};

// Every setting, sorted by name.
std::span<const SettingDef> AllSettings();
const SettingDef* FindSetting(std::string_view name);
// InvalidArgument naming the rule ("MinimumPINLength 3 is outside [4-127]") when it fails.
// Booleans are "true"/"false" (case-insensitive on input), integers decimal.
Status ValidateValue(const SettingDef& def, std::string_view value);
// The canonical form the engine stores and compares: booleans lower-case, integers without
// sign or leading zeros, list entries trimmed of surrounding blanks. Validates first.
Result<std::string> NormalizeValue(const SettingDef& def, std::string_view value);

// True when the setting can be set per user, so the engine evaluates it for each user.
inline bool IsUserRelevant(const SettingDef& def) { return !def.device_only; }

}  // namespace dm::policy
