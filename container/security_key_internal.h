// Security-key internals shared by the implementation and its tests; not part of the API.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "container/key_sealer.h"
#include "storage/database.h"

namespace dm::container::internal {

// What each AES-GCM blob is for; bound into its associated data with the user and the key id
// (and the credential id), so a blob copied into another slot, user or key fails to open.
inline constexpr char kPurposeAuthenticatorSecret[] =
    "dmagent/security-key/v1/authenticator-secret";
inline constexpr char kPurposePinVerifier[] = "dmagent/security-key/v1/pin-verifier";
inline constexpr char kPurposeCredentialKey[] = "dmagent/security-key/v1/credential-key";
// Under the device's KeySealer: the sealed authenticator secret (sealed again) and the PIN
// state's MAC.
inline constexpr char kPurposeSecretSeal[] = "dmagent/security-key/v1/authenticator-secret-seal";
inline constexpr char kPurposePinState[] = "dmagent/security-key/v1/pin-state";

// purpose \n <len>:user \n <len>:key_id \n credential_id_hex — length-prefixed so no user name
// or key id can forge another.
std::string SecurityKeyAssociatedData(std::string_view purpose, std::string_view user,
                                      std::string_view key_id,
                                      std::string_view credential_id_hex = {});

// Number of Unicode code points in `text`; InvalidArgument when it is not well-formed UTF-8
// (truncated or overlong sequences, surrogates, values above U+10FFFF).
Result<int> CountUtf8CodePoints(std::string_view text);

// CTAP's pinHash: LEFT(SHA-256(pin), 16).
Result<SecretBytes> PinHash(const SecretBytes& pin);

// Reads the 32-byte device key, creating it (random, mode 0600, atomically) when the file does
// not exist. Refuses a file other users can read or one of the wrong size.
Result<SecretBytes> LoadOrCreateDeviceKey(const std::filesystem::path& file,
                                          crypto::Random& random);

// The CBOR COSE_Key (kty EC2, alg ES256, crv P-256, x, y) of a P-256 SubjectPublicKeyInfo PEM.
Result<Bytes> CoseKeyFromPem(std::string_view public_key_pem);

// The 16 bytes of a "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" key id.
Result<Bytes> AaguidOf(std::string_view key_id);

// rpIdHash || flags || signCount (big-endian) [|| attested credential data].
Result<Bytes> AuthenticatorData(std::string_view rp_id, uint8_t flags, uint32_t sign_count,
                                std::span<const uint8_t> attested_credential_data = {});

// Test seam: the private key PEM of one credential, opened the way the store does. Lets tests
// prove that the database never holds it in clear.
Result<SecretBytes> OpenCredentialPrivateKey(storage::Database& db, KeySealer& sealer,
                                             const std::filesystem::path& device_key_file,
                                             std::string_view user, std::string_view key_id,
                                             std::span<const uint8_t> credential_id);

}  // namespace dm::container::internal
