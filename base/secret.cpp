#include "base/secret.h"

#include <openssl/crypto.h>

namespace dm {

void SecretBytes::Wipe() {
  if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
  b_.clear();
}

void SecretBytes::resize(size_t n) {
  if (n < b_.size()) OPENSSL_cleanse(b_.data() + n, b_.size() - n);
  // Growing may reallocate; copy through a fresh buffer so the old one is wiped first.
  std::vector<uint8_t> fresh(n);
  for (size_t i = 0; i < n && i < b_.size(); ++i) fresh[i] = b_[i];
  Wipe();
  b_ = std::move(fresh);
}

bool operator==(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace dm
