// The device's enrollment with a management server: where to send OMA-DM sessions, whom to
// trust, the device's TLS client identity and the PIN reset service. Persisted in the agent
// database (the client key sealed under the machine key).
//
// Two ways in: Windows enrollment (MS-MDE2) with any server that speaks it, dmserver included
// (the device makes its key pair and CSR; the server issues the certificate and a provisioning
// document), or out of band: a management URL, CA bundle, certificate and key provisioned by
// other means, for OMA-DM servers without an enrollment service.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "agent/runtime/device.h"
#include "agent/transport/https_client.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::agent {

struct EnrollmentState {
  std::string management_url;
  std::string tenant_id;
  std::string tenant_name;
  std::string ca_pem;           // trust anchors for the management server
  std::string device_cert_pem;  // TLS client certificate (CN = DevId)
  std::string pin_reset_url;    // POST .../recover; empty: no networked PIN reset service
  std::string pin_reset_public_key_pem;
  std::string federation_login_url;
  std::string hello_cert_url;  // certifies Hello keys; empty: self-signed
  std::string user_token_url;  // OAuth 2.0 token endpoint for users' tokens; empty: none
  // MS-MDE2 (empty for the other ways in):
  std::string kind;                 // "ms-mde2", "" (dmserver JSON or out of band)
  std::string provider_id;          // DMClient/Provider/{ProviderID}
  std::string anchor_pem;           // CertificateStore/Root/System of the provisioning document
  bool trust_system_store = false;  // the enrollment TLS trust was the system store
  std::string hw_dev_id;
  std::string enrollment_type;  // Full | Device
  int64_t enrolled_at = 0;      // Unix seconds
  int renew_period_days = 0;
  int renew_retry_days = 0;
  bool enrolled() const { return !management_url.empty(); }
};

Result<EnrollmentState> LoadEnrollment(storage::Database& db);
// Mutual TLS to one of the enrolled server's services (management, PIN reset, Hello
// certificates, user tokens) at `url`: the enrollment's trust anchors (and the system store
// when enrollment trusted it), the device's certificate and its unsealed key.
Result<transport::HttpsClientOptions> ServiceClientOptions(storage::Database& db,
                                                           const std::filesystem::path& state_dir,
                                                           const EnrollmentState& enrollment,
                                                           std::string url);
// The TLS client key, unsealed with the machine key of the state directory.
Result<SecretBytes> LoadDeviceKey(storage::Database& db, const std::filesystem::path& state_dir);
inline Result<SecretBytes> LoadDeviceKey(Device& device) {
  return LoadDeviceKey(device.db(), device.state_dir());
}

struct OutOfBandEnrollment {
  std::string management_url;
  std::string ca_pem;
  std::string device_cert_pem;
  SecretBytes device_key_pem;
  std::string pin_reset_url;             // optional
  std::string pin_reset_public_key_pem;  // optional
};
Status EnrollOutOfBand(Device& device, const OutOfBandEnrollment& enrollment);

// Windows enrollment (MS-MDE2): Discovery, MS-XCEP GetPolicies, MS-WSTEP RequestSecurityToken,
// then the provisioning document applied in one transaction. A device already enrolled
// presents its current certificate over mutual TLS.
struct MsMde2EnrollRequest {
  std::string email;  // UPN, user@domain
  std::string
      discovery_url;  // empty: https://enterpriseenrollment.<domain>/EnrollmentServer/Discovery.svc
  std::string ca_bundle_pem;  // the enrollment server's TLS trust; empty: the system store
  std::string auth;           // "" (as AuthPolicy says), "onprem", "federated", "token"
  SecretBytes password;
  SecretBytes otp;
  SecretBytes token;
  std::string enrollment_type = "Full";  // or "Device"
  // Asked for "Password" / "Verification code" when needed and not given (a terminal prompt).
  std::function<Result<SecretBytes>(std::string_view what)> ask_secret;
};
Status EnrollMsMde2(Device& device, const MsMde2EnrollRequest& request);

// The Discovery URL guessed from a UPN's domain.
Result<std::string> DiscoveryUrlFor(std::string_view email);

// Applies a provisioning document for the key of the CSR (the last step of EnrollMsMde2; tests
// call it with documents of their own). Nothing is written unless all of it is valid.
Status ApplyProvisioningDoc(Device& device, std::string_view doc_xml, const SecretBytes& key_pem,
                            const std::string& enrollment_ca_pem, const std::string& hw_dev_id,
                            const std::string& enrollment_type);

// Forgets the enrollment (settings and the DMClient provider) in one transaction. Users'
// containers are not touched.
Status RemoveEnrollment(Device& device);

}  // namespace dm::agent
