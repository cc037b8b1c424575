#include "policy/catalog.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

#include "base/ascii.h"

namespace dm::policy {
namespace {

using enum ValueType;
using enum TakesEffect;
using enum Group;

constexpr std::string_view kTrue = "true";
constexpr std::string_view kFalse = "false";

// Sources: csp-and-container.md 1.1 (tree, scope), 1.2 (DDF formats, ranges, defaults),
// 1.4 (timing, groups), 2.1 (Authentication area). Timing notes:
//  - UsePassportForWork, RequireSecurityDevice, DisablePostLogonProvisioning,
//    UseCertificateForOnPremAuth: provisioning is a post-logon task, so next sign-in.
//  - UseHelloCertificatesAsSmartCardCertificates: documented lock/unlock of the session.
//  - EnablePinRecovery: undocumented; after reboot by default (EngineOptions).
//  - PIN complexity: immediately, enforced at the next PIN set/change.
//  - The PIN character classes have no default: "not configured" means digits required and
//    the other classes disallowed, which is not the DDF's 0.
// Kept sorted by name (FindSetting binary-searches; a static_assert below checks it).
constexpr SettingDef kSettings[] = {
    {.name = "Authentication/AllowAadPasswordReset",
     .type = kInt,
     .min = 0,
     .max = 1,
     .default_value = "0",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "Authentication/AllowEAPCertSSO",
     .type = kInt,
     .min = 0,
     .max = 1,
     .default_value = "0",
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kNone,
     .user_only = true},
    {.name = "Authentication/AllowFastReconnect",
     .type = kInt,
     .min = 0,
     .max = 1,
     .default_value = "1",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "Authentication/AllowSecondaryAuthenticationDevice",
     .type = kInt,
     .min = 0,
     .max = 1,
     .default_value = "0",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "Authentication/ConfigureWebSignInAllowedUrls",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone,
     .format = StringFormat::kWebSignInList},
    {.name = "Authentication/ConfigureWebcamAccessDomainNames",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone,
     .format = StringFormat::kHostList},
    {.name = "Authentication/EnableFastFirstSignIn",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = "0",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "Authentication/EnablePasswordlessExperience",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = "0",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "Authentication/EnableWebSignIn",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = "0",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "Authentication/PreferredAadTenantDomainName",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone,
     .format = StringFormat::kHostName},
    {.name = "PassportForWork/Biometrics/EnableESSwithSupportedPeripherals",
     .type = kInt,
     .min = 0,
     .max = 1,
     .default_value = "1",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/Biometrics/FacialFeaturesUseEnhancedAntiSpoofing",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/Biometrics/UseBiometrics",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/DeviceUnlock/GroupA",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone,
     .format = StringFormat::kBracedGuid},
    {.name = "PassportForWork/DeviceUnlock/GroupB",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone,
     .format = StringFormat::kBracedGuid},
    {.name = "PassportForWork/DeviceUnlock/Plugins",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/DisablePostLogonProvisioning",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kNextSignIn,
     .group = kNone},
    {.name = "PassportForWork/DynamicLock/DynamicLock",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/DynamicLock/Plugins",
     .type = kString,
     .min = {},
     .max = {},
     .default_value = {},
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/EnablePinRecovery",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = false,
     .takes_effect = kAfterReboot,
     .group = kNone},
    {.name = "PassportForWork/EnableWindowsHelloProvisioningForSecurityKeys",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/ExcludeSecurityDevices/TPM12",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/PINComplexity/Digits",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = {},
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/Expiration",
     .type = kInt,
     .min = 0,
     .max = 730,
     .default_value = "0",
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/History",
     .type = kInt,
     .min = 0,
     .max = 50,
     .default_value = "0",
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/LowercaseLetters",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = {},
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/MaximumPINLength",
     .type = kInt,
     .min = 4,
     .max = 127,
     .default_value = "127",
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/MinimumPINLength",
     .type = kInt,
     .min = 4,
     .max = 127,
     .default_value = "4",
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/SpecialCharacters",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = {},
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/PINComplexity/UppercaseLetters",
     .type = kInt,
     .min = 0,
     .max = 2,
     .default_value = {},
     .device_only = false,
     .takes_effect = kImmediately,
     .group = kPinComplexity},
    {.name = "PassportForWork/Remote/UseRemotePassport",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/RequireSecurityDevice",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = false,
     .takes_effect = kNextSignIn,
     .group = kPinComplexity},
    {.name = "PassportForWork/SecurityKey/UseSecurityKeyForSignin",
     .type = kInt,
     .min = 0,
     .max = 1,
     .default_value = "0",
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/UseBiometrics",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kNone},
    {.name = "PassportForWork/UseCertificateForOnPremAuth",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kNextSignIn,
     .group = kHelloFeature},
    {.name = "PassportForWork/UseCloudTrustForOnPremAuth",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kImmediately,
     .group = kHelloFeature},
    {.name = "PassportForWork/UseHelloCertificatesAsSmartCardCertificates",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kFalse,
     .device_only = true,
     .takes_effect = kNextSignIn,
     .group = kNone},
    {.name = "PassportForWork/UsePassportForWork",
     .type = kBool,
     .min = {},
     .max = {},
     .default_value = kTrue,
     .device_only = false,
     .takes_effect = kNextSignIn,
     .group = kHelloFeature},
};

constexpr bool IsSorted() {
  for (size_t i = 1; i < std::size(kSettings); ++i) {
    if (!(kSettings[i - 1].name < kSettings[i].name)) return false;
  }
  return true;
}
static_assert(IsSorted(), "kSettings must be sorted by name");

constexpr size_t kMaxStringValue = 8192;

std::string_view ShortName(std::string_view name) {
  auto slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsHex(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9');
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// https://host[:port][/path][?query][#fragment]; no user info, no IP-literal brackets.
bool IsHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() <= kScheme.size() || AsciiLower(url.substr(0, kScheme.size())) != kScheme) {
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  std::string_view host = authority;
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    std::string_view port = authority.substr(colon + 1);
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p < 1 ||
        p > 65535) {
      return false;
    }
  }
  if (!IsHostName(host)) return false;
  for (char c : tail) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

bool IsBracedGuid(std::string_view s) {
  // {8-4-4-4-12}
  if (s.size() != 38 || s.front() != '{' || s.back() != '}') return false;
  for (size_t i = 1; i < 37; ++i) {
    bool dash = i == 9 || i == 14 || i == 19 || i == 24;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

// Splits a ';' list, trims each entry and drops empty ones (a trailing ';' is harmless).
std::vector<std::string_view> SplitList(std::string_view value) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t semi = value.find(';', start);
    std::string_view item = Trim(value.substr(
        start, semi == std::string_view::npos ? std::string_view::npos : semi - start));
    if (!item.empty()) out.push_back(item);
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  return out;
}

Result<std::string> NormalizeString(const SettingDef& def, std::string_view value) {
  std::string_view name = ShortName(def.name);
  if (value.size() > kMaxStringValue) {
    return InvalidArgument(std::string(name) + " is longer than " +
                           std::to_string(kMaxStringValue) + " characters");
  }
  switch (def.format) {
    case StringFormat::kAny:
      return std::string(value);
    case StringFormat::kHostName: {
      std::string_view v = Trim(value);
      if (!IsHostName(v)) {
        return InvalidArgument(std::string(name) + " '" + std::string(v) + "' is not a host name");
      }
      return std::string(v);
    }
    case StringFormat::kBracedGuid: {
      std::string_view v = Trim(value);
      if (!IsBracedGuid(v)) {
        return InvalidArgument(
            std::string(name) + " '" + std::string(v) +
            "' is not a GUID in braces like {00000000-0000-0000-0000-000000000000}");
      }
      return std::string(v);
    }
    case StringFormat::kHostList:
    case StringFormat::kWebSignInList: {
      std::string out;
      for (std::string_view item : SplitList(value)) {
        bool ok =
            IsHostName(item) || (def.format == StringFormat::kWebSignInList && IsHttpsUrl(item));
        if (!ok) {
          std::string what = def.format == StringFormat::kWebSignInList
                                 ? "is neither a host name nor an https URL"
                                 : "is not a host name";
          return InvalidArgument(std::string(name) + " entry '" + std::string(item) + "' " + what +
                                 " (entries are separated by ';')");
        }
        if (!out.empty()) out += ';';
        out += item;
      }
      return out;
    }
  }
  return Internal("unknown string format");
}

}  // namespace

std::string_view TakesEffectName(TakesEffect t) {
  switch (t) {
    case TakesEffect::kImmediately:
      return "Immediately";
    case TakesEffect::kNextSignIn:
      return "NextSignIn";
    case TakesEffect::kAfterReboot:
      return "AfterReboot";
  }
  return "Unknown";
}

std::span<const SettingDef> AllSettings() { return kSettings; }

const SettingDef* FindSetting(std::string_view name) {
  auto it = std::lower_bound(std::begin(kSettings), std::end(kSettings), name,
                             [](const SettingDef& d, std::string_view n) { return d.name < n; });
  if (it == std::end(kSettings) || it->name != name) return nullptr;
  return &*it;
}

Result<std::string> NormalizeValue(const SettingDef& def, std::string_view value) {
  std::string_view name = ShortName(def.name);
  switch (def.type) {
    case ValueType::kBool: {
      std::string v = AsciiLower(Trim(value));
      if (v == kTrue || v == kFalse) return v;
      return InvalidArgument(std::string(name) + " must be true or false, got '" +
                             std::string(value) + "'");
    }
    case ValueType::kInt: {
      std::string_view v = Trim(value);
      if (!v.empty() && v.front() == '+') v.remove_prefix(1);
      long n = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
        return InvalidArgument(std::string(name) + " must be a decimal integer, got '" +
                               std::string(value) + "'");
      }
      if ((def.min && n < *def.min) || (def.max && n > *def.max)) {
        return InvalidArgument(std::string(name) + " " + std::to_string(n) + " is outside [" +
                               std::to_string(def.min.value_or(n)) + "-" +
                               std::to_string(def.max.value_or(n)) + "]");
      }
      return std::to_string(n);
    }
    case ValueType::kString:
      return NormalizeString(def, value);
  }
  return Internal("unknown value type");
}

Status ValidateValue(const SettingDef& def, std::string_view value) {
  return NormalizeValue(def, value).status();
}

}  // namespace dm::policy
