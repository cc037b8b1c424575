// MS-MDE2 requests read, who they prove to be (the wsse:Security header), and SOAP answers.
#include <spdlog/spdlog.h>

#include "agent/enroll/mde2_client.h"
#include "samples/server/mde2_service.h"
#include "samples/server/user_token.h"

namespace dm::server {
namespace {

constexpr size_t kMaxUsername = 256;
constexpr size_t kMaxSecret = 8192;

Result<EnrollCaller> ByPassword(ServerContext& ctx, const tinyxml2::XMLElement* ut,
                                std::string_view address) {
  const std::string username = soap::Text(soap::Child(ut, soap::kWsseNs, "Username"));
  const auto* password_el = soap::Child(ut, soap::kWsseNs, "Password");
  const char* type = soap::Attr(password_el, "Type");
  if (type && std::string_view(type) != enroll::kPasswordText) {
    return Unauthenticated("only PasswordText UsernameTokens are accepted");
  }
  const char* raw = password_el ? password_el->GetText() : nullptr;
  if (username.empty() || !raw)
    return Unauthenticated("the UsernameToken lacks a user or password");
  if (username.size() > kMaxUsername || std::string_view(raw).size() > kMaxSecret) {
    return Unauthenticated("the UsernameToken is too long");
  }
  SecretBytes password{std::string_view(raw)};
  Store& store = ctx.store;
  DM_ASSIGN_OR_RETURN(
      User user, store.VerifyPassword(username, password, {.upn = username, .address = address}));
  auto lock = store.Lock();
  DM_ASSIGN_OR_RETURN(Tenant tenant, store.TenantById(user.tenant_id));
  if (tenant.federated) {
    // A federated tenant's users prove themselves at the IdP (password and one-time code).
    spdlog::info("enrollment refused for {}: tenant {} signs in through its IdP", user.upn,
                 tenant.name);
    return Unauthenticated("this tenant uses federated sign-in");
  }
  EnrollCaller caller;
  caller.tenant = std::move(tenant);
  caller.upn = user.upn;
  caller.how = "password";
  return caller;
}

Result<EnrollCaller> ByToken(ServerContext& ctx, const tinyxml2::XMLElement* bst) {
  const char* value_type_attr = soap::Attr(bst, "ValueType");
  const std::string value_type = value_type_attr ? value_type_attr : "";
  if (value_type != enroll::kUserTokenType && value_type != enroll::kJwtTokenType) {
    return Unauthenticated("unknown BinarySecurityToken ValueType '" + value_type.substr(0, 200) +
                           "'");
  }
  const std::string text = soap::Text(bst);
  if (text.empty() || text.size() > kMaxSecret) {
    return Unauthenticated("the BinarySecurityToken is empty or too long");
  }
  auto decoded = crypto::Base64Decode(text);
  if (!decoded.ok()) return Unauthenticated("the BinarySecurityToken is not base64");
  SecretBytes token(decoded->data(), decoded->size());
  std::fill(decoded->begin(), decoded->end(), 0);
  Store& store = ctx.store;
  auto lock = store.Lock();
  if (crypto::LooksLikeJwt(token.view())) {
    DM_ASSIGN_OR_RETURN(UserTokenClaims claims, ctx.user_tokens.Verify(token.view(), store.Now()));
    auto user = store.FindUser(claims.upn);
    if (!user.ok() || AsciiLower(user->tenant_id) != AsciiLower(claims.tenant_id)) {
      return Unauthenticated("the user token names no user of its tenant");
    }
    DM_ASSIGN_OR_RETURN(Tenant tenant, store.TenantById(user->tenant_id));
    return EnrollCaller{.tenant = std::move(tenant),
                        .upn = user->upn,
                        .how = "user token",
                        .jti = claims.jti,
                        .token_expires_at = claims.expires_at};
  }
  DM_ASSIGN_OR_RETURN(Tenant tenant, store.TenantByEnrollmentToken(token.view()));
  EnrollCaller caller;
  caller.tenant = std::move(tenant);
  caller.how = "bulk token";
  return caller;
}

}  // namespace

Result<EnrollCaller> AuthenticateEnrollment(ServerContext& ctx, const soap::Message& message,
                                            std::string_view address) {
  const auto* security = soap::Child(message.header(), soap::kWsseNs, "Security");
  if (!security) return Unauthenticated("the request carries no wsse:Security header");
  if (const auto* ut = soap::Child(security, soap::kWsseNs, "UsernameToken")) {
    return ByPassword(ctx, ut, address);
  }
  if (const auto* bst = soap::Child(security, soap::kWsseNs, "BinarySecurityToken")) {
    return ByToken(ctx, bst);
  }
  return Unauthenticated("wsse:Security holds neither a UsernameToken nor a BinarySecurityToken");
}

SoapRequest ReadSoapRequest(const transport::HttpRequest& request, const soap::Limits& limits,
                            std::string_view action, std::string_view ns, std::string_view local) {
  SoapRequest out;
  auto m = soap::Message::Parse(request.body, limits);
  if (!m.ok()) {
    out.fault = SoapFault(400, "s:messageformat", m.status().message());
    return out;
  }
  out.relates_to = m->addressing().message_id.substr(0, 128);
  if (m->addressing().action != action) {
    out.fault = SoapFault(400, "s:messageformat", "expected the action " + std::string(action),
                          out.relates_to);
  } else if (!soap::Is(m->payload(), ns, local)) {
    out.fault = SoapFault(400, "s:messageformat",
                          "the body must hold exactly one " + std::string(local), out.relates_to);
  } else {
    out.message = std::move(*m);
  }
  return out;
}

soap::Addressing AnswerAddressing(std::string_view action, std::string_view relates_to) {
  soap::Addressing a;
  a.action = std::string(action);
  a.relates_to = std::string(relates_to);
  return a;
}

transport::HttpResponse SoapAnswer(std::string body) {
  transport::HttpResponse r;
  r.status = 200;
  r.headers = {{"Content-Type", std::string(soap::kContentType)}, {"Cache-Control", "no-store"}};
  r.body = std::move(body);
  return r;
}

transport::HttpResponse SoapFault(int http_status, std::string_view subcode,
                                  std::string_view reason, std::string_view relates_to) {
  const soap::Addressing addressing =
      AnswerAddressing("http://www.w3.org/2005/08/addressing/soap/fault", relates_to);
  const bool sender = http_status >= 400 && http_status < 500;
  transport::HttpResponse r =
      SoapAnswer(soap::BuildFault(sender ? "s:Sender" : "s:Receiver", subcode, reason, addressing));
  r.status = http_status;
  return r;
}

}  // namespace dm::server
