#include "container/key_sealer.h"

#include <openssl/crypto.h>

namespace dm::container {
namespace {

// HMAC-SHA256(root, label): one 32-byte subkey per job, so the sealing key never MACs.
SecretBytes Subkey(const SecretBytes& root, std::string_view label) {
  auto k = crypto::HmacSha256(root.span(), crypto::AsBytes(label));
  if (!k.ok()) return SecretBytes();  // empty key: every later call fails loudly
  SecretBytes out(k->data(), k->size());
  OPENSSL_cleanse(k->data(), k->size());
  return out;
}

}  // namespace

Status KeySealer::VerifyMac(std::string_view data, std::span<const uint8_t> mac) {
  DM_ASSIGN_OR_RETURN(Bytes expected, Mac(data));
  if (mac.size() != expected.size() ||
      CRYPTO_memcmp(mac.data(), expected.data(), expected.size()) != 0) {
    return Unauthenticated("MAC does not verify under this device's key");
  }
  return Status::Ok();
}

SoftwareKeySealer::SoftwareKeySealer(const SecretBytes& root, crypto::Random& random)
    : seal_key_(Subkey(root, "dmagent/key-sealer/v1/seal")),
      mac_key_(Subkey(root, "dmagent/key-sealer/v1/mac")),
      random_(&random) {}

Result<Bytes> SoftwareKeySealer::Seal(std::span<const uint8_t> plaintext,
                                      std::string_view context) {
  if (seal_key_.size() != crypto::kAesKeySize) return Internal("key sealer has no key");
  return crypto::Seal(seal_key_, plaintext, context, *random_);
}

Result<SecretBytes> SoftwareKeySealer::Open(std::span<const uint8_t> sealed,
                                            std::string_view context) {
  if (seal_key_.size() != crypto::kAesKeySize) return Internal("key sealer has no key");
  return crypto::Open(seal_key_, sealed, context);
}

Result<Bytes> SoftwareKeySealer::Mac(std::string_view data) {
  if (mac_key_.size() != crypto::kAesKeySize) return Internal("key sealer has no key");
  return crypto::HmacSha256(mac_key_.span(), crypto::AsBytes(data));
}

}  // namespace dm::container
