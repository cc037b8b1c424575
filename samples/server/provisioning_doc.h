// The wap-provisioningdoc dmserver answers an MS-WSTEP enrollment with: the CA that issued the
// device certificate (CertificateStore/Root/System), the certificate itself (My/User for a Full
// enrollment, My/System for Device), the renewal settings, the w7 APPLICATION (management URL,
// provider, retry and backoff) and the tenant's DMClient poll schedule.
#pragma once

#include <string>

#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

inline constexpr char kProviderId[] = "dmserver";

struct ProvisioningParams {
  std::string ca_cert_pem;
  std::string device_cert_pem;
  std::string enrollment_type = "Full";  // Full -> My/User, Device -> My/System
  std::string management_url;
  std::string renew_url;  // WSTEP/Renew ServerURL: the enrollment service
  std::string name;       // APPLICATION NAME: the tenant's display name
  PollSchedule poll;
  int renew_period_days = 60;
  int renew_retry_days = 4;
};

// InvalidArgument when a certificate does not parse.
Result<std::string> BuildProvisioningDoc(const ProvisioningParams& params);

}  // namespace dm::server
