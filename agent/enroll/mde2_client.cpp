#include "agent/enroll/mde2_client.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "agent/enroll/form.h"
#include "agent/enroll/soap.h"
#include "agent/transport/https_client.h"

namespace dm::enroll {
namespace {

using tinyxml2::XMLElement;

constexpr char kEcOid[] = "1.2.840.10045.2.1";

soap::Addressing RequestAddressing(std::string_view action, std::string_view to,
                                   std::string_view message_id) {
  soap::Addressing a;
  a.action = std::string(action);
  a.message_id = std::string(message_id);
  a.reply_to_anonymous = true;
  a.to = std::string(to);
  return a;
}

void AddCredential(soap::Envelope& env, const Credential& cred, std::string_view token_id) {
  if (cred.kind == Credential::Kind::kNone) return;
  XMLElement* sec = env.security();
  if (cred.kind == Credential::Kind::kUsernameToken) {
    XMLElement* ut = env.Add(sec, "wsse:UsernameToken");
    ut->SetAttribute("u:Id", std::string(token_id).c_str());
    env.Add(ut, "wsse:Username", cred.username);
    env.Add(ut, "wsse:Password", cred.secret.view())->SetAttribute("wsse:Type", kPasswordText);
    return;
  }
  XMLElement* bst =
      env.Add(sec, "wsse:BinarySecurityToken", crypto::Base64Encode(cred.secret.span()));
  bst->SetAttribute("ValueType", cred.value_type.c_str());
  bst->SetAttribute("EncodingType", kBase64Binary);
}

void ContextItem(soap::Envelope& env, XMLElement* ac, const char* name, std::string_view value) {
  XMLElement* item = env.Add(ac, "ac:ContextItem");
  item->SetAttribute("Name", name);
  XMLElement* v = env.Add(item, "ac:Value", value);
  // An empty value still needs <ac:Value></ac:Value>, not <ac:Value/>: servers match text.
  if (value.empty()) v->SetText("");
}

// The payload of an answer: parses, turns a fault into its Status, checks the element.
Result<soap::Message> ParseAnswer(std::string_view xml, std::string_view ns,
                                  std::string_view local) {
  DM_ASSIGN_OR_RETURN(soap::Message m, soap::Message::Parse(xml));
  if (const soap::Fault* f = m.fault()) return soap::FaultToStatus(*f);
  if (!soap::Is(m.payload(), ns, local)) {
    return InvalidArgument("unexpected answer: expected " + std::string(local) + ", got " +
                           std::string(m.payload() ? m.payload()->Name() : "no single element"));
  }
  return m;
}

}  // namespace

std::string BuildDiscover(const DeviceContext& d, std::string_view to,
                          std::string_view message_id) {
  soap::Envelope env(soap::AddressingNamespaces(),
                     RequestAddressing(kActionDiscover, to, message_id));
  XMLElement* disc = env.Add(env.body(), "Discover");
  disc->SetAttribute("xmlns", kEnrollmentNs);
  XMLElement* req = env.Add(disc, "request");
  req->SetAttribute("xmlns:i", std::string(soap::kXsiNs).c_str());
  env.Add(req, "EmailAddress", d.email);
  env.Add(req, "RequestVersion", "4.0");
  env.Add(req, "DeviceType", "CIMClient_Windows");
  env.Add(req, "ApplicationVersion", d.application_version);
  env.Add(req, "OSEdition", d.os_edition);
  XMLElement* policies = env.Add(req, "AuthPolicies");
  env.Add(policies, "AuthPolicy", "OnPremise");
  env.Add(policies, "AuthPolicy", "Federated");
  return env.Serialize();
}

std::string BuildGetPolicies(const Credential& cred, std::string_view to,
                             std::string_view message_id, std::string_view token_id) {
  soap::Envelope env(soap::SecurityNamespaces(),
                     RequestAddressing(kActionGetPolicies, to, message_id));
  AddCredential(env, cred, token_id);
  env.body()->SetAttribute("xmlns:xsi", std::string(soap::kXsiNs).c_str());
  env.body()->SetAttribute("xmlns:xsd", "http://www.w3.org/2001/XMLSchema");
  XMLElement* gp = env.Add(env.body(), "GetPolicies");
  gp->SetAttribute("xmlns", kPolicyNs);
  XMLElement* client = env.Add(gp, "client");
  env.Add(client, "lastUpdate")->SetAttribute("xsi:nil", "true");
  env.Add(client, "preferredLanguage")->SetAttribute("xsi:nil", "true");
  env.Add(gp, "requestFilter")->SetAttribute("xsi:nil", "true");
  return env.Serialize();
}

std::string BuildRequestSecurityToken(const Credential& cred, const DeviceContext& d,
                                      std::string_view csr_der_base64, std::string_view to,
                                      std::string_view message_id, std::string_view token_id) {
  soap::Envelope env(soap::SecurityNamespaces(), RequestAddressing(kActionRst, to, message_id));
  AddCredential(env, cred, token_id);
  XMLElement* rst = env.Add(env.body(), "wst:RequestSecurityToken");
  env.Add(rst, "wst:TokenType", kDeviceEnrollmentToken);
  env.Add(rst, "wst:RequestType", kIssue);
  XMLElement* bst = env.Add(rst, "wsse:BinarySecurityToken", csr_der_base64);
  bst->SetAttribute("ValueType", kPkcs10);
  bst->SetAttribute("EncodingType", kBase64Binary);
  XMLElement* ac = env.Add(rst, "ac:AdditionalContext");
  ac->SetAttribute("xmlns", std::string(soap::kAcNs).c_str());
  auto flag = [](bool b) { return b ? "true" : "false"; };
  ContextItem(env, ac, "UXInitiated", flag(d.ux_initiated));
  ContextItem(env, ac, "HWDevID", d.hw_dev_id);
  ContextItem(env, ac, "Locale", d.locale);
  ContextItem(env, ac, "TargetedUserLoggedIn", flag(d.user_logged_in));
  ContextItem(env, ac, "OSEdition", d.os_edition);
  ContextItem(env, ac, "DeviceName", d.device_name);
  for (const std::string& mac : d.macs) ContextItem(env, ac, "MAC", mac);
  ContextItem(env, ac, "DeviceID", d.device_id);
  ContextItem(env, ac, "EnrollmentType", d.enrollment_type);
  ContextItem(env, ac, "DeviceType", "CIMClient_Windows");
  ContextItem(env, ac, "OSVersion", d.os_version);
  ContextItem(env, ac, "ApplicationVersion", d.application_version);
  ContextItem(env, ac, "NotInOobe", flag(d.not_in_oobe));
  return env.Serialize();
}

Result<DiscoverResult> ParseDiscoverResponse(std::string_view xml) {
  DM_ASSIGN_OR_RETURN(soap::Message m, ParseAnswer(xml, kEnrollmentNs, "DiscoverResponse"));
  const XMLElement* r = soap::Child(m.payload(), kEnrollmentNs, "DiscoverResult");
  if (!r) return InvalidArgument("DiscoverResponse without DiscoverResult");
  DiscoverResult out;
  out.auth_policy = soap::Text(soap::Child(r, kEnrollmentNs, "AuthPolicy"));
  out.enrollment_version = soap::Text(soap::Child(r, kEnrollmentNs, "EnrollmentVersion"));
  out.policy_url = soap::Text(soap::Child(r, kEnrollmentNs, "EnrollmentPolicyServiceUrl"));
  out.enrollment_url = soap::Text(soap::Child(r, kEnrollmentNs, "EnrollmentServiceUrl"));
  out.authentication_url = soap::Text(soap::Child(r, kEnrollmentNs, "AuthenticationServiceUrl"));
  if (out.enrollment_url.empty())
    return InvalidArgument("DiscoverResult has no EnrollmentServiceUrl");
  if (out.auth_policy != "OnPremise" && out.auth_policy != "Federated") {
    return Unimplemented("unsupported AuthPolicy '" + out.auth_policy + "'");
  }
  if (out.auth_policy == "Federated" && out.authentication_url.empty()) {
    return InvalidArgument("Federated DiscoverResult has no AuthenticationServiceUrl");
  }
  return out;
}

Result<PolicyResult> ParseGetPoliciesResponse(std::string_view xml) {
  DM_ASSIGN_OR_RETURN(soap::Message m, ParseAnswer(xml, kPolicyNs, "GetPoliciesResponse"));
  const XMLElement* resp = m.payload();
  const XMLElement* policy = soap::Path(resp, kPolicyNs, {"response", "policies", "policy"});
  if (!policy) return InvalidArgument("GetPoliciesResponse names no policy");
  const XMLElement* attrs = soap::Child(policy, kPolicyNs, "attributes");
  PolicyResult out;
  const std::string min =
      soap::Text(soap::Path(attrs, kPolicyNs, {"privateKeyAttributes", "minimalKeyLength"}));
  if (!min.empty()) {
    try {
      out.minimal_key_length = std::stoi(min);
    } catch (...) {
      return InvalidArgument("minimalKeyLength '" + min + "' is not a number");
    }
  }
  auto oid_value = [&](const std::string& ref) -> std::string {
    if (ref.empty()) return {};
    for (const XMLElement* o :
         soap::Children(soap::Child(resp, kPolicyNs, "oIDs"), kPolicyNs, "oID")) {
      if (soap::Text(soap::Child(o, kPolicyNs, "oIDReferenceID")) == ref) {
        return soap::Text(soap::Child(o, kPolicyNs, "value"));
      }
    }
    return {};
  };
  out.hash_oid = oid_value(soap::Text(soap::Child(attrs, kPolicyNs, "hashAlgorithmOIDReference")));
  out.allows_ec =
      oid_value(soap::Text(soap::Path(
          attrs, kPolicyNs, {"privateKeyAttributes", "algorithmOIDReference"}))) == kEcOid;
  return out;
}

Result<std::string> ParseRstResponse(std::string_view xml) {
  DM_ASSIGN_OR_RETURN(soap::Message m,
                      ParseAnswer(xml, soap::kWstNs, "RequestSecurityTokenResponseCollection"));
  const XMLElement* rstr = soap::Child(m.payload(), soap::kWstNs, "RequestSecurityTokenResponse");
  const XMLElement* bst = soap::Child(soap::Child(rstr, soap::kWstNs, "RequestedSecurityToken"),
                                      soap::kWsseNs, "BinarySecurityToken");
  if (!bst) return InvalidArgument("RSTRC without RequestedSecurityToken/BinarySecurityToken");
  const char* vt = soap::Attr(bst, "ValueType");
  if (!vt || std::string_view(vt) != kProvisionDoc) {
    return InvalidArgument("RSTRC token is not a DeviceEnrollmentProvisionDoc");
  }
  std::string b64;
  for (char c : soap::Text(bst)) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') b64.push_back(c);
  }
  auto doc = crypto::Base64Decode(b64);
  if (!doc.ok()) return InvalidArgument("the provisioning document is not base64");
  return std::string(doc->begin(), doc->end());
}

Result<Bytes> BuildCsr(const SecretBytes& key_pem, std::string_view common_name,
                       std::string_view device_id) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) return InvalidArgument("CSR: the private key does not parse");
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), X509_REQ_free);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn(common_name);
  bool ok = X509_REQ_set_version(req.get(), 0) == 1 &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                       0) == 1 &&
            X509_REQ_set_pubkey(req.get(), key.get()) == 1;
  // 1.3.6.1.4.1.311.66.1.0: the DeviceID as raw bytes, as Windows sends it.
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(
      OBJ_txt2obj(kDeviceIdExtensionOid, 1), ASN1_OBJECT_free);
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(
      ASN1_OCTET_STRING_new(), ASN1_OCTET_STRING_free);
  ok = ok && oid && value &&
       ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<const unsigned char*>(device_id.data()),
                             static_cast<int>(device_id.size())) == 1;
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  X509_EXTENSION* ext =
      ok ? X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get()) : nullptr;
  ok = ok && ext && exts && sk_X509_EXTENSION_push(exts, ext) > 0;
  if (!ok && ext) X509_EXTENSION_free(ext);
  ok = ok && X509_REQ_add_extensions(req.get(), exts) == 1;
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  ok = ok && X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) return Internal("CSR: OpenSSL could not build the request");
  const int len = i2d_X509_REQ(req.get(), nullptr);
  if (len <= 0) return Internal("CSR: cannot encode the request");
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  i2d_X509_REQ(req.get(), &p);
  return der;
}

Result<SecretBytes> FederatedSignIn(const HttpGet& get, const HttpPostForm& post,
                                    std::string_view auth_url, std::string_view callback,
                                    std::string_view upn, const SecretBytes& password,
                                    const SecretBytes& otp) {
  const std::string sep = auth_url.find('?') == std::string_view::npos ? "?" : "&";
  const std::string url = std::string(auth_url) + sep + "appru=" + UrlEncode(callback) +
                          "&login_hint=" + UrlEncode(upn);
  DM_ASSIGN_OR_RETURN(FormPage page, get(url));
  if (page.status != 200) {
    return Unavailable("sign-in page " + std::string(auth_url) + " answered HTTP " +
                       std::to_string(page.status));
  }
  DM_ASSIGN_OR_RETURN(HtmlForm form, ParseHtmlForm(page.body));
  DM_ASSIGN_OR_RETURN(std::string action, ResolveUrl(url, form.action));
  SecretBytes body = EncodeForm(form, upn, password, otp);
  DM_ASSIGN_OR_RETURN(FormPage answer, post(action, body));
  if (answer.status != 200) {
    return Unauthenticated("sign-in at " + action + " answered HTTP " +
                           std::to_string(answer.status));
  }
  auto done = ParseHtmlForm(answer.body);
  if (!done.ok()) return Unauthenticated("sign-in at " + action + " did not return a token form");
  for (auto& [n, v] : done->fields) {
    if (n == "wresult" && !v.empty()) return SecretBytes(v);
  }
  return Unauthenticated("sign-in at " + action + " refused the credentials (no wresult)");
}

}  // namespace dm::enroll
