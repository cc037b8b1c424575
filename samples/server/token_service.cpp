// POST /oauth2/token (mutual TLS: an enrolled device), application/x-www-form-urlencoded, as
// OAuth 2.0 (RFC 6749 §4.3, §6; RFC 7523 §2.1). It issues the signed user tokens
// (user_token.h) a device sends in its management sessions; a token never outlives an hour.
//   grant_type=password, username, password, otp      a sign-in with both factors
//   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, assertion
//       a PIN sign-in: a JWT the user's Windows Hello key signed (ES256). Its x5c header holds
//       the Hello certificate this server issued for that user on this device; claims sub (the
//       UPN), aud (this endpoint's URL), iat, exp (at most 5 min later), jti (used once).
//   grant_type=refresh_token, refresh_token            renews the token, this device only
// Answer: {"access_token", "token_type": "Bearer", "expires_in"} and, for the first two,
// "refresh_token" and "refresh_token_expires_in". Errors are RFC 6749 §5.2's: 400
// invalid_request / unsupported_grant_type / invalid_grant, 429 while sign-ins are throttled.
#include <spdlog/spdlog.h>

#include "base/jws.h"
#include "base/log.h"
#include "samples/server/server_internal.h"

namespace dm::server {
namespace {

using nlohmann::json;

constexpr int64_t kLeeway = 30;
constexpr size_t kMaxBody = 32 * 1024;

transport::HttpResponse Refused(std::string_view why) {
  return JsonError(400, "invalid_grant", why);
}

// The user a Hello-key assertion proves, for the device `dev_id`.
Result<User> UserOfAssertion(ServerContext& ctx, std::string_view assertion,
                             std::string_view dev_id) {
  DM_ASSIGN_OR_RETURN(jws::Token token, jws::Parse(assertion));
  const json& x5c = token.header.contains("x5c") ? token.header["x5c"] : json();
  if (!x5c.is_array() || x5c.empty() || !x5c[0].is_string()) {
    return Unauthenticated("the assertion carries no x5c certificate");
  }
  auto der = crypto::Base64Decode(x5c[0].get<std::string>());
  if (!der.ok()) return Unauthenticated("the x5c certificate is not base64");
  const std::string cert_pem = pki::PemFromDer(*der, "CERTIFICATE");
  Store& store = ctx.store;
  if (!pki::VerifyCertificate(cert_pem, ctx.ca.cert_pem, store.clock().Now()).ok()) {
    return Unauthenticated("the Hello certificate was not issued by this server or expired");
  }
  DM_ASSIGN_OR_RETURN(pki::CertInfo cert, pki::ParseCertificate(cert_pem));
  DM_RETURN_IF_ERROR(jws::VerifyEs256(token, cert.public_key_pem));
  const json& c = token.claims;
  auto text = [&](const char* k) {
    return c.contains(k) && c[k].is_string() ? c[k].get<std::string>() : std::string();
  };
  auto number = [&](const char* k) {
    return c.contains(k) && c[k].is_number_integer() ? c[k].get<int64_t>() : int64_t{0};
  };
  const std::string sub = text("sub"), jti = text("jti");
  const int64_t iat = number("iat"), exp = number("exp"), now = store.Now();
  if (text("aud") != ctx.base_url + "/oauth2/token") {
    return Unauthenticated("the assertion is for another audience");
  }
  if (sub.empty() || jti.empty() || jti.size() > 128 || exp - iat > jws::kMaxAssertionLifetime ||
      iat > now + kLeeway || exp + kLeeway <= now) {
    return Unauthenticated("the assertion lacks sub or jti, or is not valid now");
  }
  auto lock = store.Lock();
  DM_ASSIGN_OR_RETURN(std::string upn, store.HelloCertificateUser(cert.serial_hex, dev_id));
  if (AsciiLower(upn) != AsciiLower(sub)) {
    return Unauthenticated("the Hello certificate belongs to another user");
  }
  DM_RETURN_IF_ERROR(store.SpendTokenId("hello:" + jti, exp + kLeeway));
  return store.FindUser(upn);
}

}  // namespace

transport::HttpResponse HandleToken(ServerContext& ctx, const transport::HttpRequest& request,
                                    const transport::PeerInfo& peer) {
  if (request.body.size() > kMaxBody) {
    return JsonError(413, "invalid_request", "the request is too large");
  }
  auto form = ParseForm(request.body);
  const std::string grant = form["grant_type"];
  Store& store = ctx.store;
  Result<Device> device = [&] {
    auto lock = store.Lock();
    return DeviceOfPeer(store, peer);
  }();
  if (!device.ok()) return JsonError(403, "device_not_enrolled", device.error().message());

  Result<User> user = Unauthenticated("");
  bool sign_in = true;  // a sign-in gets a refresh token; a renewal does not
  if (grant == "password") {
    const std::string upn = form["username"];
    SecretBytes password(form["password"]);
    std::fill(form["password"].begin(), form["password"].end(), '\0');
    Result<User> named = [&] {
      auto lock = store.Lock();
      return store.FindUser(upn);
    }();
    // A user of another tenant is answered like a wrong password.
    const bool same_tenant = named.ok() && named->tenant_id == device->tenant_id;
    Status s = store.VerifyUser(same_tenant ? upn : std::string_view(), password, form["otp"],
                                {.upn = upn, .address = peer.remote_address});
    if (s.code() == Code::kResourceExhausted) {
      return JsonError(429, "too_many_attempts", s.message());
    }
    if (!s.ok()) return s.code() == Code::kUnauthenticated ? Refused(s.message()) : StatusError(s);
    user = std::move(named);
  } else if (grant == jws::kJwtBearerGrantType) {
    user = UserOfAssertion(ctx, form["assertion"], device->dev_id);
    if (!user.ok() && user.error().code() != Code::kUnauthenticated) {
      return StatusError(user.error());
    }
    if (!user.ok()) {
      spdlog::info("device {}: Hello sign-in refused: {}", Printable(device->dev_id),
                   user.error().message());
      return Refused("the assertion was not accepted");
    }
  } else if (grant == "refresh_token") {
    sign_in = false;
    auto lock = store.Lock();
    user = store.RedeemRefreshToken(form["refresh_token"], device->dev_id);
    if (!user.ok()) {
      if (user.error().code() != Code::kUnauthenticated) return StatusError(user.error());
      return Refused(user.error().message());
    }
  } else if (grant.empty()) {
    return JsonError(400, "invalid_request", "grant_type is missing");
  } else {
    return JsonError(400, "unsupported_grant_type",
                     "use password, refresh_token or " + std::string(jws::kJwtBearerGrantType));
  }
  if (user->tenant_id != device->tenant_id) return Refused("the user is not of this tenant");

  auto lock = store.Lock();
  const int64_t now = store.Now();
  auto token =
      ctx.user_tokens.Issue(user->tenant_id, user->upn, now, kMaxUserTokenLifetime, store.random());
  if (!token.ok()) return StatusError(token.error());
  json answer{{"access_token", *token},
              {"token_type", "Bearer"},
              {"expires_in", kMaxUserTokenLifetime.count()}};
  if (sign_in) {
    auto refresh =
        store.IssueRefreshToken(user->tenant_id, user->upn, device->dev_id, kRefreshTokenLifetime);
    if (!refresh.ok()) return StatusError(refresh.error());
    answer["refresh_token"] = *refresh;
    answer["refresh_token_expires_in"] = kRefreshTokenLifetime.count();
    spdlog::info("{} signed in on device {} ({})", Printable(user->upn), Printable(device->dev_id),
                 grant == "password" ? "password" : "Hello key");
  }
  return JsonResponse(200, answer);  // Cache-Control: no-store, as RFC 6749 §5.1 asks
}

}  // namespace dm::server
