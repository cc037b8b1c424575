// dmserver's own state: one SQLite database (storage::Database with the server's migrations,
// never the agent schema) holding tenants, the user directory, groups, profiles, assignments,
// enrolled devices, the per-device command queue, per-setting status and the devices' reports.
//
// The store is the admin surface (CLI and admin API call the same methods) and hands its
// database to the management, enrollment and report code, which run under Lock().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/ascii.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"
#include "storage/database.h"

namespace dm::server {

std::span<const storage::Migration> ServerSchema();

// DMClient/Provider/<id>/Poll as the provisioning document sets it: a fast first phase right
// after enrollment (as Intune does), a slower second one, then the steady interval (minutes; a
// count of 0 repeats forever).
struct PollSchedule {
  int first_interval_min = 3;
  int first_count = 5;
  int second_interval_min = 15;
  int second_count = 12;
  int remaining_interval_min = 480;
};

// How long a new or rotated bulk enrollment token is valid unless the admin says otherwise.
inline constexpr std::chrono::seconds kDefaultEnrollmentTokenLifetime = std::chrono::hours(24 * 30);

// Who is signing in: the user name as typed (throttled whether it exists or not) and the
// source address of the request.
struct SignInAttempt {
  std::string_view upn;
  std::string_view address;
};
inline constexpr int kSignInFreeFailures = 3;
inline constexpr int kSignInLockAfter = 10;
// 0 below kSignInFreeFailures, then 1 s doubling per failure, at most 15 minutes.
int64_t SignInDelaySeconds(int failures);

struct Tenant {
  std::string id;  // GUID, lower case, no braces
  std::string name;
  bool federated = false;  // users sign in at the federated IdP host
  bool consent_pin_reset_service = false;
  bool consent_pin_reset_client = false;
  PollSchedule poll;
  int64_t enrollment_token_expires_at = 0;  // Unix seconds; 0: revoked
};

struct CreatedTenant {
  Tenant tenant;
  // Shown once; the database keeps only its SHA-256. Expires after
  // kDefaultEnrollmentTokenLifetime.
  std::string enrollment_token;
};

struct User {
  std::string tenant_id;
  std::string upn;
  std::string password_hash;  // "scrypt$N$r$p$salt_b64$hash_b64"
  SecretBytes totp_secret;
  int64_t last_totp_step = -1;
};

enum class GroupKind { kUser, kDevice };
std::string_view GroupKindName(GroupKind k);  // "user" / "device"

enum class AssignMode { kInclude, kExclude };

// One entry of a profile: an OMA-URI setting or a raw SyncML command.
struct ProfileSetting {
  enum class Kind { kSetting, kRaw };
  Kind kind = Kind::kSetting;
  std::string verb = "Replace";  // kSetting: Replace or Add
  std::string loc_uri;           // kSetting; kRaw: the first target (for reports)
  std::string format = "chr";
  std::string type = "text/plain";
  std::string value;  // kSetting: the Data; kRaw: the command's XML (<Replace>..., <Atomic>...)
};

struct Profile {
  std::string tenant_id;
  std::string name;
  std::vector<ProfileSetting> settings;
};

struct Device {
  std::string dev_id;
  std::string tenant_id;
  std::string cert_serial;
  std::string cert_thumbprint;
  std::string enrolled_upn;
  bool enrolled = true;       // false after an unenrollment alert
  std::string login_status;   // user | others | none | "" (never reported)
  std::string signed_in_upn;  // set while login_status == "user" and the UPN was sent
  std::string manufacturer, model, dm_version, language;
  int64_t last_seen = 0;
  std::string hw_dev_id;        // MS-MDE2 AdditionalContext HWDevID
  std::string enrollment_type;  // Full | Device
};

inline constexpr int kMaxSignInsPerDevice = 16;

// The device certificates the server no longer accepts, and a number that grows whenever the
// list does.
struct RevokedCertificates {
  std::vector<std::string> serials_hex;
  int64_t generation = 0;
};

class Store {
 public:
  struct Options {
    const Clock* clock = &Clock::System();
    crypto::Random* random = &crypto::OsRandom();
    crypto::ScryptParams password_kdf = crypto::ScryptParams::Strong();
    // Checks a password against its stored verifier; empty: scrypt. A seam for the test that
    // proves the check runs outside Lock().
    std::function<Status(const SecretBytes& password, std::string_view verifier)> password_check;
  };
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& db_path, Options options);

  // Serialises every use of the database (the HTTPS server runs handlers on several threads).
  std::unique_lock<std::mutex> Lock() { return std::unique_lock<std::mutex>(mu_); }
  storage::Database& db() { return *db_; }
  const Clock& clock() const { return *options_.clock; }
  crypto::Random& random() { return *options_.random; }
  int64_t Now() const { return ToUnixSeconds(options_.clock->Now()); }
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               options_.clock->Now().time_since_epoch())
        .count();
  }

  // ---- tenants ----
  // `id` empty: a new random GUID.
  Result<CreatedTenant> AddTenant(std::string_view name, std::string_view id, bool federated);
  Result<std::vector<Tenant>> Tenants();
  // By id or name; with nothing given, the only tenant (InvalidArgument when there are several).
  Result<Tenant> ResolveTenant(std::string_view id_or_name);
  Result<Tenant> TenantById(std::string_view id);
  // Unauthenticated when no tenant has this token (constant-time over the digest) or it expired.
  Result<Tenant> TenantByEnrollmentToken(std::string_view token);
  // A new bulk token replaces the old one at once; shown once, stored hashed.
  Result<std::string> RotateEnrollmentToken(std::string_view tenant_id,
                                            std::chrono::seconds valid_for);
  Status RevokeEnrollmentToken(std::string_view tenant_id);
  Status SetPollSchedule(std::string_view tenant_id, const PollSchedule& poll);
  // Records a user token's jti until it expires: Unauthenticated when it was spent before.
  Status SpendTokenId(std::string_view jti, int64_t expires_at);
  // app_id: container::kPinResetServiceAppId / kPinResetClientAppId.
  Status SetConsent(std::string_view tenant_id, std::string_view app_id, bool granted);

  // ---- users ----
  // A UPN is unique server-wide. The TOTP secret is the raw key (RFC 6238), not base32.
  Status AddUser(std::string_view tenant_id, std::string_view upn, const SecretBytes& password,
                 const SecretBytes& totp_secret);
  Result<User> FindUser(std::string_view upn);
  // Whether users of this UPN domain sign in at the federated IdP (a federated tenant has a
  // user in it).
  Result<bool> DomainIsFederated(std::string_view domain);
  // Checks the password (scrypt, constant-time compare) and the TOTP code (one step either
  // side; a step once accepted is never accepted again). One Unauthenticated message for every
  // failure (the log says which factor failed).
  // Throttled (below): ResourceExhausted while the attempt must wait or the user is locked;
  // each failure and success is noted for the attempt's name and address.
  // Both take Lock() themselves and release it while scrypt runs: callers must not hold it.
  Status VerifyUser(std::string_view upn, const SecretBytes& password, std::string_view totp_code,
                    const SignInAttempt& attempt);
  // The password alone (MS-MDE2 OnPremise): the user, or one Unauthenticated for any failure.
  Result<User> VerifyPassword(std::string_view upn, const SecretBytes& password,
                              const SignInAttempt& attempt);
  // Sign-in throttling: after kSignInFreeFailures failures in a row for a name (known or not)
  // or a source address, each attempt waits SignInDelaySeconds after the last failure; after
  // kSignInLockAfter the name is locked until UnlockSignIn (admin user.unlock).
  Status CheckSignInAllowed(const SignInAttempt& attempt);
  Status NoteSignIn(const SignInAttempt& attempt, bool succeeded);
  Status UnlockSignIn(std::string_view upn);

  // ---- users' sign-ins on devices (store_identity.cpp) ----
  // A refresh token bound to the device (like Entra's PRT): it renews the user's token over
  // that device's mutual TLS only. Shown once, stored hashed; at most kMaxSignInsPerDevice
  // per device (the oldest go).
  Result<std::string> IssueRefreshToken(std::string_view tenant_id, std::string_view upn,
                                        std::string_view dev_id, std::chrono::seconds lifetime);
  // The user it was issued to; Unauthenticated when unknown, expired or of another device.
  Result<User> RedeemRefreshToken(std::string_view token, std::string_view dev_id);
  // A Hello certificate issued to `upn` on `dev_id` (serial: lower-case hex).
  Status RecordHelloCertificate(std::string_view serial, std::string_view dev_id,
                                std::string_view upn, int64_t expires_at);
  // The UPN a Hello certificate of this device was issued to; Unauthenticated otherwise.
  Result<std::string> HelloCertificateUser(std::string_view serial, std::string_view dev_id);
  // Retire and re-enrollment: the device's refresh tokens and Hello certificates stop working.
  Status ForgetDeviceSignIns(std::string_view dev_id);

  // ---- groups ----
  // all_members: every device (user) of the tenant is a member, like Intune's "All devices".
  Status AddGroup(std::string_view tenant_id, std::string_view name, GroupKind kind,
                  bool all_members = false);
  // member: a UPN for a user group, a DevId for a device group.
  Status AddMember(std::string_view tenant_id, std::string_view group, std::string_view member);
  Status RemoveMember(std::string_view tenant_id, std::string_view group, std::string_view member);

  // ---- profiles and assignments ----
  // replace=false: AlreadyExists when the name is taken. Raw settings are checked to decode as
  // one SyncML command.
  Status AddProfile(const Profile& profile, bool replace);
  Status Assign(std::string_view tenant_id, std::string_view profile, std::string_view group,
                AssignMode mode);
  Status Unassign(std::string_view tenant_id, std::string_view profile, std::string_view group);

  // ---- devices ----
  Result<std::optional<Device>> FindDevice(std::string_view dev_id);
  Result<std::vector<Device>> Devices();
  // Unenrolls a device of the tenant: its certificate stops working and the DeviceID may be
  // enrolled again by anyone with the tenant's credentials.
  Status RetireDevice(std::string_view tenant_id, std::string_view dev_id);
  // Adds the device's current certificate (if any) to the revoked ones; `reason` is retired or
  // superseded.
  Status RevokeCertificateOf(std::string_view dev_id, std::string_view reason);
  Result<RevokedCertificates> RevokedSerials();
  Result<int64_t> RevocationGeneration();

 private:
  Store(std::unique_ptr<storage::Database> db, Options options)
      : db_(std::move(db)), options_(options) {}
  Result<int64_t> GroupId(std::string_view tenant_id, std::string_view name, GroupKind* kind);
  // Throttle check and scrypt, not noted; takes Lock() only around the database reads.
  Result<User> CheckPasswordOutsideLock(std::string_view upn, const SecretBytes& password,
                                        const SignInAttempt& attempt);
  Status CheckTotpLocked(std::string_view upn, std::string_view totp_code);

  std::mutex mu_;
  std::unique_ptr<storage::Database> db_;
  Options options_;
};

// Lower-case hex SHA-256 of the text (token digests, content fingerprints).
Result<std::string> Sha256Hex(std::string_view text);

// Random v4 UUID, lower case ("0b7c...-4...").
Result<std::string> NewUuid(crypto::Random& random);

}  // namespace dm::server
