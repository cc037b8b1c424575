#include "container/local_pin_reset_service.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "container/container_internal.h"

namespace dm::container {
namespace {

constexpr size_t kSaltSize = 16;
constexpr size_t kProtectorSize = 32;

// The same text for a wrong user, password or code: which one was wrong is not revealed.
Status SignInFailed() {
  return Unauthenticated("sign-in failed: wrong user name, password or verification code");
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<std::unique_ptr<LocalPinResetService>> LocalPinResetService::Create(
    LocalPinResetServiceOptions options) {
  DM_ASSIGN_OR_RETURN(SecretBytes key, crypto::GenerateRsaPrivateKey(options.rsa_bits));
  return FromPrivateKey(std::move(key), options);
}

Result<std::unique_ptr<LocalPinResetService>> LocalPinResetService::FromPrivateKey(
    SecretBytes private_key_pem, LocalPinResetServiceOptions options) {
  DM_RETURN_IF_ERROR(crypto::ValidateScryptParams(options.kdf));
  if (options.clock == nullptr) return InvalidArgument("LocalPinResetService needs a clock");
  if (options.totp_window_steps < 0 || options.totp_window_steps > 10) {
    return InvalidArgument("TOTP window must be 0..10 steps");
  }
  DM_ASSIGN_OR_RETURN(std::string public_pem, crypto::PublicKeyPem(private_key_pem));
  // Proves the key is RSA and usable for OAEP-SHA-256 before anyone encrypts to it.
  DM_RETURN_IF_ERROR(crypto::RsaOaepEncrypt(public_pem, Bytes(kProtectorSize)).status());
  return std::unique_ptr<LocalPinResetService>(
      new LocalPinResetService(std::move(private_key_pem), std::move(public_pem), options));
}

Status LocalPinResetService::AddUser(std::string_view user, const SecretBytes& password,
                                     SecretBytes totp_secret) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  if (password.empty()) return InvalidArgument("password is empty");
  if (totp_secret.size() < 16) return InvalidArgument("TOTP secret must be at least 128 bits");
  DirectoryUser u;
  DM_ASSIGN_OR_RETURN(u.salt, crypto::OsRandom().Public(kSaltSize));
  DM_ASSIGN_OR_RETURN(u.password_verifier, crypto::Scrypt(password, u.salt, options_.kdf));
  u.totp_secret = std::move(totp_secret);
  users_.insert_or_assign(std::string(user), std::move(u));
  return Status::Ok();
}

void LocalPinResetService::SetConsent(std::string_view app_id, bool granted) {
  if (app_id == kPinResetServiceAppId) service_app_consented_ = granted;
  if (app_id == kPinResetClientAppId) client_app_consented_ = granted;
}

Result<std::string> LocalPinResetService::PublicKeyPem() { return public_key_pem_; }

Status LocalPinResetService::Authenticate(std::string_view user,
                                          const ResetCredentials& credentials) {
  DM_RETURN_IF_ERROR(CheckPinResetConsent(service_app_consented_, client_app_consented_));

  auto it = users_.find(user);
  if (it == users_.end()) {
    // Spend the same scrypt work as for a real user so timing does not reveal who exists.
    Bytes salt(kSaltSize, 0);
    (void)crypto::Scrypt(credentials.password, salt, options_.kdf);
    spdlog::info("PIN reset service: sign-in refused for unknown user '{}'",
                 internal::SanitizeForLog(user));
    return SignInFailed();
  }
  DirectoryUser& u = it->second;
  const int64_t now_s = ToUnixSeconds(options_.clock->Now());
  if (u.locked_until > now_s) {
    return FailedPrecondition("too many failed sign-ins for '" + internal::SanitizeForLog(user) +
                              "'; try again after " + FormatUtc(FromUnixSeconds(u.locked_until)));
  }
  DM_ASSIGN_OR_RETURN(SecretBytes verifier,
                      crypto::Scrypt(credentials.password, u.salt, options_.kdf));
  const bool password_ok = verifier == u.password_verifier;

  // RFC 6238 with a small window for clock skew; a code is accepted at most once.
  const int64_t now_step = now_s / 30;
  int64_t matched_step = -1;
  for (int64_t d = -options_.totp_window_steps; d <= options_.totp_window_steps; ++d) {
    const int64_t step = now_step + d;
    if (step < 0) continue;
    DM_ASSIGN_OR_RETURN(std::string code, crypto::Hotp(u.totp_secret, static_cast<uint64_t>(step)));
    if (ConstantTimeEquals(code, credentials.otp_code) && step > u.last_totp_step) {
      matched_step = step;
    }
  }
  if (!password_ok || matched_step < 0) {
    spdlog::info("PIN reset service: sign-in refused for '{}' ({})", internal::SanitizeForLog(user),
                 !password_ok ? "password" : "verification code");
    if (++u.failed_sign_ins >= std::max(1, options_.max_failed_sign_ins)) {
      u.failed_sign_ins = 0;
      u.locked_until = now_s + options_.lockout.count();
      spdlog::warn("PIN reset service: '{}' locked out after repeated failed sign-ins",
                   internal::SanitizeForLog(user));
    }
    return SignInFailed();
  }
  u.failed_sign_ins = 0;
  u.last_totp_step = matched_step;
  return Status::Ok();
}

Result<SecretBytes> LocalPinResetService::RecoverProtector(
    std::string_view user, std::span<const uint8_t> encrypted_protector,
    const ResetCredentials& credentials) {
  DM_RETURN_IF_ERROR(Authenticate(user, credentials));
  auto protector =
      crypto::RsaOaepDecrypt(private_key_pem_, encrypted_protector, PinResetProtectorLabel(user));
  if (!protector.ok()) {
    return InvalidArgument(
        "the encrypted PIN reset protector was not made for this service's key and this user");
  }
  if (protector->size() != kProtectorSize) {
    return InvalidArgument("the decrypted PIN reset protector is not 32 bytes");
  }
  spdlog::info("PIN reset service: protector released for '{}'", internal::SanitizeForLog(user));
  return std::move(*protector);
}

}  // namespace dm::container
