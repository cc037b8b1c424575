// The signed user tokens dmserver's IdP issues after a sign-in (password + TOTP) and its
// enrollment service accepts: compact JWS, ES256, claims iss (the IdP), aud (the tenant id),
// sub (the UPN), iat, exp (at most an hour later) and jti (single use where a token buys
// something: an enrollment).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::server {

inline constexpr std::chrono::seconds kMaxUserTokenLifetime = std::chrono::hours(1);
// A device-bound refresh token (token_service.cpp) lives as long as Entra's PRT.
inline constexpr std::chrono::seconds kRefreshTokenLifetime = std::chrono::hours(24 * 14);

struct UserTokenClaims {
  std::string issuer;
  std::string tenant_id;  // aud
  std::string upn;        // sub
  std::string jti;
  int64_t issued_at = 0;
  int64_t expires_at = 0;
};

class UserTokenSigner {
 public:
  // `key_pem`: an EC P-256 private key; `issuer`: the iss claim (the IdP's base URL).
  static Result<UserTokenSigner> Create(SecretBytes key_pem, std::string issuer);

  // `lifetime` is capped at kMaxUserTokenLifetime.
  Result<std::string> Issue(std::string_view tenant_id, std::string_view upn, int64_t now,
                            std::chrono::seconds lifetime, crypto::Random& random) const;

  // Unauthenticated unless the token is ES256 with our signature, our issuer, a lifetime of at
  // most an hour and not expired at `now` (30 s leeway for clocks).
  Result<UserTokenClaims> Verify(std::string_view token, int64_t now) const;

  const std::string& issuer() const { return issuer_; }

 private:
  UserTokenSigner(SecretBytes key_pem, std::string public_pem, std::string issuer)
      : key_pem_(std::move(key_pem)),
        public_pem_(std::move(public_pem)),
        issuer_(std::move(issuer)) {}
  SecretBytes key_pem_;
  std::string public_pem_;
  std::string issuer_;
};

}  // namespace dm::server
