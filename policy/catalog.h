// What each managed setting is. One table serves the CSPs (validation, defaults, scope) and
// the engine (precedence group, when it takes effect): the timing is data, not code paths.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "base/status.h"

namespace dm::policy {

enum class ValueType { kBool, kInt, kString };

enum class TakesEffect { kImmediately, kNextSignIn, kAfterReboot };
std::string_view TakesEffectName(TakesEffect t);

// PassportForWork precedence groups (csp-and-container.md section 1.4): the feature group is
// taken whole from the scope that sets UsePassportForWork, the PIN group whole from the scope
// that sets any of its members; the rest resolve per setting.
enum class Group { kNone, kHelloFeature, kPinComplexity };

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
};

std::span<const SettingDef> AllSettings();
const SettingDef* FindSetting(std::string_view name);
// InvalidArgument naming the rule ("MinimumPINLength 3 is outside [4-127]") when it fails.
// Booleans are "true"/"false" (case-insensitive on input), integers decimal.
Status ValidateValue(const SettingDef& def, std::string_view value);

}  // namespace dm::policy
