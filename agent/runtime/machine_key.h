// The device's software key store root: 32 random bytes in a 0600 file of the state
// directory, never in the database. Device-level secrets that must be usable without a user
// (the management TLS client key) are stored in the database sealed under it, so a copy of
// the database alone reveals nothing. On hardware with a TPM this is where the TPM would sit.
#pragma once

#include <filesystem>
#include <span>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::agent {

inline constexpr char kMachineKeyFile[] = "machine.key";

class MachineKey {
 public:
  // Loads the key, creating it (0600) on first use.
  static Result<MachineKey> LoadOrCreate(const std::filesystem::path& state_dir,
                                         crypto::Random& random = crypto::OsRandom());

  // AES-256-GCM; `purpose` is bound as associated data so a sealed value cannot be moved to
  // another purpose.
  Result<Bytes> Seal(const SecretBytes& plaintext, std::string_view purpose,
                     crypto::Random& random = crypto::OsRandom()) const;
  Result<SecretBytes> Open(std::span<const uint8_t> sealed, std::string_view purpose) const;
  // A 32-byte key for one `purpose` (HMAC-SHA256 under the machine key), for roots handed to
  // other modules, e.g. the credential containers' KeySealer, so they never hold this key.
  Result<SecretBytes> DeriveKey(std::string_view purpose) const;

 private:
  explicit MachineKey(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace dm::agent
