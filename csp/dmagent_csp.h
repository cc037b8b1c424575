// What the DMAgent CSP (./Vendor/MSFT/DMAgent) lets a server configure, for the agent's
// runtime to read. Device scope:
//   Subscriptions/ComplianceAlert  int  Get/Replace; 1 = send the report as a 1226 alert
//                                       whenever it changes, 0 (default) = never send it
//   Services/PinResetUrl           chr  https URL of the PIN reset service's POST .../recover
//   Services/PinResetPublicKey     chr  the service's RSA public key (SPKI PEM)
//   Services/HelloCertificateUrl   chr  https URL that certifies Hello keys
//   Services/FederationLoginUrl    chr  https URL of the federation sign-in page
//   Services/UserTokenUrl          chr  https URL (OAuth 2.0 token endpoint) of the user
//                                       tokens the management session carries
// The Services leaves (Get/Replace/Delete) are kept in the settings table under the keys
// below, where enrollment also writes them; a Replace of PinResetPublicKey installs the key in
// the container store in the same transaction. A leaf exists in the tree once a server set it;
// values only enrollment wrote are used by the agent but not shown there.
#pragma once

#include "base/status.h"

namespace dm::storage {
class Database;
}

namespace dm::csp {

inline constexpr char kComplianceAlertUri[] = "./Vendor/MSFT/DMAgent/Subscriptions/ComplianceAlert";
inline constexpr char kPinResetUrlUri[] = "./Vendor/MSFT/DMAgent/Services/PinResetUrl";
inline constexpr char kPinResetPublicKeyUri[] = "./Vendor/MSFT/DMAgent/Services/PinResetPublicKey";
inline constexpr char kHelloCertificateUrlUri[] =
    "./Vendor/MSFT/DMAgent/Services/HelloCertificateUrl";
inline constexpr char kFederationLoginUrlUri[] =
    "./Vendor/MSFT/DMAgent/Services/FederationLoginUrl";
inline constexpr char kUserTokenUrlUri[] = "./Vendor/MSFT/DMAgent/Services/UserTokenUrl";

// settings-table keys of the Services leaves.
inline constexpr char kPinResetUrlKey[] = "enrollment.pin_reset_url";
inline constexpr char kPinResetPublicKeyKey[] = "enrollment.pin_reset_public_key_pem";
inline constexpr char kHelloCertUrlKey[] = "enrollment.hello_cert_url";
inline constexpr char kFederationLoginUrlKey[] = "enrollment.federation_login_url";
inline constexpr char kUserTokenUrlKey[] = "enrollment.user_token_url";

// Limits on what a server may store there.
inline constexpr size_t kMaxServiceUrlLength = 2048;
inline constexpr size_t kMaxPublicKeyPemLength = 16 * 1024;

// True when the server asked for the compliance report alert (Subscriptions/ComplianceAlert
// is 1).
Result<bool> ComplianceAlertSubscribed(storage::Database& db);

}  // namespace dm::csp
