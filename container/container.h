// Per-user credential containers modelled on Windows Hello for Business (ARCHITECTURE
// decisions 4 and 7), kept in the agent's SQLite database.
//
// Secrets at rest: a random 256-bit master key per container seals the Hello private key.
// The master key is stored only wrapped: under scrypt(PIN), sealed again under the device's
// KeySealer (key_sealer.h), and, when PIN recovery is on, under the PIN reset protector (a
// random 256-bit AES key stored only RSA-OAEP-encrypted to the PIN reset service's public key).
// The retry counter is MACed under the KeySealer. The PIN itself is never stored.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "base/secret.h"
#include "base/status.h"
#include "container/key_sealer.h"
#include "storage/database.h"

namespace dm::container {

// ---------------------------------------------------------------------------------------------
// PIN complexity (PassportForWork .../PINComplexity/*). std::nullopt = "not configured", which
// is NOT the same as 0: not configured means digits required and uppercase, lowercase and
// special characters not allowed; an explicit 0 means "allowed".
struct PinComplexity {
  // 4..127; defaults 4 and 127; an inconsistent pair (min >= max) falls back to 4/127.
  std::optional<int> minimum_length = std::nullopt;
  std::optional<int> maximum_length = std::nullopt;
  // Character classes: 0 allow, 1 require at least one, 2 disallow. Special characters are
  // ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \ ] ^ _ ` { | } ~ (no space).
  std::optional<int> uppercase = std::nullopt;
  std::optional<int> lowercase = std::nullopt;
  std::optional<int> special = std::nullopt;
  std::optional<int> digits = std::nullopt;
  std::optional<int> history = std::nullopt;          // 0..50, 0 = none; the current PIN counts
  std::optional<int> expiration_days = std::nullopt;  // 0..730, 0 = never
  friend bool operator==(const PinComplexity&, const PinComplexity&) = default;
};

enum class CharRule { kAllow = 0, kRequire = 1, kDisallow = 2 };

// The rules after defaults and the min/max fallback are resolved.
struct PinRules {
  int minimum_length = 4;
  int maximum_length = 127;
  CharRule uppercase = CharRule::kDisallow;
  CharRule lowercase = CharRule::kDisallow;
  CharRule special = CharRule::kDisallow;
  CharRule digits = CharRule::kRequire;
  int history = 0;
  int expiration_days = 0;
  friend bool operator==(const PinRules&, const PinRules&) = default;
};

// InvalidArgument naming the node when a configured value is outside its documented range
// (e.g. "PINComplexity/History must be 0..50, got 51") or when the classes allow no character.
Result<PinRules> ResolvePinRules(const PinComplexity& complexity);
// InvalidArgument naming the first rule the PIN breaks, e.g.
// "PIN must contain at least one uppercase letter". History is checked by the store.
Status CheckPin(const SecretBytes& pin, const PinRules& rules);

// ---------------------------------------------------------------------------------------------
// What the policy engine last applied to one user's container.
struct AppliedPolicy {
  bool hello_enabled = true;             // Policies/UsePassportForWork (DDF default true)
  bool pin_recovery_enabled = false;     // Policies/EnablePinRecovery
  bool require_security_device = false;  // Policies/RequireSecurityDevice
  PinComplexity complexity = {};
  friend bool operator==(const AppliedPolicy&, const AppliedPolicy&) = default;
};

// ---------------------------------------------------------------------------------------------
// Who certifies the Hello public key.
class CertificateIssuer {
 public:
  virtual ~CertificateIssuer() = default;
  // A PEM certificate for `public_key_pem`, subject CN = common_name, valid from `now`.
  virtual Result<std::string> Issue(std::string_view public_key_pem, std::string_view common_name,
                                    TimePoint now) = 0;
  // Whether a CA is there right now (an agent's issuer appears with its enrollment); when not,
  // the container self-signs as if no issuer were configured.
  virtual bool Available() { return true; }
};

// Issues from a CA the device was given (pki::IssueForPublicKey, client-auth certificate).
class LocalCaIssuer final : public CertificateIssuer {
 public:
  LocalCaIssuer(pki::CertificateAuthority ca, std::chrono::seconds validity);
  Result<std::string> Issue(std::string_view public_key_pem, std::string_view common_name,
                            TimePoint now) override;

 private:
  pki::CertificateAuthority ca_;
  std::chrono::seconds validity_;
};

// ---------------------------------------------------------------------------------------------
// The identity side of a reset: the user proves who they are (password + one-time code).
struct ResetCredentials {
  SecretBytes password = {};
  std::string otp_code = {};  // 6-digit TOTP
};

class UserAuthenticator {
 public:
  virtual ~UserAuthenticator() = default;
  // OK, Unauthenticated (wrong password / code) or PermissionDenied (consent missing).
  virtual Status Authenticate(std::string_view user, const ResetCredentials& credentials) = 0;
};

// The PIN reset service (local implementation: container/local_pin_reset_service.h; the
// networked one implements the same interface).
// The OAEP label a user's protector is encrypted with: the service decrypts it only with the
// label of the user who authenticated, so one user's credentials never release another
// user's protector. User names are compared case-insensitively, as UPNs are.
inline std::string PinResetProtectorLabel(std::string_view user) {
  std::string label = "dmagent-pin-reset-protector-v1:";
  for (char c : user) label += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return label;
}

class PinResetService : public UserAuthenticator {
 public:
  // SubjectPublicKeyInfo PEM of the RSA key protectors are encrypted to.
  virtual Result<std::string> PublicKeyPem() = 0;
  // Authenticates the user and returns the decrypted 32-byte protector.
  virtual Result<SecretBytes> RecoverProtector(std::string_view user,
                                               std::span<const uint8_t> encrypted_protector,
                                               const ResetCredentials& credentials) = 0;
};

// ---------------------------------------------------------------------------------------------
// Web sign-in allow-list (Policy Authentication/ConfigureWebSignInAllowedUrls, `;`-separated
// bare hosts or https URLs). Returns the normalised (lower-case) hosts, or InvalidArgument naming
// the bad entry. An empty value is an empty list (nothing allowed).
struct AllowedHost {
  std::string host = {};
  int port = 443;
  friend bool operator==(const AllowedHost&, const AllowedHost&) = default;
};
Result<std::vector<AllowedHost>> ParseWebSignInAllowList(std::string_view value);
// The exact message web sign-in shows for a page that is not allowed.
inline constexpr char kWebSignInBlocked[] = "We can't open that page right now";

// ---------------------------------------------------------------------------------------------
enum class CanReset {
  kUnknown,
  kDestructiveOnly,
  kNonDestructiveOnly,
  kDestructiveAndNonDestructive
};
std::string_view CanResetName(CanReset c);  // "DestructiveOnly", ... as dsregcmd prints them

enum class ResetKind { kDestructive, kNonDestructive };
std::string_view ResetKindName(ResetKind k);  // "destructive" / "non-destructive"

struct ResetRecord {
  ResetKind kind = ResetKind::kDestructive;
  TimePoint at;
  std::string old_thumbprint;
  std::string new_thumbprint;  // equal to old_thumbprint for a non-destructive reset
};

struct ContainerInfo {
  std::string user;
  bool exists = false;     // a container (key pair + PIN) is enrolled
  bool ngc_set = false;    // dsregcmd NgcSet
  std::string ngc_key_id;  // "{8F1A...}" like dsregcmd NgcKeyId
  std::string thumbprint;  // SHA-1 of the certificate, upper-case hex
  std::string certificate_pem;
  std::string public_key_pem;
  std::string issuer_cn;
  bool self_signed = false;
  TimePoint created_at;
  TimePoint not_before;
  TimePoint not_after;
  bool protector_present = false;
  CanReset can_reset = CanReset::kUnknown;
  std::string can_reset_reason;
  int failed_attempts = 0;
  int retries_left = 0;
  // false: the retry counter does not verify under this device's key (edited, or another
  // device's database); the container then reads as locked until a PIN reset.
  bool counter_verified = true;
  bool locked_out = false;
  std::optional<TimePoint> locked_until;
  TimePoint pin_set_at;
  std::optional<TimePoint> pin_expires_at;
  bool pin_expired = false;
  std::optional<ResetRecord> last_reset;
};

struct UnlockResult {
  // The PIN was right but must be changed now: it expired (Expiration) or it no longer meets
  // the applied complexity. Unlock still succeeds so the user is not locked out of their keys.
  bool must_change_pin = false;
  std::string reason;  // why, when must_change_pin
};

struct StoreOptions {
  Clock* clock = &Clock::System();
  crypto::Random* random = &crypto::OsRandom();
  crypto::ScryptParams kdf = crypto::ScryptParams::Strong();
  // Certifies new Hello keys; nullptr = self-signed (pki::SelfSign), used only when the device
  // has no CA. Not owned; must outlive the store.
  CertificateIssuer* issuer = nullptr;
  // Validity of self-signed certificates (an issuer decides its own, e.g. LocalCaIssuer).
  std::chrono::seconds certificate_validity = std::chrono::hours(24 * 365);
  int max_pin_attempts = 5;
  // First lockout after max_pin_attempts; each further wrong PIN after that doubles it.
  std::chrono::seconds lockout = std::chrono::minutes(1);
  std::chrono::seconds max_lockout = std::chrono::hours(24);
};

// All containers of the device plus the device-wide container settings. Works on a Database
// opened with storage::AgentSchema(); it and `sealer` are not owned and must outlive the store.
// Not thread-safe.
class ContainerStore {
 public:
  ContainerStore(storage::Database& db, KeySealer& sealer, StoreOptions options);

  // Seals every container written before the key sealer existed (no PIN needed; their counters
  // are MACed as they are). Returns how many. PIN operations also seal such a row first.
  Result<int> SealLegacyContainers();
  // The device's key sealer, for the other stores bound to the machine (security keys).
  KeySealer& sealer() { return sealer_; }

  // ---- policy (written by the policy engine) ----
  // Records what policy says for `user` (whether or not a container exists). Returns true
  // when anything differs from what was applied before. Never deletes a container: with
  // hello_enabled=false an enrolled user keeps it, only new provisioning is refused. Turning
  // recovery off removes the protector (the keys stay); turning it on creates one at the next
  // PIN unlock/change (the master key is needed).
  Result<bool> ApplyPolicy(std::string_view user, const AppliedPolicy& policy);
  // NotFound when nothing was ever applied for `user`.
  Result<AppliedPolicy> GetAppliedPolicy(std::string_view user);

  // Device-wide: the PIN reset service's public key (PEM). Protectors are encrypted to it; a
  // changed key makes the next unlock re-create the protector.
  Status SetPinResetServiceKey(std::string_view public_key_pem);
  // Device-wide web sign-in allow-list (the raw policy value; "" clears it).
  Status SetWebSignInAllowedUrls(std::string_view value);
  Result<std::vector<AllowedHost>> WebSignInAllowList();
  // OK when web sign-in may open `url`; PermissionDenied with kWebSignInBlocked otherwise.
  Status NavigateWebSignIn(std::string_view url);

  // ---- the user's side ----
  // FailedPrecondition when policy disables Hello for the user or requires a security device
  // (containers here are software-backed), AlreadyExists when enrolled, InvalidArgument when
  // the PIN breaks the applied complexity. With no applied policy the CSP defaults hold.
  Result<ContainerInfo> Provision(std::string_view user, const SecretBytes& pin);
  // Unauthenticated "incorrect PIN, N attempts left"; FailedPrecondition while locked out.
  Result<UnlockResult> Unlock(std::string_view user, const SecretBytes& pin);
  // Unlocks and signs `data` with the Hello key (ECDSA P-256/SHA-256, DER).
  Result<Bytes> Sign(std::string_view user, const SecretBytes& pin, std::span<const uint8_t> data);
  Status ChangePin(std::string_view user, const SecretBytes& old_pin, const SecretBytes& new_pin);

  // "I forgot my PIN", keeping the keys: the service authenticates the user and decrypts the
  // protector; the master key is re-wrapped under `new_pin` and the protector rotated.
  // FailedPrecondition when the container has no protector.
  Status ResetPinNonDestructive(std::string_view user, PinResetService& service,
                                const ResetCredentials& credentials, const SecretBytes& new_pin);
  // Deletes the key pair and certificate and provisions new ones with `new_pin` after the
  // authenticator accepted the user; the reset is recorded. Refused (container kept) when
  // policy would not allow the new provisioning.
  Result<ContainerInfo> ResetPinDestructive(std::string_view user, UserAuthenticator& authenticator,
                                            const ResetCredentials& credentials,
                                            const SecretBytes& new_pin);

  // ---- status ----
  // exists=false (not an error) when the user has no container.
  Result<ContainerInfo> Info(std::string_view user);
  Result<std::vector<std::string>> Users();  // users with a container or an applied policy

 private:
  storage::Database& db_;
  KeySealer& sealer_;
  StoreOptions options_;
};

}  // namespace dm::container
