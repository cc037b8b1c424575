// Enroll(): the three MS-MDE2 steps over HTTPS, following the URLs each answer gives.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/enroll/mde2_client.h"
#include "agent/enroll/soap.h"
#include "agent/transport/https_client.h"

namespace dm::enroll {
namespace {

constexpr int kMaxRsaBits = 8192;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string ContentType(const transport::HttpResponse& r) {
  return r.Header("Content-Type").value_or("");
}

// POSTs one SOAP request; the answer's body when it is a 200 SOAP answer, else an error naming
// the step and the URL (a SOAP fault's code and reason when there is one).
Result<std::string> SoapPost(transport::HttpsClient& client, std::string_view step,
                             const std::string& url, const std::string& body) {
  const std::string where = std::string(step) + " at " + url;
  auto resp = client.PostOnce(url, body, soap::kContentType);
  if (!resp.ok()) return resp.status().WithContext(where);
  const std::string ct = ContentType(*resp);
  if (!StartsWith(ct, "application/soap+xml")) {
    return InvalidArgument(where + ": HTTP " + std::to_string(resp->status) +
                           " with content type '" + ct + "', not application/soap+xml");
  }
  if (resp->status != 200) {
    auto m = soap::Message::Parse(resp->body);
    if (m.ok() && m->fault()) return soap::FaultToStatus(*m->fault()).WithContext(where);
    return transport::HttpStatusToStatus(*resp).WithContext(where + ": HTTP " +
                                                            std::to_string(resp->status));
  }
  return std::move(resp->body);
}

Result<std::string> NewId(crypto::Random& random) { return soap::NewMessageId(random); }

Result<Credential> MakeCredential(const EnrollParams& p, const DiscoverResult& disc,
                                  transport::HttpsClient& client) {
  std::string auth = p.auth;
  if (auth.empty()) auth = disc.auth_policy == "Federated" ? "federated" : "onprem";
  Credential cred;
  auto secret = [&](const SecretBytes& given, std::string_view what) -> Result<SecretBytes> {
    if (!given.empty() || !p.ask_secret) return given.Clone();
    return p.ask_secret(what);
  };
  if (auth == "onprem") {
    cred.kind = Credential::Kind::kUsernameToken;
    cred.username = p.device.email;
    DM_ASSIGN_OR_RETURN(cred.secret, secret(p.password, "Password"));
  } else if (auth == "federated") {
    if (disc.authentication_url.empty()) {
      return FailedPrecondition("Federated sign-in: the server named no AuthenticationServiceUrl");
    }
    auto get = [&](const std::string& url) -> Result<FormPage> {
      DM_ASSIGN_OR_RETURN(transport::HttpResponse r, client.GetOnce(url));
      return FormPage{r.status, ContentType(r), std::move(r.body)};
    };
    auto post = [&](const std::string& url, const SecretBytes& form) -> Result<FormPage> {
      DM_ASSIGN_OR_RETURN(transport::HttpResponse r,
                          client.PostOnce(url, form.view(), "application/x-www-form-urlencoded"));
      return FormPage{r.status, ContentType(r), std::move(r.body)};
    };
    DM_ASSIGN_OR_RETURN(SecretBytes password, secret(p.password, "Password"));
    DM_ASSIGN_OR_RETURN(SecretBytes otp, secret(p.otp, "Verification code"));
    auto token = FederatedSignIn(get, post, disc.authentication_url, p.federated_callback,
                                 p.device.email, password, otp);
    if (!token.ok()) return token.status().WithContext("Federated sign-in");
    cred.kind = Credential::Kind::kBinaryToken;
    cred.secret = std::move(*token);
    cred.value_type = kUserTokenType;
  } else if (auth == "token") {
    if (p.token.empty()) return InvalidArgument("--auth token needs a token");
    cred.kind = Credential::Kind::kBinaryToken;
    cred.secret = p.token.Clone();
    cred.value_type = crypto::LooksLikeJwt(p.token.view()) ? kJwtTokenType : kUserTokenType;
  } else {
    return InvalidArgument("unknown auth '" + auth + "' (onprem, federated or token)");
  }
  return cred;
}

}  // namespace

Result<EnrollOutcome> Enroll(const EnrollParams& p) {
  crypto::Random& random = p.random ? *p.random : crypto::OsRandom();
  transport::HttpsClientOptions o;
  o.server_url = p.discovery_url;
  o.ca_bundle_pem = p.ca_bundle_pem;
  o.client_cert_pem = p.client_cert_pem;
  o.client_key_pem = p.client_key_pem.Clone();
  o.user_agent = "ENROLLClient";
  o.retry.max_attempts = 1;  // interactive: the person retries
  DM_ASSIGN_OR_RETURN(auto client, transport::HttpsClient::Create(std::move(o)));

  // 1. Discovery: the GET probe, then Discover.
  auto probe = client->GetOnce(p.discovery_url);
  if (!probe.ok()) return probe.status().WithContext("Discovery GET at " + p.discovery_url);
  if (probe->status != 200) {
    spdlog::warn("Discovery GET at {} answered HTTP {}; trying the POST", p.discovery_url,
                 probe->status);
  }
  DM_ASSIGN_OR_RETURN(std::string id, NewId(random));
  DM_ASSIGN_OR_RETURN(std::string xml, SoapPost(*client, "Discovery", p.discovery_url,
                                                BuildDiscover(p.device, p.discovery_url, id)));
  auto disc = ParseDiscoverResponse(xml);
  if (!disc.ok()) return disc.status().WithContext("Discovery at " + p.discovery_url);
  spdlog::info("enrollment server: AuthPolicy {}, policy {}, enrollment {}", disc->auth_policy,
               disc->policy_url, disc->enrollment_url);

  DM_ASSIGN_OR_RETURN(Credential cred, MakeCredential(p, *disc, *client));
  DM_ASSIGN_OR_RETURN(std::string token_id, NewId(random));
  token_id = "uuid-" + token_id.substr(9) + "-1";

  // 2. MS-XCEP GetPolicies: the key the CA wants.
  PolicyResult policy;
  if (disc->policy_url.empty()) {
    spdlog::warn("Discovery named no EnrollmentPolicyServiceUrl; using RSA 2048");
  } else {
    DM_ASSIGN_OR_RETURN(id, NewId(random));
    DM_ASSIGN_OR_RETURN(xml, SoapPost(*client, "GetPolicies", disc->policy_url,
                                      BuildGetPolicies(cred, disc->policy_url, id, token_id)));
    auto parsed = ParseGetPoliciesResponse(xml);
    if (!parsed.ok()) return parsed.status().WithContext("GetPolicies at " + disc->policy_url);
    policy = *parsed;
  }
  // RSA with SHA-256 always (servers in the wild sign only RSA requests); hash OID logged.
  const int bits = std::max(2048, policy.minimal_key_length);
  if (bits > kMaxRsaBits) {
    return Unimplemented("GetPolicies at " + disc->policy_url + ": minimalKeyLength " +
                         std::to_string(bits) + " is above " + std::to_string(kMaxRsaBits));
  }
  spdlog::info("enrollment key: RSA {} with SHA-256 (policy hash OID {})", bits,
               policy.hash_oid.empty() ? "none" : policy.hash_oid);
  EnrollOutcome out;
  DM_ASSIGN_OR_RETURN(out.device_key_pem, crypto::GenerateRsaPrivateKey(bits));
  DM_ASSIGN_OR_RETURN(Bytes csr,
                      BuildCsr(out.device_key_pem, p.device.device_id, p.device.device_id));

  // 3. MS-WSTEP RequestSecurityToken.
  DM_ASSIGN_OR_RETURN(id, NewId(random));
  DM_ASSIGN_OR_RETURN(xml,
                      SoapPost(*client, "RequestSecurityToken", disc->enrollment_url,
                               BuildRequestSecurityToken(cred, p.device, crypto::Base64Encode(csr),
                                                         disc->enrollment_url, id, token_id)));
  auto doc = ParseRstResponse(xml);
  if (!doc.ok()) {
    return doc.status().WithContext("RequestSecurityToken at " + disc->enrollment_url);
  }
  out.provisioning_doc_xml = std::move(*doc);
  out.discovery = std::move(*disc);
  return out;
}

}  // namespace dm::enroll
