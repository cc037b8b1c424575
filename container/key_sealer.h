// KeySealer: the device-bound root a credential container's secrets are tied to, so that a copy
// of the database alone is worth nothing to a PIN guesser and its retry counter cannot be reset
// by editing it.
//
// The container store seals each PIN wrap of a master key (already AES-GCM under scrypt(PIN))
// once more under the sealer, and MACs the retry counter and lockout state under it. Without
// the sealer's key an attacker holding the database cannot even test a PIN guess offline.
//
// SoftwareKeySealer is today's implementation: keys derived from a 32-byte root the agent takes
// from machine.key (agent/runtime/machine_key.h), a 0600 file beside the database. A TPM would
// implement the same interface with a key that never leaves it (TPM2 seal/unseal and HMAC),
// which would also rate-limit the device itself; nothing in the store would change.
#pragma once

#include <span>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::container {

class KeySealer {
 public:
  virtual ~KeySealer() = default;
  // Authenticated encryption bound to `context` (purpose, user, key id).
  virtual Result<Bytes> Seal(std::span<const uint8_t> plaintext, std::string_view context) = 0;
  // Unauthenticated when `sealed` was not sealed by this device's root under `context`, or
  // was altered.
  virtual Result<SecretBytes> Open(std::span<const uint8_t> sealed, std::string_view context) = 0;
  // A 32-byte MAC of `data` (which carries its own purpose) under this device's root.
  virtual Result<Bytes> Mac(std::string_view data) = 0;
  // OK when `mac` is Mac(data) (constant-time); Unauthenticated otherwise.
  Status VerifyMac(std::string_view data, std::span<const uint8_t> mac);
};

class SoftwareKeySealer : public KeySealer {
 public:
  // `root`: 32 secret bytes; separate sealing and MAC keys are derived from it.
  explicit SoftwareKeySealer(const SecretBytes& root, crypto::Random& random = crypto::OsRandom());

  Result<Bytes> Seal(std::span<const uint8_t> plaintext, std::string_view context) override;
  Result<SecretBytes> Open(std::span<const uint8_t> sealed, std::string_view context) override;
  Result<Bytes> Mac(std::string_view data) override;

 private:
  SecretBytes seal_key_;
  SecretBytes mac_key_;
  crypto::Random* random_;
};

}  // namespace dm::container
