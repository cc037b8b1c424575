#include "base/crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <limits>
#include <memory>

namespace dm::crypto {
namespace {

// OpenSSL's queued reason, so a Status says more than "failed"; clears the queue.
std::string OpenSslReason() {
  unsigned long e = ERR_get_error();
  std::string reason;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reason = buf;
  }
  ERR_clear_error();
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

Status OpenSslError(std::string_view what, Code code = Code::kInternal) {
  return {code, std::string(what) + ": " + OpenSslReason()};
}

struct EvpCipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpPkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EvpKdfFree {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct EvpKdfCtxFree {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
struct EvpMacFree {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct EvpMacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

bool FitsInt(size_t n) { return n <= static_cast<size_t>(std::numeric_limits<int>::max()); }

Result<PkeyPtr> LoadPrivateKey(const SecretBytes& pem) {
  if (pem.empty() || !FitsInt(pem.size())) return InvalidArgument("private key PEM is empty");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpenSslError("BIO_new_mem_buf");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("read private key PEM", Code::kInvalidArgument);
  return key;
}

Result<PkeyPtr> LoadPublicKey(std::string_view pem) {
  if (pem.empty() || !FitsInt(pem.size())) return InvalidArgument("public key PEM is empty");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpenSslError("BIO_new_mem_buf");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("read public key PEM", Code::kInvalidArgument);
  return key;
}

// Reads a memory BIO's contents into SecretBytes, wiping the BIO's buffer afterwards.
SecretBytes DrainSecretBio(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  SecretBytes out;
  if (n > 0 && p != nullptr) {
    out = SecretBytes(reinterpret_cast<const uint8_t*>(p), static_cast<size_t>(n));
    OPENSSL_cleanse(p, static_cast<size_t>(n));
  }
  return out;
}

std::string DrainBio(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return (n > 0 && p != nullptr) ? std::string(p, static_cast<size_t>(n)) : std::string();
}

Result<Bytes> Digest(const char* name, std::span<const uint8_t> data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) return OpenSslError(std::string("fetch digest ") + name);
  int ok = EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  EVP_MD_free(md);
  if (ok != 1) return OpenSslError(std::string("digest ") + name);
  return Bytes(out, out + len);
}

Result<Bytes> Hmac(const char* digest, std::span<const uint8_t> key,
                   std::span<const uint8_t> data) {
  std::unique_ptr<EVP_MAC, EvpMacFree> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return OpenSslError("fetch HMAC");
  std::unique_ptr<EVP_MAC_CTX, EvpMacCtxFree> ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return OpenSslError("EVP_MAC_CTX_new");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end()};
  // OpenSSL refuses a NULL key pointer even for an empty key.
  static const uint8_t kEmpty = 0;
  const uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
  if (EVP_MAC_init(ctx.get(), key_ptr, key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1) {
    return OpenSslError("HMAC");
  }
  Bytes out(EVP_MAX_MD_SIZE);
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1) return OpenSslError("HMAC");
  out.resize(len);
  return out;
}

class OsRandomImpl final : public Random {
 public:
  Status Fill(std::span<uint8_t> out) override {
    if (out.empty()) return Status::Ok();
    if (!FitsInt(out.size())) return InvalidArgument("random request too large");
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
      return OpenSslError("RAND_bytes", Code::kUnavailable);
    }
    return Status::Ok();
  }
};

}  // namespace

// ---- randomness ----

Result<SecretBytes> Random::Secret(size_t n) {
  SecretBytes out(n);
  DM_RETURN_IF_ERROR(Fill({out.data(), out.size()}));
  return out;
}

Result<Bytes> Random::Public(size_t n) {
  Bytes out(n);
  DM_RETURN_IF_ERROR(Fill(out));
  return out;
}

Random& OsRandom() {
  static OsRandomImpl random;
  return random;
}

Status DeterministicRandom::Fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    uint8_t block[16];
    for (int i = 0; i < 8; ++i) block[i] = static_cast<uint8_t>(seed_ >> (8 * i));
    for (int i = 0; i < 8; ++i) block[8 + i] = static_cast<uint8_t>(counter_ >> (8 * i));
    ++counter_;
    DM_ASSIGN_OR_RETURN(Bytes digest, Sha256(block));
    for (size_t i = 0; i < digest.size() && done < out.size(); ++i) out[done++] = digest[i];
  }
  return Status::Ok();
}

// ---- AES-256-GCM ----

Result<Bytes> Seal(const SecretBytes& key, std::span<const uint8_t> plaintext,
                   std::string_view associated_data, Random& random) {
  if (key.size() != kAesKeySize) return InvalidArgument("AES-256-GCM needs a 32-byte key");
  if (!FitsInt(plaintext.size()) || !FitsInt(associated_data.size())) {
    return ResourceExhausted("AES-GCM input too large");
  }
  Bytes out(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  DM_RETURN_IF_ERROR(random.Fill({out.data(), kGcmNonceSize}));
  std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  int len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), out.data()) != 1) {
    return OpenSslError("AES-GCM init");
  }
  if (!associated_data.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const uint8_t*>(associated_data.data()),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslError("AES-GCM associated data");
  }
  uint8_t* ct = out.data() + kGcmNonceSize;
  int total = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), ct, &len, plaintext.data(),
                          static_cast<int>(plaintext.size())) != 1) {
      return OpenSslError("AES-GCM encrypt");
    }
    total = len;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), ct + total, &len) != 1) return OpenSslError("AES-GCM final");
  total += len;
  if (static_cast<size_t>(total) != plaintext.size()) return Internal("AES-GCM length mismatch");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, ct + total) != 1) {
    return OpenSslError("AES-GCM tag");
  }
  return out;
}

Result<SecretBytes> Open(const SecretBytes& key, std::span<const uint8_t> sealed,
                         std::string_view associated_data) {
  if (key.size() != kAesKeySize) return InvalidArgument("AES-256-GCM needs a 32-byte key");
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) {
    return Corruption("sealed blob is shorter than nonce and tag");
  }
  if (!FitsInt(sealed.size()) || !FitsInt(associated_data.size())) {
    return ResourceExhausted("AES-GCM input too large");
  }
  const size_t ct_len = sealed.size() - kGcmNonceSize - kGcmTagSize;
  const uint8_t* nonce = sealed.data();
  const uint8_t* ct = sealed.data() + kGcmNonceSize;
  const uint8_t* tag = ct + ct_len;
  std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1) {
    return OpenSslError("AES-GCM init");
  }
  if (!associated_data.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const uint8_t*>(associated_data.data()),
                        static_cast<int>(associated_data.size())) != 1) {
    return OpenSslError("AES-GCM associated data");
  }
  SecretBytes out(ct_len);
  int total = 0;
  if (ct_len > 0) {
    if (EVP_DecryptUpdate(ctx.get(), out.data(), &len, ct, static_cast<int>(ct_len)) != 1) {
      return OpenSslError("AES-GCM decrypt");
    }
    total = len;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize,
                          const_cast<uint8_t*>(tag)) != 1) {
    return OpenSslError("AES-GCM tag");
  }
  // out is wiped by its destructor when the tag does not verify.
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + total, &len) != 1) {
    ERR_clear_error();
    return Unauthenticated("AES-GCM authentication failed (wrong key or tampered data)");
  }
  return out;
}

// ---- scrypt ----

Status ValidateScryptParams(const ScryptParams& params) {
  if (params.n < 2 || (params.n & (params.n - 1)) != 0) {
    return InvalidArgument("scrypt N must be a power of two greater than 1");
  }
  if (params.r == 0 || params.p == 0) return InvalidArgument("scrypt r and p must be positive");
  if (params.n > (uint64_t{1} << 22) || params.r > 32 || params.p > 16) {
    return InvalidArgument("scrypt parameters exceed the supported maximum (N 2^22, r 32, p 16)");
  }
  return Status::Ok();
}

Result<SecretBytes> Scrypt(const SecretBytes& secret, std::span<const uint8_t> salt,
                           const ScryptParams& params, size_t out_len) {
  DM_RETURN_IF_ERROR(ValidateScryptParams(params));
  if (out_len == 0 || out_len > 1024) return InvalidArgument("scrypt output length 1..1024");
  std::unique_ptr<EVP_KDF, EvpKdfFree> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr));
  if (!kdf) return OpenSslError("fetch SCRYPT");
  std::unique_ptr<EVP_KDF_CTX, EvpKdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return OpenSslError("EVP_KDF_CTX_new");
  uint64_t n = params.n;
  uint64_t r = params.r;
  uint64_t p = params.p;
  // scrypt needs 128*r*N for V plus 128*r*p for B; give room for both and some slack.
  uint64_t maxmem = 128 * r * (n + p + 2) + (uint64_t{1} << 20);
  static const uint8_t kEmpty = 0;
  OSSL_PARAM ps[] = {
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_PASSWORD, const_cast<uint8_t*>(secret.empty() ? &kEmpty : secret.data()),
          secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                        const_cast<uint8_t*>(salt.empty() ? &kEmpty : salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end()};
  SecretBytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), ps) != 1) {
    return OpenSslError("scrypt", Code::kResourceExhausted);
  }
  return out;
}

// ---- RSA ----

namespace {
// OpenSSL takes ownership of the label buffer, so it gets its own copy.
bool SetOaepLabel(EVP_PKEY_CTX* ctx, std::string_view label) {
  if (label.empty()) return true;
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(label.data(), label.size()));
  if (copy == nullptr) return false;
  if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, static_cast<int>(label.size())) != 1) {
    OPENSSL_free(copy);
    return false;
  }
  return true;
}

// The OAEP parameters both directions must agree on: SHA-256 for the digest and MGF1, and the
// label. One place, so encryption and decryption cannot drift apart.
bool SetOaepParams(EVP_PKEY_CTX* ctx, std::string_view label) {
  return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", nullptr) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", nullptr) == 1 && SetOaepLabel(ctx, label);
}
}  // namespace

Result<Bytes> RsaOaepEncrypt(std::string_view public_key_pem, std::span<const uint8_t> plaintext,
                             std::string_view label) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPublicKey(public_key_pem));
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return InvalidArgument("RSA-OAEP needs an RSA public key");
  }
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 || !SetOaepParams(ctx.get(), label)) {
    return OpenSslError("RSA-OAEP init");
  }
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plaintext.data(), plaintext.size()) != 1) {
    return OpenSslError("RSA-OAEP size", Code::kInvalidArgument);
  }
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plaintext.data(), plaintext.size()) != 1) {
    return OpenSslError("RSA-OAEP encrypt", Code::kInvalidArgument);
  }
  out.resize(len);
  return out;
}

Result<SecretBytes> RsaOaepDecrypt(const SecretBytes& private_key_pem,
                                   std::span<const uint8_t> ciphertext, std::string_view label) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(private_key_pem));
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return InvalidArgument("RSA-OAEP needs an RSA private key");
  }
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 || !SetOaepParams(ctx.get(), label)) {
    return OpenSslError("RSA-OAEP init");
  }
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ciphertext.data(), ciphertext.size()) != 1) {
    return OpenSslError("RSA-OAEP size", Code::kInvalidArgument);
  }
  SecretBytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ciphertext.data(), ciphertext.size()) != 1) {
    ERR_clear_error();
    return Unauthenticated("RSA-OAEP decryption failed (wrong key or tampered ciphertext)");
  }
  out.resize(len);
  return out;
}

Result<SecretBytes> GenerateRsaPrivateKey(int bits) {
  if (bits < 2048 || bits > 8192) return InvalidArgument("RSA key size must be 2048..8192 bits");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) != 1) {
    return OpenSslError("RSA keygen init");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) return OpenSslError("RSA keygen");
  PkeyPtr key(raw);
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) bio.reset(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("write RSA private key");
  }
  return DrainSecretBio(bio.get());
}

Result<std::string> PublicKeyPem(const SecretBytes& private_key_pem) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(private_key_pem));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return OpenSslError("write public key");
  }
  return DrainBio(bio.get());
}

// ---- ECDSA ----

Result<Bytes> EcdsaSign(const SecretBytes& private_key_pem, std::span<const uint8_t> data) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPrivateKey(private_key_pem));
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    return InvalidArgument("ECDSA needs an EC private key");
  }
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(),
                                    nullptr) != 1) {
    return OpenSslError("ECDSA init");
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return OpenSslError("ECDSA size");
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) {
    return OpenSslError("ECDSA sign");
  }
  sig.resize(len);
  return sig;
}

Status EcdsaVerify(std::string_view public_key_pem, std::span<const uint8_t> data,
                   std::span<const uint8_t> signature_der) {
  DM_ASSIGN_OR_RETURN(PkeyPtr key, LoadPublicKey(public_key_pem));
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    return InvalidArgument("ECDSA needs an EC public key");
  }
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(),
                                      nullptr) != 1) {
    return OpenSslError("ECDSA verify init");
  }
  int rc = EVP_DigestVerify(ctx.get(), signature_der.data(), signature_der.size(), data.data(),
                            data.size());
  ERR_clear_error();
  if (rc != 1) return Unauthenticated("ECDSA signature does not verify");
  return Status::Ok();
}

// ---- digests and MACs ----

Result<Bytes> Sha256(std::span<const uint8_t> data) { return Digest("SHA256", data); }
Result<Bytes> Sha1(std::span<const uint8_t> data) { return Digest("SHA1", data); }
Result<Bytes> HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  return Hmac("SHA256", key, data);
}
Result<Bytes> HmacSha1(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  return Hmac("SHA1", key, data);
}

// ---- HOTP / TOTP ----

Result<std::string> Hotp(const SecretBytes& secret, uint64_t counter, int digits) {
  if (digits < 6 || digits > 8) return InvalidArgument("HOTP digits must be 6..8");
  if (secret.size() < 10) return InvalidArgument("HOTP secret must be at least 80 bits");
  uint8_t msg[8];
  for (int i = 7; i >= 0; --i) {
    msg[i] = static_cast<uint8_t>(counter & 0xff);
    counter >>= 8;
  }
  DM_ASSIGN_OR_RETURN(Bytes mac, HmacSha1(secret.span(), msg));
  // RFC 4226 §5.3 dynamic truncation.
  const int offset = mac[19] & 0x0f;
  uint32_t bin = (static_cast<uint32_t>(mac[offset] & 0x7f) << 24) |
                 (static_cast<uint32_t>(mac[offset + 1]) << 16) |
                 (static_cast<uint32_t>(mac[offset + 2]) << 8) |
                 static_cast<uint32_t>(mac[offset + 3]);
  uint32_t mod = 1;
  for (int i = 0; i < digits; ++i) mod *= 10;
  std::string code = std::to_string(bin % mod);
  return std::string(static_cast<size_t>(digits) - code.size(), '0') + code;
}

Result<std::string> Totp(const SecretBytes& secret, TimePoint at, std::chrono::seconds step,
                         int digits) {
  if (step.count() <= 0) return InvalidArgument("TOTP step must be positive");
  int64_t t = ToUnixSeconds(at);
  if (t < 0) return InvalidArgument("TOTP time before the epoch");
  return Hotp(secret, static_cast<uint64_t>(t / step.count()), digits);
}

// ---- encodings ----

std::string HexEncode(std::span<const uint8_t> data, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return InvalidArgument("hex string has an odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgument("hex string has a non-hex character");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string Base64Encode(std::span<const uint8_t> data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{data[i]} << 16;
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out.push_back(kB64[(v >> 18) & 63]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return InvalidArgument("base64 length is not a multiple of 4");
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = (text[i + 2] == '=') ? 2 : 1;
    int v[4];
    for (int k = 0; k < 4; ++k) {
      if (k >= 4 - pad) {
        v[k] = 0;
        continue;
      }
      v[k] = value(text[i + k]);
      if (v[k] < 0) return InvalidArgument("base64 has an invalid character");
    }
    uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | v[3];
    out.push_back(static_cast<uint8_t>(n >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>(n >> 8));
    if (pad < 1) out.push_back(static_cast<uint8_t>(n));
    // Canonical form only: the bits a padded group drops must be zero.
    if ((pad == 1 && (v[2] & 3) != 0) || (pad == 2 && (v[1] & 15) != 0)) {
      return InvalidArgument("base64 is not canonical");
    }
  }
  return out;
}

std::string Base64UrlEncode(std::span<const uint8_t> data) {
  std::string out = Base64Encode(data);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

Result<Bytes> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return InvalidArgument("base64url has an impossible length");
  std::string std_form;
  std_form.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '+' || c == '/' || c == '=') return InvalidArgument("base64url has '+', '/' or '='");
    std_form.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  while (std_form.size() % 4 != 0) std_form.push_back('=');
  return Base64Decode(std_form);
}

bool LooksLikeJwt(std::string_view text) {
  if (text.substr(0, 3) != "eyJ" || std::count(text.begin(), text.end(), '.') != 2) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

Result<Bytes> EcdsaDerToRaw(std::span<const uint8_t> signature_der) {
  const unsigned char* p = signature_der.data();
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(signature_der.size())), ECDSA_SIG_free);
  if (!sig || p != signature_der.data() + signature_der.size()) {
    return InvalidArgument("not a DER ECDSA signature");
  }
  Bytes raw(64);
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + 32, 32) != 32) {
    return InvalidArgument("ECDSA signature is not a P-256 one");
  }
  return raw;
}

Result<Bytes> EcdsaRawToDer(std::span<const uint8_t> signature_raw) {
  if (signature_raw.size() != 64) return InvalidArgument("an ES256 signature is 64 bytes");
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(signature_raw.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(signature_raw.data() + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return OpenSslError("ECDSA signature");
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return OpenSslError("ECDSA signature encoding");
  Bytes der(static_cast<size_t>(len));
  unsigned char* out = der.data();
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

Result<SecretBytes> Base32Decode(std::string_view text) {
  SecretBytes out;
  std::vector<uint8_t> bytes;
  uint32_t buffer = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == ' ' || ch == '=' || ch == '-') continue;
    int v;
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= '2' && c <= '7') {
      v = c - '2' + 26;
    } else {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      return InvalidArgument("not base32 (RFC 4648): unexpected character");
    }
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uint8_t>((buffer >> bits) & 0xff));
    }
  }
  out = SecretBytes(bytes.data(), bytes.size());
  OPENSSL_cleanse(bytes.data(), bytes.size());
  buffer = 0;
  return out;
}

std::string Base32Encode(std::span<const uint8_t> data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : data) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kAlphabet[(buffer >> bits) & 0x1f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 0x1f]);
  return out;
}

}  // namespace dm::crypto
