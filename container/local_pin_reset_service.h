// An in-process PIN reset service: the RSA key protectors are encrypted to, a small user
// directory (scrypt password verifier + TOTP secret) and the tenant's consent to the two
// Entra apps the PIN reset flow needs. The networked service implements the same interface.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "container/container.h"

namespace dm::container {

// Entra application ids (client_id) the tenant must consent to.
inline constexpr char kPinResetServiceAppId[] = "b8456c59-1230-44c7-a4a2-99b085333e84";
inline constexpr char kPinResetServiceAppName[] = "Microsoft Pin Reset Service Production";
inline constexpr char kPinResetClientAppId[] = "9115dd05-fad5-4f9c-acc7-305d08b1b04e";
inline constexpr char kPinResetClientAppName[] = "Microsoft Pin Reset Client Production";

// Both Entra apps or nothing: OK, or PermissionDenied naming each missing app as Entra does
// (AADSTS650052). Consent is a tenant configuration the user cannot fix, so say what is missing.
// Shared by every PIN reset service implementation.
inline Status CheckPinResetConsent(bool service_app_consented, bool client_app_consented) {
  std::string missing;
  if (!service_app_consented) {
    missing += std::string(kPinResetServiceAppName) + " (" + kPinResetServiceAppId + ")";
  }
  if (!client_app_consented) {
    if (!missing.empty()) missing += " and ";
    missing += std::string(kPinResetClientAppName) + " (" + kPinResetClientAppId + ")";
  }
  if (missing.empty()) return Status::Ok();
  return PermissionDenied("AADSTS650052: the tenant has not consented to " + missing +
                          "; an administrator must grant consent before PINs can be reset "
                          "(CAA20004)");
}

struct LocalPinResetServiceOptions {
  Clock* clock = &Clock::System();
  crypto::ScryptParams kdf = crypto::ScryptParams::Strong();  // password verifiers
  int rsa_bits = 3072;
  // TOTP codes one step either side of now are accepted (clock skew).
  int totp_window_steps = 1;
  // Consecutive failed sign-ins before a user is refused for `lockout` (a 6-digit code must
  // not be guessable by trying them all).
  int max_failed_sign_ins = 5;
  std::chrono::seconds lockout = std::chrono::minutes(15);
};

class LocalPinResetService final : public PinResetService {
 public:
  // A new RSA key pair.
  static Result<std::unique_ptr<LocalPinResetService>> Create(LocalPinResetServiceOptions options);
  // An existing key (PKCS#8 PEM), e.g. one the owner persisted.
  static Result<std::unique_ptr<LocalPinResetService>> FromPrivateKey(
      SecretBytes private_key_pem, LocalPinResetServiceOptions options);

  // Adds or replaces a directory user. The password is kept only as a salted scrypt verifier.
  Status AddUser(std::string_view user, const SecretBytes& password, SecretBytes totp_secret);
  // Tenant consent to an app id (kPinResetServiceAppId / kPinResetClientAppId).
  void SetConsent(std::string_view app_id, bool granted);

  // The private key, for its owner to persist (and for tests that decrypt independently).
  const SecretBytes& private_key_pem() const { return private_key_pem_; }

  Result<std::string> PublicKeyPem() override;
  // Consent first (PermissionDenied naming the missing app, AADSTS650052-style), then password
  // and TOTP (Unauthenticated; a code is accepted once). Unknown user: Unauthenticated. After
  // max_failed_sign_ins failures in a row: FailedPrecondition until the lockout ends.
  Status Authenticate(std::string_view user, const ResetCredentials& credentials) override;
  Result<SecretBytes> RecoverProtector(std::string_view user,
                                       std::span<const uint8_t> encrypted_protector,
                                       const ResetCredentials& credentials) override;

 private:
  struct DirectoryUser {
    Bytes salt;
    SecretBytes password_verifier;
    SecretBytes totp_secret;
    int64_t last_totp_step = -1;  // replay protection
    int failed_sign_ins = 0;
    int64_t locked_until = 0;
  };
  LocalPinResetService(SecretBytes private_key_pem, std::string public_key_pem,
                       LocalPinResetServiceOptions options)
      : private_key_pem_(std::move(private_key_pem)),
        public_key_pem_(std::move(public_key_pem)),
        options_(options) {}

  SecretBytes private_key_pem_;
  std::string public_key_pem_;
  LocalPinResetServiceOptions options_;
  std::map<std::string, DirectoryUser, std::less<>> users_;
  bool service_app_consented_ = false;
  bool client_app_consented_ = false;
};

}  // namespace dm::container
