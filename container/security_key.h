// Software FIDO2 security keys: CTAP2 authenticators simulated in software, one or more per
// user, kept in the agent database (reference csp-and-container.md section 5).
//
// What is simulated and what is real:
// - Real: ES256 (ECDSA P-256/SHA-256) credentials; WebAuthn authenticator data and assertion
//   signatures (they verify with `openssl dgst -sha256 -verify`); the CTAP2 clientPIN rules
//   (code points vs bytes, minPINLength, pinRetries 8, 3 wrong per power-up, forcePINChange,
//   authenticatorReset within 10 s of power-up) with CTAP2 error codes.
// - Simulated: the key's "RAM" state that must outlive one agent process (power-up time and the
//   wrong-PIN count since power-up) is persisted; PowerCycle() stands for re-inserting the key.
//   The platform passes the PIN itself (the pinUvAuthToken exchange is folded into the call).
//
// Secrets at rest (a software authenticator has no secure element, so be honest about it):
// each key has its own random 256-bit authenticator secret that seals (AES-256-GCM) its
// credential private keys and its PIN verifier. That secret is stored only sealed under the
// device key, 32 random bytes in a separate 0600 file in the state directory
// (kSecurityKeyDeviceKeyFile), never in the database. It cannot be derived from the PIN because
// a "discouraged" assertion must sign without any PIN. So a copy of the database (backup,
// support bundle) reveals no private key and no PIN verifier, while anyone who can read both the
// database and the device key file, i.e. the agent's own account, can use the keys. A reset
// replaces the authenticator secret, so credential blobs left in free database pages are dead.
// The PIN is never stored: only LEFT(SHA-256(salt || LEFT(SHA-256(PIN), 16)), 16), CTAP's
// pinHash salted, compared in constant time.
//
// Bound to the machine as the Hello containers are (container/key_sealer.h): the sealed
// authenticator secret is sealed once more under the device's KeySealer, and the PIN state
// (retries, failures since power-up, whether a PIN is set, minPINLength, forcePINChange) is
// MACed under it. State edited in the database reads as PIN_BLOCKED, never as reset; only
// authenticatorReset, which deletes the key's credentials, leaves that state.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "container/key_sealer.h"
#include "storage/database.h"

namespace dm::container {

// CTAP status codes this authenticator returns. A failed call's Status message begins with
// "<name> (0x<value>): " (e.g. "CTAP2_ERR_PIN_INVALID (0x31): incorrect PIN, 7 retries left");
// CtapErrorOf() recovers the enum from a Status, also after WithContext().
enum class CtapError : uint8_t {
  kNone = 0x00,                // CTAP2_OK, or an error that is not the authenticator's
  kInvalidParameter = 0x02,    // CTAP1_ERR_INVALID_PARAMETER
  kInvalidLength = 0x03,       // CTAP1_ERR_INVALID_LENGTH (clientDataHash is not 32 bytes)
  kOperationDenied = 0x27,     // CTAP2_ERR_OPERATION_DENIED (reset not confirmed by the user)
  kNoCredentials = 0x2E,       // CTAP2_ERR_NO_CREDENTIALS
  kNotAllowed = 0x30,          // CTAP2_ERR_NOT_ALLOWED
  kPinInvalid = 0x31,          // CTAP2_ERR_PIN_INVALID
  kPinBlocked = 0x32,          // CTAP2_ERR_PIN_BLOCKED: only authenticatorReset helps
  kPinAuthBlocked = 0x34,      // CTAP2_ERR_PIN_AUTH_BLOCKED: power cycle the key
  kPinNotSet = 0x35,           // CTAP2_ERR_PIN_NOT_SET
  kPuatRequired = 0x36,        // CTAP2_ERR_PUAT_REQUIRED (PIN_REQUIRED in CTAP 2.0)
  kPinPolicyViolation = 0x37,  // CTAP2_ERR_PIN_POLICY_VIOLATION
};
std::string_view CtapErrorName(CtapError e);  // "CTAP2_ERR_PIN_INVALID"; "CTAP2_OK" for kNone
CtapError CtapErrorOf(const Status& status);  // kNone when the Status carries no CTAP code

inline constexpr int kDefaultMinPinLength = 4;  // code points
inline constexpr int kMaxPinBytes = 63;         // UTF-8 bytes (newPinEnc pads to 64)
inline constexpr int kMaxPinRetries = 8;
inline constexpr int kMaxPinFailuresPerPowerUp = 3;
inline constexpr std::chrono::seconds kResetWindow{10};  // after power-up
// The device key file, relative to the state directory.
inline constexpr char kSecurityKeyDeviceKeyFile[] = "security-keys.key";
// What a front end shows before asking to confirm an authenticatorReset.
inline constexpr char kSecurityKeyResetWarning[] =
    "Resetting a security key permanently deletes EVERY credential (passkey) on it for every "
    "site and account, and removes its PIN. Sign-ins that use this key will stop working until "
    "you register it again. This cannot be undone.";

// Platform-side check of a new PIN (CTAP2 clientPIN): well-formed UTF-8 without NUL, at least
// `min_pin_length` Unicode code points, at most 63 bytes. Not NFC-normalised here: the caller
// passes what the user typed, normalised. InvalidArgument with CTAP2_ERR_PIN_POLICY_VIOLATION.
Status CheckSecurityKeyPin(const SecretBytes& pin, int min_pin_length = kDefaultMinPinLength);

enum class UserVerification { kRequired, kPreferred, kDiscouraged };
// "required" | "preferred" | "discouraged", as in WebAuthn options.
Result<UserVerification> ParseUserVerification(std::string_view text);
std::string_view UserVerificationName(UserVerification uv);

enum class PinBlockState { kNone, kPinAuthBlocked, kPinBlocked };
std::string_view PinBlockStateName(PinBlockState s);  // "none", "PIN_AUTH_BLOCKED", "PIN_BLOCKED"

// One key, as a help desk sees it. Nothing here is secret.
struct SecurityKeyInfo {
  std::string key_id;  // lower-case UUID; its 16 bytes are the key's AAGUID
  std::string user;
  std::string label;
  TimePoint created_at;
  bool pin_set = false;
  int pin_retries = kMaxPinRetries;
  int failures_since_power_up = 0;
  PinBlockState blocked = PinBlockState::kNone;
  // false: the PIN state does not verify under this device's key sealer (edited, or the
  // database came from another machine); the key then reads as PIN_BLOCKED with 0 retries.
  bool state_verified = true;
  int min_pin_length = kDefaultMinPinLength;
  bool force_pin_change = false;
  int credential_count = 0;
  std::optional<TimePoint> pin_set_at;
  TimePoint powered_up_at;
  std::optional<TimePoint> last_reset_at;
};

struct CredentialInfo {
  Bytes credential_id;
  std::string rp_id;
  std::string user_name;
  std::string public_key_pem;  // SubjectPublicKeyInfo, P-256
  uint32_t sign_count = 0;
  TimePoint created_at;
};

struct MakeCredentialRequest {
  std::string rp_id;       // "login.contoso.com"
  Bytes client_data_hash;  // SHA-256 of the WebAuthn clientDataJSON, 32 bytes
  std::string user_name;   // the account at the RP, for listing
  UserVerification uv = UserVerification::kPreferred;
  const SecretBytes* pin = nullptr;  // the PIN the platform collected, if any; not owned
};

struct GetAssertionRequest {
  std::string rp_id;
  Bytes client_data_hash;                // 32 bytes
  std::vector<Bytes> allow_credentials;  // empty: any credential of rp_id (newest first)
  UserVerification uv = UserVerification::kPreferred;
  const SecretBytes* pin = nullptr;
};

// kPinSetupRequired is not an error: the key has no PIN and the request needs one, so the
// platform must ask the user to create a PIN (SetPin) and then repeat the request. Windows does
// this for "preferred" at sign-in since KB5065789/KB5068861 (KB5073129).
enum class Outcome { kOk, kPinSetupRequired };

struct MakeCredentialResponse {
  Outcome outcome = Outcome::kOk;
  std::string reason;  // why, when kPinSetupRequired
  Bytes credential_id;
  std::string public_key_pem;
  // rpIdHash(32) || flags(UP, UV, AT) || signCount(4) || AAGUID(16) || L(2) || credentialId ||
  // COSE_Key (EC2, ES256).
  Bytes authenticator_data;
  // "packed" self attestation: ECDSA over authenticator_data || client_data_hash with the new
  // credential's key.
  Bytes attestation_signature;
  bool user_verified = false;
};

struct AssertionResponse {
  Outcome outcome = Outcome::kOk;
  std::string reason;
  Bytes credential_id;
  // rpIdHash(32) || flags(1: UP 0x01, UV 0x04) || signCount(4, big-endian).
  Bytes authenticator_data;
  // DER ECDSA P-256/SHA-256 over authenticator_data || client_data_hash.
  Bytes signature;
  uint32_t sign_count = 0;
  bool user_verified = false;
};

// The bytes an assertion or self attestation signs: authenticator_data || client_data_hash.
Bytes SignedData(const Bytes& authenticator_data, const Bytes& client_data_hash);

// The user's explicit consent to an authenticatorReset (the "touch" on a real key).
enum class ResetConfirmation { kNotConfirmed, kDestroyAllCredentials };

struct SecurityKeyOptions {
  // The device's key sealer (Device::sealer()); not owned. Required: without it nothing can be
  // read or written (FailedPrecondition).
  KeySealer* sealer = nullptr;
  Clock* clock = &Clock::System();
  crypto::Random* random = &crypto::OsRandom();
  // The device key file (state_dir / kSecurityKeyDeviceKeyFile); created 0600 on first use.
  // Empty: List/Get/PowerCycle work, anything that needs a secret fails (reports need none).
  std::filesystem::path device_key_file = {};
  // true = Windows since KB5068861: "preferred" at sign-in with no PIN set asks for PIN setup.
  // false = the earlier behaviour: the assertion proceeds without UV.
  bool pin_setup_on_preferred_assertion = true;
};

// All software security keys of the device. Works on a Database opened with
// storage::AgentSchema(); not owned, must outlive the store. Not thread-safe; separate
// processes are serialised by the database's write transactions.
class SecurityKeyStore {
 public:
  SecurityKeyStore(storage::Database& db, SecurityKeyOptions options);

  // A new key for `user`, powered up now, no PIN. Returns its key id.
  Result<std::string> Create(std::string_view user, std::string_view label);
  // The user's keys, oldest first (empty when none).
  Result<std::vector<SecurityKeyInfo>> List(std::string_view user);
  // Every key of the device, by user then age, for device-wide reports.
  Result<std::vector<SecurityKeyInfo>> ListAll();
  Result<SecurityKeyInfo> Get(std::string_view user, std::string_view key_id);
  // For a `--key` option: the full id of the user's key that `key_id` names exactly or by a
  // unique prefix; with no key_id, the user's only key. NotFound / InvalidArgument otherwise.
  Result<std::string> ResolveKey(std::string_view user, std::optional<std::string_view> key_id);
  Result<std::vector<CredentialInfo>> Credentials(std::string_view user, std::string_view key_id);

  // Simulates removing and re-inserting the key: clears PIN_AUTH_BLOCKED and opens the 10 s
  // reset window.
  Status PowerCycle(std::string_view user, std::string_view key_id);

  // ---- clientPIN ----
  // Only when no PIN is set (else CTAP2_ERR_NOT_ALLOWED).
  Status SetPin(std::string_view user, std::string_view key_id, const SecretBytes& new_pin);
  // Needs the current PIN (a wrong one counts against the retries); clears forcePINChange.
  Status ChangePin(std::string_view user, std::string_view key_id, const SecretBytes& current_pin,
                   const SecretBytes& new_pin);
  // authenticatorConfig setMinPINLength: only raises (max 63). Needs the PIN when one is set.
  // forcePINChange is set when `force_change_pin` or when the current PIN is shorter than the
  // new minimum.
  Status SetMinPinLength(std::string_view user, std::string_view key_id, int new_min_length,
                         bool force_change_pin, const SecretBytes* pin);
  // authenticatorReset: deletes every credential, clears the PIN, minPINLength 4, retries 8.
  // Only within 10 s of power-up (CTAP2_ERR_NOT_ALLOWED) and only when confirmed
  // (CTAP2_ERR_OPERATION_DENIED). Recorded. Returns the number of credentials deleted.
  Result<int> Reset(std::string_view user, std::string_view key_id, ResetConfirmation confirm);

  // ---- WebAuthn ----
  Result<MakeCredentialResponse> MakeCredential(std::string_view user, std::string_view key_id,
                                                const MakeCredentialRequest& request);
  Result<AssertionResponse> GetAssertion(std::string_view user, std::string_view key_id,
                                         const GetAssertionRequest& request);

 private:
  Result<const SecretBytes*> DeviceKey();
  Result<KeySealer*> Sealer();

  storage::Database& db_;
  SecurityKeyOptions options_;
  std::optional<SecretBytes> device_key_;
};

}  // namespace dm::container
