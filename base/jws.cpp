#include "base/jws.h"

#include "base/crypto.h"

namespace dm::jws {
namespace {

using nlohmann::json;

std::string B64Url(std::string_view text) { return crypto::Base64UrlEncode(crypto::AsBytes(text)); }

Result<json> DecodeObject(std::string_view part) {
  auto raw = crypto::Base64UrlDecode(part);
  if (!raw.ok()) return Unauthenticated("the token is not base64url");
  json j = json::parse(raw->begin(), raw->end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Unauthenticated("a token part is not a JSON object");
  return j;
}

}  // namespace

std::string SigningInput(const json& header, const json& claims) {
  return B64Url(header.dump()) + "." + B64Url(claims.dump());
}

Result<std::string> Assemble(std::string_view signing_input, std::span<const uint8_t> der) {
  DM_ASSIGN_OR_RETURN(Bytes raw, crypto::EcdsaDerToRaw(der));
  return std::string(signing_input) + "." + crypto::Base64UrlEncode(raw);
}

Result<std::string> SignEs256(const SecretBytes& private_key_pem, const json& header,
                              const json& claims) {
  const std::string input = SigningInput(header, claims);
  DM_ASSIGN_OR_RETURN(Bytes der, crypto::EcdsaSign(private_key_pem, crypto::AsBytes(input)));
  return Assemble(input, der);
}

Result<Token> Parse(std::string_view token) {
  if (token.size() > kMaxTokenSize || !crypto::LooksLikeJwt(token)) {
    return Unauthenticated("not a JWT");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  Token out;
  DM_ASSIGN_OR_RETURN(out.header, DecodeObject(token.substr(0, dot1)));
  if (!out.header.contains("alg") || out.header["alg"] != "ES256") {
    return Unauthenticated("the token is not ES256");
  }
  DM_ASSIGN_OR_RETURN(out.claims, DecodeObject(token.substr(dot1 + 1, dot2 - dot1 - 1)));
  auto raw = crypto::Base64UrlDecode(token.substr(dot2 + 1));
  if (!raw.ok()) return Unauthenticated("the token signature is not base64url");
  auto der = crypto::EcdsaRawToDer(*raw);
  if (!der.ok()) return Unauthenticated("the token signature is malformed");
  out.signature_der = std::move(*der);
  out.signing_input = std::string(token.substr(0, dot2));
  return out;
}

Status VerifyEs256(const Token& token, std::string_view public_key_pem) {
  Status s = crypto::EcdsaVerify(public_key_pem, crypto::AsBytes(token.signing_input),
                                 token.signature_der);
  if (!s.ok()) return Unauthenticated("the token signature does not verify");
  return Status::Ok();
}

}  // namespace dm::jws
