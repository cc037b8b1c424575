// Compact JWS with ES256 (RFC 7515, RFC 7518 §3.4): the signed tokens dmserver's IdP issues
// and the key-possession assertions a device signs with a user's Windows Hello key. Only
// ES256 is read, so "none" and algorithm-confusion tokens never reach a signature check.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/secret.h"
#include "base/status.h"

namespace dm::jws {

inline constexpr size_t kMaxTokenSize = 16 * 1024;
// RFC 7523 key-possession assertions: the grant type that names them at a token endpoint,
// and the longest lifetime dmserver accepts (the agent signs them for exactly that long).
inline constexpr char kJwtBearerGrantType[] = "urn:ietf:params:oauth:grant-type:jwt-bearer";
inline constexpr int64_t kMaxAssertionLifetime = 300;

// base64url(header) "." base64url(claims): what the signature covers.
std::string SigningInput(const nlohmann::json& header, const nlohmann::json& claims);
// Appends an ECDSA P-256 signature (DER, as OpenSSL makes it) in JWS's raw r||s form.
Result<std::string> Assemble(std::string_view signing_input, std::span<const uint8_t> der);
// SigningInput, signed with an EC P-256 private key.
Result<std::string> SignEs256(const SecretBytes& private_key_pem, const nlohmann::json& header,
                              const nlohmann::json& claims);

struct Token {
  nlohmann::json header;  // objects, both
  nlohmann::json claims;
  std::string signing_input;
  Bytes signature_der;
};
// Unauthenticated unless `token` is a well-formed compact JWS whose header says ES256. The
// signature is not checked yet: the key may depend on the header (x5c).
Result<Token> Parse(std::string_view token);
Status VerifyEs256(const Token& token, std::string_view public_key_pem);

}  // namespace dm::jws
