// Discovery.svc (GET probe and Discover) and Policy.svc (MS-XCEP GetPolicies).
#include <spdlog/spdlog.h>

#include "agent/enroll/mde2_client.h"
#include "samples/server/mde2_service.h"

namespace dm::server {
namespace {

using tinyxml2::XMLElement;

constexpr soap::Limits kRequestLimits{.max_bytes = 64 * 1024, .max_depth = 16};
constexpr char kDiscoverResponseAction[] =
    "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/"
    "DiscoverResponse";
constexpr char kGetPoliciesResponseAction[] =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/"
    "GetPoliciesResponse";
constexpr char kSha256Oid[] = "2.16.840.1.101.3.4.2.1";

std::string DomainOf(std::string_view email) {
  const size_t at = email.rfind('@');
  return at == std::string_view::npos ? std::string() : AsciiLower(email.substr(at + 1));
}

}  // namespace

transport::HttpResponse HandleDiscovery(ServerContext& ctx, const transport::HttpRequest& request) {
  // The device's probe: a 200 says an enrollment server lives here.
  if (request.method == "GET") return HtmlResponse(200, "");
  SoapRequest p = ReadSoapRequest(request, kRequestLimits, enroll::kActionDiscover,
                                  enroll::kEnrollmentNs, "Discover");
  if (p.fault) return std::move(*p.fault);
  const soap::Message& m = *p.message;
  const std::string& relates = p.relates_to;
  const XMLElement* req = soap::Child(m.payload(), enroll::kEnrollmentNs, "request");
  const std::string email = soap::Text(soap::Child(req, enroll::kEnrollmentNs, "EmailAddress"));
  if (email.empty() || email.size() > 256 || DomainOf(email).empty()) {
    return SoapFault(400, "s:messageformat", "Discover needs an EmailAddress user@domain", relates);
  }
  bool offers_federated = false, offers_onprem = false;
  for (const XMLElement* ap :
       soap::Children(soap::Child(req, enroll::kEnrollmentNs, "AuthPolicies"),
                      enroll::kEnrollmentNs, "AuthPolicy")) {
    offers_federated |= soap::Text(ap) == "Federated";
    offers_onprem |= soap::Text(ap) == "OnPremise";
  }
  // The policy by the UPN's domain, never by the user: an unknown user gets the answer a known
  // one of the same domain gets, so Discovery tells nobody who exists.
  bool federated = false;
  {
    auto lock = ctx.store.Lock();
    auto realm = ctx.store.DomainIsFederated(DomainOf(email));
    if (!realm.ok()) return SoapFault(500, "s:internalservicefault", "internal error", relates);
    federated = *realm;
  }
  if ((federated && !offers_federated) || (!federated && !offers_onprem)) {
    return SoapFault(400, "s:authorization",
                     std::string("this tenant enrolls with the ") +
                         (federated ? "Federated" : "OnPremise") +
                         " policy, which the device does not offer",
                     relates);
  }
  soap::Envelope env(soap::AddressingNamespaces(),
                     AnswerAddressing(kDiscoverResponseAction, relates));
  XMLElement* resp = env.Add(env.body(), "DiscoverResponse");
  resp->SetAttribute("xmlns", enroll::kEnrollmentNs);
  XMLElement* result = env.Add(resp, "DiscoverResult");
  env.Add(result, "AuthPolicy", federated ? "Federated" : "OnPremise");
  env.Add(result, "EnrollmentVersion", "4.0");
  env.Add(result, "EnrollmentPolicyServiceUrl", ctx.base_url + "/EnrollmentServer/Policy.svc");
  env.Add(result, "EnrollmentServiceUrl", ctx.base_url + "/EnrollmentServer/Enrollment.svc");
  if (federated) env.Add(result, "AuthenticationServiceUrl", ctx.idp_base_url + "/adfs/ls/");
  return SoapAnswer(env.Serialize());
}

transport::HttpResponse HandlePolicy(ServerContext& ctx, const transport::HttpRequest& request,
                                     const transport::PeerInfo& peer) {
  SoapRequest p = ReadSoapRequest(request, kRequestLimits, enroll::kActionGetPolicies,
                                  enroll::kPolicyNs, "GetPolicies");
  if (p.fault) return std::move(*p.fault);
  const soap::Message& m = *p.message;
  const std::string& relates = p.relates_to;
  if (auto caller = AuthenticateEnrollment(ctx, m, peer.remote_address); !caller.ok()) {
    spdlog::info("GetPolicies refused: {}", caller.error().message());
    return SoapFault(401, "s:authentication", "the credentials were not accepted", relates);
  }
  soap::Envelope env(soap::AddressingNamespaces(),
                     AnswerAddressing(kGetPoliciesResponseAction, relates));
  env.body()->SetAttribute("xmlns:xsi", soap::kXsiNs.data());
  XMLElement* resp = env.Add(env.body(), "GetPoliciesResponse");
  resp->SetAttribute("xmlns", enroll::kPolicyNs);
  auto nil = [&](XMLElement* parent, const char* name) {
    env.Add(parent, name)->SetAttribute("xsi:nil", "true");
  };
  XMLElement* response = env.Add(resp, "response");
  env.Add(response, "policyID");
  nil(response, "policyFriendlyName");
  nil(response, "nextUpdateHours");
  nil(response, "policiesNotChanged");
  XMLElement* policy = env.Add(env.Add(response, "policies"), "policy");
  env.Add(policy, "policyOIDReference", "0");
  nil(policy, "cAs");
  XMLElement* attrs = env.Add(policy, "attributes");
  env.Add(attrs, "commonName", "dmserver device");
  env.Add(attrs, "policySchema", "3");
  XMLElement* validity = env.Add(attrs, "certificateValidity");
  env.Add(validity, "validityPeriodSeconds", std::to_string(ctx.device_cert_validity.count()));
  env.Add(validity, "renewalPeriodSeconds", std::to_string(60 * 86400));
  XMLElement* perm = env.Add(attrs, "permission");
  env.Add(perm, "enroll", "true");
  env.Add(perm, "autoEnroll", "false");
  XMLElement* key = env.Add(attrs, "privateKeyAttributes");
  env.Add(key, "minimalKeyLength", "2048");
  for (const char* n :
       {"keySpec", "keyUsageProperty", "permissions", "algorithmOIDReference", "cryptoProviders"}) {
    nil(key, n);
  }
  XMLElement* rev = env.Add(attrs, "revision");
  env.Add(rev, "majorRevision", "1");
  env.Add(rev, "minorRevision", "0");
  for (const char* n : {"supersededPolicies", "privateKeyFlags", "subjectNameFlags",
                        "enrollmentFlags", "generalFlags"}) {
    nil(attrs, n);
  }
  env.Add(attrs, "hashAlgorithmOIDReference", "0");
  for (const char* n : {"rARequirements", "keyArchivalAttributes", "extensions"}) nil(attrs, n);
  XMLElement* oid = env.Add(env.Add(resp, "oIDs"), "oID");
  env.Add(oid, "value", kSha256Oid);
  env.Add(oid, "group", "2");
  env.Add(oid, "oIDReferenceID", "0");
  env.Add(oid, "defaultName", "sha256");
  return SoapAnswer(env.Serialize());
}

}  // namespace dm::server
