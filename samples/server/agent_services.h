// What dmserver configures in the agent's own CSP (./Vendor/MSFT/DMAgent, csp/dmagent_csp.h):
// the compliance report subscription and where the agent finds the server's extra services.
// The values reach the device as Replace commands through the command queue, so their
// Statuses are recorded like a profile's; a device is sent a value again only when it differs
// from the last one queued for it (a server restarted under another URL).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

inline constexpr char kComplianceAlertNode[] =
    "./Vendor/MSFT/DMAgent/Subscriptions/ComplianceAlert";
inline constexpr char kPinResetUrlNode[] = "./Vendor/MSFT/DMAgent/Services/PinResetUrl";
inline constexpr char kPinResetPublicKeyNode[] = "./Vendor/MSFT/DMAgent/Services/PinResetPublicKey";
inline constexpr char kHelloCertificateUrlNode[] =
    "./Vendor/MSFT/DMAgent/Services/HelloCertificateUrl";
inline constexpr char kFederationLoginUrlNode[] =
    "./Vendor/MSFT/DMAgent/Services/FederationLoginUrl";
inline constexpr char kUserTokenUrlNode[] = "./Vendor/MSFT/DMAgent/Services/UserTokenUrl";

struct AgentServices {
  std::string pin_reset_url;         // POST .../recover
  std::string pin_reset_public_key;  // SPKI PEM
  std::string hello_certificate_url;
  std::string federation_login_url;
  std::string user_token_url;  // POST .../oauth2/token
};

// The services of a server reachable at `base_url` (https://host:port).
AgentServices AgentServicesAt(std::string_view base_url, std::string_view pin_reset_public_key);

// Queues a Replace for each of the six nodes whose value differs from the last one queued for
// the device (all six at its first session). Caller holds the lock.
Status QueueAgentServices(Store& store, std::string_view dev_id, const AgentServices& services);

}  // namespace dm::server
