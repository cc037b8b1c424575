#include "agent/runtime/machine_key.h"

#include <openssl/crypto.h>

#include <string>

#include "base/key_file.h"

namespace dm::agent {

Result<MachineKey> MachineKey::LoadOrCreate(const std::filesystem::path& state_dir,
                                            crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(SecretBytes key, LoadOrCreateKeyFile(state_dir / kMachineKeyFile, random));
  return MachineKey(std::move(key));
}

Result<Bytes> MachineKey::Seal(const SecretBytes& plaintext, std::string_view purpose,
                               crypto::Random& random) const {
  return crypto::Seal(key_, plaintext.span(), purpose, random);
}

Result<SecretBytes> MachineKey::DeriveKey(std::string_view purpose) const {
  DM_ASSIGN_OR_RETURN(
      Bytes k, crypto::HmacSha256(key_.span(), crypto::AsBytes("dmagent/machine-key/derive/" +
                                                               std::string(purpose))));
  SecretBytes out(k.data(), k.size());
  OPENSSL_cleanse(k.data(), k.size());
  return out;
}

Result<SecretBytes> MachineKey::Open(std::span<const uint8_t> sealed,
                                     std::string_view purpose) const {
  return crypto::Open(key_, sealed, purpose);
}

}  // namespace dm::agent
