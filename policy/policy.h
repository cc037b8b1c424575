// The policy engine: desired state per source and scope -> effective state -> applied to the
// credential containers at the moment each setting takes effect -> compliance per setting and
// recovery state per user. All state lives in the agent database.
//
// Settings are named CSP-neutrally ("PassportForWork/EnablePinRecovery",
// "PassportForWork/PINComplexity/MinimumPINLength", "Authentication/ConfigureWebSignInAllowedUrls");
// the CSP layer maps DM-tree URIs to these names and the catalog (catalog.h) says what each
// one is: type, range, default, scope, group, and when it takes effect (ARCHITECTURE decision 5).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace dm::storage {
class Database;
}
namespace dm::container {
class ContainerStore;
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
  std::string user;                  // the user it was evaluated for; empty = device
  ComplianceState state = ComplianceState::kPending;
  std::optional<std::string> desired;    // the winning desired value
  std::optional<std::string> effective;  // what is in force now
  std::string source;                // "MDM (device)", "MDM (user)", "LocalAdmin"; both on Conflict
  std::string reason;                // a sentence a person can act on
  bool corrective = false;           // the last evaluation repaired drift
  TimePoint since;
};

enum class CanReset { kDestructiveOnly, kNonDestructiveOnly, kDestructiveAndNonDestructive, kUnknown };
std::string_view CanResetName(CanReset c);  // dsregcmd spelling

struct RecoveryState {
  std::string user;
  CanReset can_reset = CanReset::kUnknown;
  std::string reason;  // "no PIN reset protector yet: sign in and unlock with the PIN once"
};

struct EngineOptions {
  // EnablePinRecovery takes effect after the reboot step by default; configurable because
  // Microsoft does not document it (csp-and-container.md section 1.4).
  bool pin_recovery_needs_reboot = true;
};

class PolicyEngine {
 public:
  PolicyEngine(storage::Database& db, container::ContainerStore& containers, const Clock& clock,
               EngineOptions options = {});
  ~PolicyEngine();

  // Desired state. SetDesired validates the value against the catalog (InvalidArgument with
  // the rule on failure; NotFound for an unknown setting; PermissionDenied for a device-only
  // setting in user scope). `origin` records where it came from (tenant id, profile).
  Status SetDesired(Source source, const Target& target, std::string_view value,
                    std::string_view origin = {});
  Status ClearDesired(Source source, const Target& target);
  Result<std::optional<std::string>> Desired(Source source, const Target& target) const;

  // The value in force after precedence, conflicts and timing: what Policy/Result returns.
  // For user-scope questions, pass the user: device-scope values apply to every user.
  Result<std::optional<std::string>> Effective(const Target& target) const;

  // Recomputes effective state, applies what may take effect now to the containers, repairs
  // drift and records compliance. Run after every committed SyncML message.
  Status Evaluate();
  // A user signed in: settings waiting for sign-in take effect for that user.
  Status OnSignIn(std::string_view user);
  // The device's reboot step: settings waiting for a reboot take effect; the boot is recorded.
  Status CompleteReboot();
  // Settings waiting for the reboot step.
  Result<std::vector<SettingStatus>> PendingReboot() const;

  Result<std::vector<SettingStatus>> Compliance(std::optional<std::string> user = {}) const;
  Result<RecoveryState> Recovery(std::string_view user) const;
  Result<std::vector<RecoveryState>> RecoveryAll() const;

  // The reporting document (compliance per setting, recovery per user) served by the
  // DMAgent CSP and sent in 1226 alerts; a stable serialisation so changes can be detected.
  Result<std::string> ReportXml() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::policy
