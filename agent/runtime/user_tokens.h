// A signed-in user's tokens from the management server's IdP (its Services/UserTokenUrl, an
// OAuth 2.0 token endpoint reached over the device's mutual TLS): the user token the
// management session carries in Alert 1224 (as Windows carries the user's Entra token), and
// the refresh token, bound to this device like a PRT, that renews it. Both are kept in the
// database sealed under the machine key, one entry per user.
#pragma once

#include <string>
#include <string_view>

#include "agent/runtime/device.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::agent {

// Whether the enrolled server issues user tokens (its DMAgent Services/UserTokenUrl is set).
Result<bool> UserTokensOffered(storage::Database& db);

// A sign-in with both factors. The tokens replace any the user had on this device.
Status SignInWithPassword(Device& device, std::string_view upn, const SecretBytes& password,
                          const SecretBytes& otp);
// A Windows Hello sign-in: an assertion signed with the user's Hello key (unlocked by `pin`)
// and carrying its certificate proves the user. Needs a certificate the server issued.
Status SignInWithHelloKey(Device& device, std::string_view upn, const SecretBytes& pin);

// The user's token, renewed with the refresh token when it is about to expire. Empty when
// the user has none (never signed in here, refresh refused or expired): the session then
// claims no user. Errors only for local failures; a refused renewal is logged and forgotten.
Result<std::string> CurrentUserToken(storage::Database& db, const std::filesystem::path& state_dir,
                                     TimePoint now, std::string_view upn);
inline Result<std::string> CurrentUserToken(Device& device, std::string_view upn) {
  return CurrentUserToken(device.db(), device.state_dir(), device.clock().Now(), upn);
}
// Sign-out: the user's tokens are forgotten.
Status ForgetUserTokens(storage::Database& db, std::string_view upn);

}  // namespace dm::agent
