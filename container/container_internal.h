// Container internals shared by the implementation and its tests; not part of the API.
#pragma once

#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/status.h"

namespace dm::container::internal {

// What each AES-GCM blob of a container is for; bound into its associated data together with
// the user and the key id, so a blob copied into another slot, user or container fails to open.
inline constexpr char kPurposePrivateKey[] = "dmagent/container/v1/private-key";
inline constexpr char kPurposePinWrap[] = "dmagent/container/v1/pin-wrap";
inline constexpr char kPurposeProtectorWrap[] = "dmagent/container/v1/protector-wrap";
inline constexpr char kPurposeHistory[] = "dmagent/container/v1/pin-history";
// Under the device's KeySealer: the PIN wrap (sealed again) and the retry counter's MAC.
inline constexpr char kPurposePinSeal[] = "dmagent/container/v1/pin-wrap-seal";
inline constexpr char kPurposeCounters[] = "dmagent/container/v1/pin-counters";

// purpose \n <len>:user \n ngc_key_id — length-prefixed so no user name can forge another.
std::string AssociatedData(std::string_view purpose, std::string_view user,
                           std::string_view ngc_key_id);

// "{8F1A2B3C-...}" from 16 random bytes (RFC 4122 version 4), upper case like dsregcmd.
Result<std::string> NewKeyId(crypto::Random& random);

// Users are names the OS gives us; refuse what could not be one (empty, too long, control
// characters) so nothing odd reaches SQL text, logs or associated data.
Status ValidateUserName(std::string_view user);

// The parsed host of a URL web sign-in is asked to open; errors say why it was refused.
struct NavigationTarget {
  std::string host;
  int port = 443;
};
Result<NavigationTarget> ParseNavigationUrl(std::string_view url);
// Printable, bounded form of untrusted text for a log line.
std::string SanitizeForLog(std::string_view text, size_t max_len = 128);

}  // namespace dm::container::internal
