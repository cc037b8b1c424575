// Symmetric and asymmetric primitives the agent needs, on OpenSSL 3 EVP only. Secrets come in
// and go out as SecretBytes; every fallible call returns Status / Result so an OpenSSL failure
// is a value with OpenSSL's reason attached, never an abort.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::crypto {

// ---- randomness: the seam tests replace ----
class Random {
 public:
  virtual ~Random() = default;
  virtual Status Fill(std::span<uint8_t> out) = 0;

  Result<SecretBytes> Secret(size_t n);
  Result<Bytes> Public(size_t n);  // nonces, salts, identifiers
};

// RAND_bytes from the OpenSSL CSPRNG.
Random& OsRandom();

// Reproducible bytes for tests (SHA-256 of seed||counter). Never use it for real keys.
class DeterministicRandom final : public Random {
 public:
  explicit DeterministicRandom(uint64_t seed) : seed_(seed) {}
  Status Fill(std::span<uint8_t> out) override;

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

// ---- AES-256-GCM ----
inline constexpr size_t kAesKeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

// Output: nonce(12) || ciphertext || tag(16). `associated_data` binds the ciphertext to its
// context (purpose, user, key id) so a blob cannot be replayed into another slot.
Result<Bytes> Seal(const SecretBytes& key, std::span<const uint8_t> plaintext,
                   std::string_view associated_data, Random& random = OsRandom());
// Unauthenticated when the key, the associated data or the blob is wrong (GCM tag mismatch).
Result<SecretBytes> Open(const SecretBytes& key, std::span<const uint8_t> sealed,
                         std::string_view associated_data);

// ---- scrypt (PINs, passwords) ----
struct ScryptParams {
  uint64_t n = uint64_t{1} << 15;  // CPU/memory cost, a power of two
  uint32_t r = 8;
  uint32_t p = 1;

  static ScryptParams Strong() { return {}; }                           // ~32 MiB per derivation
  static ScryptParams ForTests() { return {uint64_t{1} << 10, 8, 1}; }  // fast; tests only
  friend bool operator==(const ScryptParams&, const ScryptParams&) = default;
};
Status ValidateScryptParams(const ScryptParams& params);
Result<SecretBytes> Scrypt(const SecretBytes& secret, std::span<const uint8_t> salt,
                           const ScryptParams& params, size_t out_len = 32);

// ---- RSA-OAEP, SHA-256 for both the OAEP digest and MGF1, no label ----
// `label` is OAEP's label (empty by default): a ciphertext only decrypts with the label it was
// made with, which binds it to its context (whose protector it is).
Result<Bytes> RsaOaepEncrypt(std::string_view public_key_pem, std::span<const uint8_t> plaintext,
                             std::string_view label = {});
Result<SecretBytes> RsaOaepDecrypt(const SecretBytes& private_key_pem,
                                   std::span<const uint8_t> ciphertext,
                                   std::string_view label = {});
// A PKCS#8 PEM RSA private key of `bits` (2048..8192).
Result<SecretBytes> GenerateRsaPrivateKey(int bits);
// The SubjectPublicKeyInfo PEM of any private key PEM.
Result<std::string> PublicKeyPem(const SecretBytes& private_key_pem);

// ---- ECDSA P-256 with SHA-256, DER-encoded signatures ----
Result<Bytes> EcdsaSign(const SecretBytes& private_key_pem, std::span<const uint8_t> data);
// OK when valid; Unauthenticated when the signature does not verify.
Status EcdsaVerify(std::string_view public_key_pem, std::span<const uint8_t> data,
                   std::span<const uint8_t> signature_der);
// JWS (RFC 7518 ES256) carries r || s, 32 bytes each, where OpenSSL speaks DER.
Result<Bytes> EcdsaDerToRaw(std::span<const uint8_t> signature_der);
Result<Bytes> EcdsaRawToDer(std::span<const uint8_t> signature_raw);

// ---- digests and MACs ----
Result<Bytes> Sha256(std::span<const uint8_t> data);
Result<Bytes> Sha1(std::span<const uint8_t> data);
Result<Bytes> HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data);
Result<Bytes> HmacSha1(std::span<const uint8_t> key, std::span<const uint8_t> data);

// Views a string as bytes, for the calls above.
inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// ---- one-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238, HMAC-SHA-1) ----
Result<std::string> Hotp(const SecretBytes& secret, uint64_t counter, int digits = 6);
Result<std::string> Totp(const SecretBytes& secret, TimePoint at,
                         std::chrono::seconds step = std::chrono::seconds(30), int digits = 6);

// ---- encodings ----
std::string HexEncode(std::span<const uint8_t> data, bool upper = false);
Result<Bytes> HexDecode(std::string_view hex);
std::string Base64Encode(std::span<const uint8_t> data);  // standard alphabet, padded
Result<Bytes> Base64Decode(std::string_view text);        // strict: no whitespace, padded
// RFC 4648 base32 (authenticator apps' secret format); case-insensitive, padding optional,
// spaces ignored.
Result<SecretBytes> Base32Decode(std::string_view text);
std::string Base32Encode(std::span<const uint8_t> data);
// RFC 4648 section 5, without padding (JWTs).
std::string Base64UrlEncode(std::span<const uint8_t> data);
Result<Bytes> Base64UrlDecode(std::string_view text);
// The shape of a compact JWS/JWT: three base64url segments, the first a JSON object ("eyJ" is
// base64 of '{"'). Says nothing of the signature.
bool LooksLikeJwt(std::string_view text);

}  // namespace dm::crypto
