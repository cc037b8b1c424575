// ASCII case folding for identifiers that compare case-insensitively (GUIDs, UPNs, host
// names, CSP node names, SyncML types). Bytes outside A-Z are left alone, whatever the locale.
#pragma once

#include <string>
#include <string_view>

namespace dm {

inline std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

inline std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

}  // namespace dm
