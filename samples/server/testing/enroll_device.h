// Test support: a device enrolled through dmserver's real Enrollment.svc handler (in process,
// DmServer::Handle), for tests that need an enrolled device and care about what comes after.
#pragma once

#include <string>
#include <string_view>

#include "agent/enroll/mde2_client.h"
#include "agent/transport/https_server.h"
#include "base/secret.h"
#include "base/status.h"
#include "samples/server/server.h"

namespace dm::server::testing {

struct EnrolledDevice {
  std::string cert_pem;
  SecretBytes key_pem;
  transport::PeerInfo peer;  // what the TLS layer reports for this device's connections
};

// The body of an MS-WSTEP RequestSecurityToken to `server` for `device` (its DeviceID, HWDevID
// and email), with a CSR of `key_pem` whose subject is `csr_cn` (default: the DeviceID).
Result<std::string> RstBody(const DmServer& server, const enroll::Credential& cred,
                            const enroll::DeviceContext& device, const SecretBytes& key_pem,
                            std::string_view csr_cn = {});

// An MS-WSTEP RequestSecurityToken for `dev_id` with the tenant's bulk token (a fresh EC key).
Result<EnrolledDevice> EnrollWithBulkToken(DmServer& server, std::string_view dev_id,
                                           std::string_view bulk_token);

}  // namespace dm::server::testing
