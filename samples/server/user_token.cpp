#include "samples/server/user_token.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace dm::server {
namespace {

using nlohmann::json;

constexpr int64_t kLeewaySeconds = 30;

std::string B64Url(std::string_view text) { return crypto::Base64UrlEncode(crypto::AsBytes(text)); }

Result<json> DecodeJsonPart(std::string_view part) {
  auto raw = crypto::Base64UrlDecode(part);
  if (!raw.ok()) return Unauthenticated("the token is not base64url");
  json j = json::parse(raw->begin(), raw->end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Unauthenticated("the token part is not a JSON object");
  return j;
}

}  // namespace

Result<UserTokenSigner> UserTokenSigner::Create(SecretBytes key_pem, std::string issuer) {
  DM_ASSIGN_OR_RETURN(std::string public_pem, crypto::PublicKeyPem(key_pem));
  // Fails here, not at the first sign-in, when the key is not an EC one.
  DM_ASSIGN_OR_RETURN(Bytes probe, crypto::EcdsaSign(key_pem, crypto::AsBytes("probe")));
  (void)probe;
  return UserTokenSigner(std::move(key_pem), std::move(public_pem), std::move(issuer));
}

Result<std::string> UserTokenSigner::Issue(std::string_view tenant_id, std::string_view upn,
                                           int64_t now, std::chrono::seconds lifetime,
                                           crypto::Random& random) const {
  lifetime = std::min(lifetime, std::chrono::seconds(kMaxUserTokenLifetime));
  DM_ASSIGN_OR_RETURN(Bytes jti, random.Public(16));
  const json header{{"alg", "ES256"}, {"typ", "JWT"}};
  const json claims{
      {"iss", issuer_}, {"aud", std::string(tenant_id)}, {"sub", std::string(upn)},
      {"iat", now},     {"exp", now + lifetime.count()}, {"jti", crypto::HexEncode(jti)}};
  std::string signing_input = B64Url(header.dump()) + "." + B64Url(claims.dump());
  DM_ASSIGN_OR_RETURN(Bytes der, crypto::EcdsaSign(key_pem_, crypto::AsBytes(signing_input)));
  DM_ASSIGN_OR_RETURN(Bytes raw, crypto::EcdsaDerToRaw(der));
  return signing_input + "." + crypto::Base64UrlEncode(raw);
}

Result<UserTokenClaims> UserTokenSigner::Verify(std::string_view token, int64_t now) const {
  if (token.size() > 8192 || !crypto::LooksLikeJwt(token)) return Unauthenticated("not a JWT");
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  DM_ASSIGN_OR_RETURN(json header, DecodeJsonPart(token.substr(0, dot1)));
  // Only our algorithm: "none" and HMAC-with-the-public-key confusions never get that far.
  if (header.value("alg", "") != "ES256") return Unauthenticated("the token is not ES256");
  auto sig_raw = crypto::Base64UrlDecode(token.substr(dot2 + 1));
  if (!sig_raw.ok()) return Unauthenticated("the token signature is not base64url");
  auto der = crypto::EcdsaRawToDer(*sig_raw);
  if (!der.ok()) return Unauthenticated("the token signature is malformed");
  Status sig = crypto::EcdsaVerify(public_pem_, crypto::AsBytes(token.substr(0, dot2)), *der);
  if (!sig.ok()) return Unauthenticated("the token signature does not verify");

  DM_ASSIGN_OR_RETURN(json claims, DecodeJsonPart(token.substr(dot1 + 1, dot2 - dot1 - 1)));
  UserTokenClaims out;
  try {
    out.issuer = claims.at("iss").get<std::string>();
    out.tenant_id = claims.at("aud").get<std::string>();
    out.upn = claims.at("sub").get<std::string>();
    out.jti = claims.at("jti").get<std::string>();
    out.issued_at = claims.at("iat").get<int64_t>();
    out.expires_at = claims.at("exp").get<int64_t>();
  } catch (const json::exception&) {
    return Unauthenticated("the token lacks iss, aud, sub, jti, iat or exp");
  }
  if (out.issuer != issuer_) return Unauthenticated("the token comes from another issuer");
  if (out.expires_at - out.issued_at > kMaxUserTokenLifetime.count()) {
    return Unauthenticated("the token lives longer than an hour");
  }
  if (out.issued_at > now + kLeewaySeconds) return Unauthenticated("the token is not valid yet");
  if (out.expires_at + kLeewaySeconds <= now) return Unauthenticated("the token has expired");
  if (out.upn.empty() || out.jti.empty()) return Unauthenticated("the token names nobody");
  return out;
}

}  // namespace dm::server
