// The policy engine: desired state per source and scope -> effective state -> applied to the
// credential containers at the moment each setting takes effect -> compliance per setting and
// recovery state per user. All state lives in the agent database.
//
// Settings are named CSP-neutrally ("PassportForWork/EnablePinRecovery",
// "PassportForWork/PINComplexity/MinimumPINLength",
// "Authentication/ConfigureWebSignInAllowedUrls"); the CSP layer maps DM-tree URIs to these names
// and the catalog (catalog.h) says what each one is: type, range, default, scope, group, and when
// it takes effect (ARCHITECTURE decision 5).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "container/container.h"
#include "policy/catalog.h"

namespace dm::storage {
class Database;
}

namespace dm::policy {

enum class Source { kMdm, kLocalAdmin };
enum class Scope { kDevice, kUser };

std::string_view SourceName(Source s);  // "MDM", "LocalAdmin"

// Where a desired value is aimed: the device, or one user (user scope).
struct Target {
  Scope scope = Scope::kDevice;
  std::string user;     // empty for device scope
  std::string setting;  // catalog name
};

enum class ComplianceState {
  kSucceeded,
  kError,
  kConflict,
  kNotApplicable,
  kPending,        // waits for the user's next sign-in (or a first PIN unlock)
  kPendingReboot,  // waits for the reboot step
};
std::string_view ComplianceStateName(ComplianceState s);

struct SettingStatus {
  std::string setting;
  Scope scope = Scope::kDevice;
  std::string user;  // the user it was evaluated for; empty = device
  ComplianceState state = ComplianceState::kPending;
  std::optional<std::string> desired;    // the winning desired value; none = not configured
  std::optional<std::string> effective;  // what is in force now (the default when not configured)
  // "MDM (device)", "MDM (user)", "LocalAdmin (device)", "LocalAdmin (user)"; two sources that
  // agree: "MDM (device) + LocalAdmin (device)"; on Conflict both: "MDM (device) vs
  // LocalAdmin (device)"; "Default" when nothing is configured.
  std::string source;
  std::string reason;  // a sentence a person can act on
  // The evaluation that last changed this setting's state repaired drift (the container's
  // applied state had been changed outside policy). Stays set until the state, desired or
  // effective value changes, so reports do not flap.
  bool corrective = false;
  TakesEffect takes_effect = TakesEffect::kImmediately;  // after EngineOptions
  TimePoint since;  // when this state began (not part of ReportXml)
};

// CanReset as dsregcmd spells it; the container module owns the enum, the engine decides the
// value (it also knows about pending reboots, join type and trust model).
using container::CanReset;
using container::CanResetName;

struct RecoveryState {
  std::string user;
  CanReset can_reset = CanReset::kUnknown;
  std::string reason;  // "no PIN reset protector yet: sign in and unlock with the PIN once"
};

struct EngineOptions {
  // EnablePinRecovery takes effect after the reboot step by default; configurable because
  // Microsoft does not document it (csp-and-container.md section 1.4). false = at the user's
  // next sign-in.
  bool pin_recovery_needs_reboot = true;
};

// Facts about the device the engine reads from the agent's `settings` table (key -> value);
// `dmagent` and tests write them with PolicyEngine::SetFacts. Absent keys take the defaults.
inline constexpr char kFactTpmPresent[] = "device.tpm_present";            // "true"/"false"
inline constexpr char kFactBiometricSensor[] = "device.biometric_sensor";  // "true"/"false"
inline constexpr char kFactJoinType[] = "device.join_type";                // JoinTypeName
inline constexpr char kFactTrustModel[] = "device.trust_model";            // TrustModelName
// Written by CompleteReboot: the number of reboot steps and the last one (Unix seconds).
inline constexpr char kBootCountKey[] = "device.boot_count";
inline constexpr char kLastBootKey[] = "device.last_boot_time";

// dsregcmd Device State: AzureAdJoined / hybrid (AzureAdJoined + DomainJoined) / DomainJoined.
enum class JoinType { kAzureAdJoined, kHybridAzureAdJoined, kDomainJoined, kNotJoined };
std::string_view JoinTypeName(JoinType j);  // "AzureAdJoined", "HybridAzureAdJoined", ...
enum class TrustModel { kCloudKerberosTrust, kKeyTrust, kCertificateTrust };
std::string_view TrustModelName(TrustModel t);  // "CloudKerberosTrust", "KeyTrust", ...

struct DeviceFacts {
  bool tpm_present = false;       // RequireSecurityDevice=true is NotApplicable without one
  bool biometric_sensor = false;  // Biometrics/* are NotApplicable without one
  JoinType join_type = JoinType::kAzureAdJoined;
  TrustModel trust_model = TrustModel::kCloudKerberosTrust;
  friend bool operator==(const DeviceFacts&, const DeviceFacts&) = default;
};

struct BootRecord {
  int64_t count = 0;                   // reboot steps completed
  std::optional<TimePoint> last_boot;  // none before the first one
};

class PolicyEngine {
 public:
  PolicyEngine(storage::Database& db, container::ContainerStore& containers, const Clock& clock,
               EngineOptions options = {});
  ~PolicyEngine();

  // Desired state. SetDesired validates the value against the catalog (InvalidArgument with
  // the rule on failure; NotFound for an unknown setting; PermissionDenied for a device-only
  // setting in user scope or a user-only one in device scope; InvalidArgument for user scope
  // without a user). The value is stored in the catalog's canonical form (NormalizeValue).
  // `origin` records where it came from (tenant id, profile). Nothing takes effect until the
  // next Evaluate(), OnSignIn() or CompleteReboot().
  Status SetDesired(Source source, const Target& target, std::string_view value,
                    std::string_view origin = {});
  // Delete = "not configured" (the default applies again, at the setting's moment).
  // NotFound when this source had no value there (a Delete of a missing node is 404).
  Status ClearDesired(Source source, const Target& target);
  // The value `source` set there (Policy/Config reads its own value back); nullopt if none.
  Result<std::optional<std::string>> Desired(Source source, const Target& target) const;
  // The origin recorded with that value (SetDesired's `origin`); nullopt if there is no value.
  Result<std::optional<std::string>> DesiredOrigin(Source source, const Target& target) const;

  // The value in force after precedence, conflicts and timing: what Policy/Result returns.
  // When nothing is configured it is the catalog default (nullopt only for settings without
  // one, e.g. the PIN character classes or the web sign-in allow-list). For user-scope
  // questions, pass the user: device-scope values apply to every user, and device-only
  // settings answer with the device's value.
  Result<std::optional<std::string>> Effective(const Target& target) const;

  // Recomputes effective state, applies what may take effect now to the containers, repairs
  // drift and records compliance. Run after every committed SyncML message, and before
  // reading Compliance()/ReportXml() when something may have happened outside the engine
  // (a PIN unlock creates the protector). Runs in one database transaction (a savepoint when
  // the caller has one open).
  Status Evaluate();
  // A user signed in: settings waiting for sign-in take effect for that user (and device-
  // scope sign-in settings for the device). Call it BEFORE provisioning the user's container,
  // so UsePassportForWork / RequireSecurityDevice of this sign-in govern provisioning.
  Status OnSignIn(std::string_view user);
  // The device's reboot step: the boot is recorded (kBootCountKey, kLastBootKey), every
  // reboot-pending item takes effect, then everything is evaluated.
  Status CompleteReboot();
  // Settings waiting for the reboot step (device rows and user rows).
  Result<std::vector<SettingStatus>> PendingReboot() const;

  // Compliance as of the last evaluation. nullopt: every row (device first, then users by
  // name); "": the device rows; a user name: that user's rows (the user-relevant settings).
  // Sorted by setting name. Only settings that are configured, pending, or were repaired
  // appear.
  Result<std::vector<SettingStatus>> Compliance(std::optional<std::string> user = {}) const;
  // Live: reads the user's container now. Unknown (with the reason) when the user has no
  // container or it cannot be read.
  Result<RecoveryState> Recovery(std::string_view user) const;
  // Every known user (containers, user-scope values, sign-ins), by name.
  Result<std::vector<RecoveryState>> RecoveryAll() const;

  // The reporting document (compliance per setting, recovery per user) served by the
  // DMAgent CSP and sent in 1226 alerts; a stable serialisation so changes can be detected:
  // sorted, no timestamps, attributes in a fixed order. Format (version 1):
  //   <DMAgentReport version="1">
  //     <Device joinType=".." trustModel=".." tpm="true|false" biometricSensor="true|false">
  //       <Setting name=".." state=".." source=".." desired=".." effective=".."
  //                takesEffect=".." corrective="true|false" reason=".."/>   (sorted by name)
  //     </Device>
  //     <User name="alice">                                                 (sorted by name)
  //       <Setting .../>
  //       <Recovery CanReset="DestructiveOnly" reason=".."/>
  //       <SecurityKey id=".." label=".." pinSet="true|false" pinRetries="8"
  //                    blocked="none|PIN_AUTH_BLOCKED|PIN_BLOCKED" minPinLength="4"
  //                    forcePinChange="true|false" credentials="N"/>     (sorted by id)
  //     </User>
  //   </DMAgentReport>
  // desired / effective are omitted when there is no value. state is ComplianceStateName.
  Result<std::string> ReportXml() const;

  // Device facts (settings table) and the boot record.
  Result<DeviceFacts> Facts() const;
  Status SetFacts(const DeviceFacts& facts);
  Result<BootRecord> LastBoot() const;
  // Every user the engine knows, by name.
  Result<std::vector<std::string>> Users() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::policy
