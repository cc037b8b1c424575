// The device side of MS-MDE2: Discovery, MS-XCEP GetPolicies and MS-WSTEP
// RequestSecurityToken. The Build* functions make the exact bodies a Windows device sends (the
// golden tests compare them with real ones); Enroll() runs the three steps over HTTPS,
// following the URLs each answer names, and returns the provisioning document.
// Every error names the step and the URL.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::enroll {

inline constexpr char kActionDiscover[] =
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover";
inline constexpr char kActionGetPolicies[] =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies";
inline constexpr char kActionRst[] =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep";
inline constexpr char kUserTokenType[] =
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/"
    "DeviceEnrollmentUserToken";
inline constexpr char kJwtTokenType[] = "urn:ietf:params:oauth:token-type:jwt";
inline constexpr char kDeviceIdExtensionOid[] = "1.3.6.1.4.1.311.66.1.0";
// Namespaces and URIs both sides of the exchange name.
inline constexpr char kEnrollmentNs[] =
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment";
inline constexpr char kPolicyNs[] =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy";
inline constexpr char kWstepNs[] = "http://schemas.microsoft.com/windows/pki/2009/01/enrollment";
inline constexpr char kPasswordText[] =
    "http://docs.oasis-open.org/wss/2004/01/"
    "oasis-200401-wss-username-token-profile-1.0#PasswordText";
inline constexpr char kBase64Binary[] =
    "http://docs.oasis-open.org/wss/2004/01/"
    "oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary";
inline constexpr char kPkcs10[] =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10";
inline constexpr char kDeviceEnrollmentToken[] =
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken";
inline constexpr char kIssue[] = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue";
inline constexpr char kProvisionDoc[] =
    "http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/"
    "DeviceEnrollmentProvisionDoc";

// What goes into wsse:Security.
struct Credential {
  enum class Kind { kNone, kUsernameToken, kBinaryToken };
  Kind kind = Kind::kNone;
  std::string username;                     // UsernameToken: the UPN
  SecretBytes secret;                       // the password, or the token (sent base64)
  std::string value_type = kUserTokenType;  // BinaryToken
};

struct DeviceContext {
  std::string email;  // UPN
  std::string device_id;
  std::string hw_dev_id;
  std::string device_name;
  std::vector<std::string> macs;  // "00-0C-29-51-60-9D"
  std::string locale = "en-US";
  std::string os_edition = "72";
  std::string os_version;
  std::string application_version;
  std::string enrollment_type = "Full";  // or "Device"
  bool ux_initiated = true;
  bool user_logged_in = true;
  bool not_in_oobe = false;
};

std::string BuildDiscover(const DeviceContext& device, std::string_view to,
                          std::string_view message_id);
std::string BuildGetPolicies(const Credential& cred, std::string_view to,
                             std::string_view message_id, std::string_view token_id);
std::string BuildRequestSecurityToken(const Credential& cred, const DeviceContext& device,
                                      std::string_view csr_der_base64, std::string_view to,
                                      std::string_view message_id, std::string_view token_id);

struct DiscoverResult {
  std::string auth_policy;  // OnPremise | Federated | Certificate
  std::string enrollment_version;
  std::string policy_url;
  std::string enrollment_url;
  std::string authentication_url;  // Federated
};
Result<DiscoverResult> ParseDiscoverResponse(std::string_view xml);

struct PolicyResult {
  int minimal_key_length = 2048;
  std::string hash_oid;  // empty when the policy names none
  bool allows_ec = false;
};
Result<PolicyResult> ParseGetPoliciesResponse(std::string_view xml);

// The decoded wap-provisioningdoc of an RSTRC.
Result<std::string> ParseRstResponse(std::string_view xml);

// A PKCS#10 (DER) signed with SHA-256: subject CN = `common_name`, the DeviceID extension.
Result<Bytes> BuildCsr(const SecretBytes& key_pem, std::string_view common_name,
                       std::string_view device_id);

// How the flow authenticates. `auth`: "" (as the server's AuthPolicy says), "onprem",
// "federated" or "token".
struct EnrollParams {
  DeviceContext device;
  std::string discovery_url;
  std::string ca_bundle_pem;    // enrollment server trust; empty: the system store
  std::string client_cert_pem;  // present when re-enrolling (mutual TLS)
  SecretBytes client_key_pem;
  std::string auth;
  SecretBytes password;
  SecretBytes otp;
  SecretBytes token;
  // Asked for the password ("Password") and one-time code ("Verification code") when the
  // chosen authentication needs them and they are empty; null: they stay empty.
  std::function<Result<SecretBytes>(std::string_view what)> ask_secret;
  std::string federated_callback = "ms-app://windows.immersivecontrolpanel";
  crypto::Random* random = nullptr;  // null: the OS CSPRNG
};

struct EnrollOutcome {
  std::string provisioning_doc_xml;
  SecretBytes device_key_pem;  // the key of the CSR
  DiscoverResult discovery;
};

Result<EnrollOutcome> Enroll(const EnrollParams& params);

// The Federated sign-in: GET <auth_url>?appru=..&login_hint=.., POST the form's fields
// (username, password, otp) to its action, read the hidden `wresult` of the answer page.
// `get`/`post` are the HTTP calls (injected so the flow's client and its trust are reused).
struct FormPage {
  int status = 0;
  std::string content_type;
  std::string body;
};
using HttpGet = std::function<Result<FormPage>(const std::string& url)>;
using HttpPostForm =
    std::function<Result<FormPage>(const std::string& url, const SecretBytes& form_body)>;
Result<SecretBytes> FederatedSignIn(const HttpGet& get, const HttpPostForm& post,
                                    std::string_view auth_url, std::string_view callback,
                                    std::string_view upn, const SecretBytes& password,
                                    const SecretBytes& otp);

}  // namespace dm::enroll
