// The wap-provisioningdoc an MS-WSTEP enrollment answers with, parsed into what the agent
// applies: trust anchors, the device certificate, the w7 APPLICATION (management URL, provider,
// OMA-DM application credentials), the DMClient poll schedule and the renewal settings.
// Unknown characteristics are kept by path and logged, never fatal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "base/status.h"

namespace dm::enroll {

// One APPAUTH characteristic (OMA-DM application authentication).
struct AppAuth {
  std::string level;  // CLIENT (CLCRED) or APPSRV (SRVCRED)
  std::string type;   // DIGEST, BASIC, ...
  std::string name;
  SecretBytes secret;
  std::string data;  // nonce
};

struct Renewal {
  bool robo_support = false;
  int renew_period_days = 0;
  int retry_interval_days = 0;
};

// DMClient/Provider/<id>/Poll (minutes; a count of 0 repeats forever). Defaults as the DDF's.
struct PollValues {
  int interval_first_min = 15;
  int count_first = 10;
  int interval_second_min = 0;
  int count_second = 0;
  int interval_remaining_min = 0;
  int count_remaining = 0;
  bool poll_on_login = false;
  bool all_users_poll_on_first_login = false;
};

struct ProvisioningDoc {
  std::vector<std::string> root_anchors_pem;  // CertificateStore/Root/System
  std::string device_cert_pem;                // CertificateStore/My/User or My/System
  std::string device_cert_store;              // "User" or "System"
  std::string management_url;                 // APPLICATION ADDR
  std::string provider_id;                    // PROVIDER-ID, decoded
  std::string name;
  int conn_retry_freq = 0;
  int initial_backoff_ms = 0;
  int max_backoff_ms = 0;
  std::vector<AppAuth> app_auth;
  PollValues poll;  // server values, or defaults when it sent none or all zeros
  bool poll_defaulted = false;
  Renewal renewal;
  std::vector<std::string> unknown;  // "CertificateStore/Foo", ...
};

// InvalidArgument for anything that is not a usable document (no ADDR, no https ADDR, no
// PROVIDER-ID, no device certificate, a certificate that does not decode).
Result<ProvisioningDoc> ParseProvisioningDoc(std::string_view xml);

// OK when the device certificate carries the public key of `key_pem`.
Status CheckDeviceKeyPairing(const ProvisioningDoc& doc, const SecretBytes& key_pem);

// PEM of a base64 DER certificate (checked to parse).
Result<std::string> CertificatePemFromBase64Der(std::string_view b64);

}  // namespace dm::enroll
