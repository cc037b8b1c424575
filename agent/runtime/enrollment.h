// The device's enrollment with a management server: where to send OMA-DM sessions, whom to
// trust, the device's TLS client identity and the PIN reset service. Persisted in the agent
// database (the client key sealed under the machine key).
//
// Two ways in: `dmagent enroll --server URL --token T` asks a dmserver-compatible enrollment
// endpoint (the device makes its key pair and CSR; the server issues the certificate), or
// out of band: a management URL, CA bundle, certificate and key provisioned by other means, so
// any OMA-DM server can manage the agent.
#pragma once

#include <optional>
#include <string>

#include "agent/runtime/device.h"
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
  bool enrolled() const { return !management_url.empty(); }
};

Result<EnrollmentState> LoadEnrollment(storage::Database& db);
// The TLS client key, unsealed with the machine key of the state directory.
Result<SecretBytes> LoadDeviceKey(storage::Database& db, const std::filesystem::path& state_dir);
inline Result<SecretBytes> LoadDeviceKey(Device& device) {
  return LoadDeviceKey(device.db(), device.state_dir());
}

struct ServerEnrollRequest {
  std::string server_url;     // https://host:port (the enrollment service)
  std::string ca_bundle_pem;  // trust for the enrollment service; empty: system store
  std::string token;          // the tenant's enrollment token
  std::string upn;            // the enrolling user, optional
};
Status EnrollWithServer(Device& device, const ServerEnrollRequest& request);

struct OutOfBandEnrollment {
  std::string management_url;
  std::string ca_pem;
  std::string device_cert_pem;
  SecretBytes device_key_pem;
  std::string pin_reset_url;             // optional
  std::string pin_reset_public_key_pem;  // optional
};
Status EnrollOutOfBand(Device& device, const OutOfBandEnrollment& enrollment);

}  // namespace dm::agent
