// PIN complexity as the PassportForWork CSP documents it (reference §1.2).
#include <spdlog/spdlog.h>

#include <string>

#include "container/container.h"

namespace dm::container {
namespace {

constexpr int kDefaultMin = 4;
constexpr int kDefaultMax = 127;

// The documented special characters: every printable ASCII punctuation mark, no space.
bool IsSpecial(unsigned char c) {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
         (c >= 0x7b && c <= 0x7e);
}

Status CheckRange(const std::optional<int>& v, int lo, int hi, std::string_view node) {
  if (v && (*v < lo || *v > hi)) {
    return InvalidArgument("PINComplexity/" + std::string(node) + " must be " + std::to_string(lo) +
                           ".." + std::to_string(hi) + ", got " + std::to_string(*v));
  }
  return Status::Ok();
}

// Not configured is not 0: absent digits are required, absent letters and specials are not
// allowed (the CSP descriptions and the 2019 defaults, reference §1.2).
Result<CharRule> ResolveClass(const std::optional<int>& v, CharRule not_configured,
                              std::string_view node) {
  if (!v) return not_configured;
  switch (*v) {
    case 0:
      return CharRule::kAllow;
    case 1:
      return CharRule::kRequire;
    case 2:
      return CharRule::kDisallow;
    default:
      return InvalidArgument("PINComplexity/" + std::string(node) +
                             " must be 0 (allow), 1 (require) or 2 (disallow), got " +
                             std::to_string(*v));
  }
}

struct ClassCheck {
  CharRule rule;
  bool present;
  const char* one;   // "uppercase letter"
  const char* many;  // "uppercase letters"
};

}  // namespace

Result<PinRules> ResolvePinRules(const PinComplexity& c) {
  DM_RETURN_IF_ERROR(CheckRange(c.minimum_length, 4, 127, "MinimumPINLength"));
  DM_RETURN_IF_ERROR(CheckRange(c.maximum_length, 4, 127, "MaximumPINLength"));
  DM_RETURN_IF_ERROR(CheckRange(c.history, 0, 50, "History"));
  DM_RETURN_IF_ERROR(CheckRange(c.expiration_days, 0, 730, "Expiration"));
  PinRules r;
  r.minimum_length = c.minimum_length.value_or(kDefaultMin);
  r.maximum_length = c.maximum_length.value_or(kDefaultMax);
  // The minimum must be below the maximum; an inconsistent pair falls back to the defaults
  // for both, as Windows does.
  if (r.minimum_length >= r.maximum_length) {
    spdlog::warn("PIN length policy min {} / max {} is inconsistent; using {}/{}", r.minimum_length,
                 r.maximum_length, kDefaultMin, kDefaultMax);
    r.minimum_length = kDefaultMin;
    r.maximum_length = kDefaultMax;
  }
  DM_ASSIGN_OR_RETURN(r.uppercase,
                      ResolveClass(c.uppercase, CharRule::kDisallow, "UppercaseLetters"));
  DM_ASSIGN_OR_RETURN(r.lowercase,
                      ResolveClass(c.lowercase, CharRule::kDisallow, "LowercaseLetters"));
  DM_ASSIGN_OR_RETURN(r.special, ResolveClass(c.special, CharRule::kDisallow, "SpecialCharacters"));
  DM_ASSIGN_OR_RETURN(r.digits, ResolveClass(c.digits, CharRule::kRequire, "Digits"));
  if (r.uppercase == CharRule::kDisallow && r.lowercase == CharRule::kDisallow &&
      r.special == CharRule::kDisallow && r.digits == CharRule::kDisallow) {
    return InvalidArgument(
        "PINComplexity disallows every character class (uppercase, lowercase, special "
        "characters, digits); no PIN could be set");
  }
  r.history = c.history.value_or(0);
  r.expiration_days = c.expiration_days.value_or(0);
  return r;
}

Status CheckPin(const SecretBytes& pin, const PinRules& rules) {
  bool upper = false, lower = false, digit = false, special = false;
  for (size_t i = 0; i < pin.size(); ++i) {
    const unsigned char ch = pin.data()[i];
    if (ch >= 'A' && ch <= 'Z') {
      upper = true;
    } else if (ch >= 'a' && ch <= 'z') {
      lower = true;
    } else if (ch >= '0' && ch <= '9') {
      digit = true;
    } else if (IsSpecial(ch)) {
      special = true;
    } else {
      // Never echo the character: it is part of a PIN.
      return InvalidArgument(
          "PIN may only contain letters A-Z and a-z, digits and the special characters "
          "! \" # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \\ ] ^ _ ` { | } ~");
    }
  }
  const auto len = static_cast<int>(pin.size());
  if (len < rules.minimum_length) {
    return InvalidArgument("PIN must be at least " + std::to_string(rules.minimum_length) +
                           " characters long");
  }
  if (len > rules.maximum_length) {
    return InvalidArgument("PIN must be at most " + std::to_string(rules.maximum_length) +
                           " characters long");
  }
  const ClassCheck checks[] = {
      {rules.uppercase, upper, "uppercase letter", "uppercase letters"},
      {rules.lowercase, lower, "lowercase letter", "lowercase letters"},
      {rules.digits, digit, "digit", "digits"},
      {rules.special, special, "special character", "special characters"},
  };
  for (const auto& c : checks) {
    if (c.rule == CharRule::kDisallow && c.present) {
      return InvalidArgument(std::string("PIN must not contain ") + c.many);
    }
  }
  for (const auto& c : checks) {
    if (c.rule == CharRule::kRequire && !c.present) {
      return InvalidArgument(std::string("PIN must contain at least one ") + c.one);
    }
  }
  return Status::Ok();
}

}  // namespace dm::container
