#include "samples/server/user_token.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "base/jws.h"

namespace dm::server {
namespace {

using nlohmann::json;

constexpr int64_t kLeewaySeconds = 30;

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
  return jws::SignEs256(key_pem_, header, claims);
}

Result<UserTokenClaims> UserTokenSigner::Verify(std::string_view token, int64_t now) const {
  DM_ASSIGN_OR_RETURN(jws::Token parsed, jws::Parse(token));
  DM_RETURN_IF_ERROR(jws::VerifyEs256(parsed, public_pem_));
  const json& claims = parsed.claims;
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
