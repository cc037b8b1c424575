#include "policy/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/crypto.h"
#include "container/container.h"
#include "container/key_sealer_test_support.h"
#include "container/local_pin_reset_service.h"
#include "container/security_key.h"
#include "policy/policy_internal.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace dm::policy {
namespace {

using container::ContainerStore;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kUse[] = "PassportForWork/UsePassportForWork";
constexpr char kRecovery[] = "PassportForWork/EnablePinRecovery";
constexpr char kRequireTpm[] = "PassportForWork/RequireSecurityDevice";
constexpr char kMin[] = "PassportForWork/PINComplexity/MinimumPINLength";
constexpr char kMax[] = "PassportForWork/PINComplexity/MaximumPINLength";
constexpr char kDigits[] = "PassportForWork/PINComplexity/Digits";
constexpr char kAllowList[] = "Authentication/ConfigureWebSignInAllowedUrls";

Target Device(std::string setting) { return Target{Scope::kDevice, "", std::move(setting)}; }
Target User(std::string user, std::string setting) {
  return Target{Scope::kUser, std::move(user), std::move(setting)};
}

SecretBytes Pin(std::string_view p) { return SecretBytes(p); }

class PolicyEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "policy_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Open(EngineOptions options = {}) {
    storage::OpenOptions o;
    o.migrations = storage::AgentSchema();
    auto db = storage::Database::Open(dir_ / "dmagent.db", o);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    container::StoreOptions so;
    so.clock = &clock_;
    so.random = &random_;
    so.kdf = crypto::ScryptParams::ForTests();
    store_ = std::make_unique<ContainerStore>(*db_, sealer_, so);
    engine_ = std::make_unique<PolicyEngine>(*db_, *store_, clock_, options);
  }
  void Close() {
    engine_.reset();
    store_.reset();
    db_.reset();
  }
  void Reopen(EngineOptions options = {}) {
    Close();
    Open(options);
  }

  // A PIN reset service key on the device, so the first unlock can create the protector.
  void InstallServiceKey() {
    container::LocalPinResetServiceOptions o;
    o.clock = &clock_;
    o.kdf = crypto::ScryptParams::ForTests();
    o.rsa_bits = 2048;
    auto service = container::LocalPinResetService::Create(o);
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    auto pem = (*service)->PublicKeyPem();
    ASSERT_TRUE(pem.ok());
    ASSERT_TRUE(store_->SetPinResetServiceKey(*pem).ok());
  }

  // Sign-in then provisioning, in the order the agent uses.
  void SignInAndProvision(const std::string& user, std::string_view pin = "147258") {
    ASSERT_TRUE(engine_->OnSignIn(user).ok());
    auto info = store_->Provision(user, Pin(pin));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
  }

  void Set(Source source, const Target& t, std::string_view value) {
    Status s = engine_->SetDesired(source, t, value, "test-profile");
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Evaluate() {
    Status s = engine_->Evaluate();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::optional<std::string> Eff(const Target& t) {
    auto r = engine_->Effective(t);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }

  // The compliance row of `setting` for `user` ("" = the device); fails the test if absent.
  SettingStatus Row(const std::string& user, std::string_view setting) {
    auto rows = engine_->Compliance(user);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (rows.ok()) {
      for (const SettingStatus& s : *rows) {
        if (s.setting == setting) return s;
      }
    }
    ADD_FAILURE() << "no compliance row for " << setting << " (user '" << user << "')";
    return {};
  }

  bool HasRow(const std::string& user, std::string_view setting) {
    auto rows = engine_->Compliance(user);
    EXPECT_TRUE(rows.ok());
    for (const SettingStatus& s : *rows) {
      if (s.setting == setting) return true;
    }
    return false;
  }

  container::AppliedPolicy Applied(const std::string& user) {
    auto p = store_->GetAppliedPolicy(user);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : container::AppliedPolicy{};
  }

  RecoveryState Rec(const std::string& user) {
    auto r = engine_->Recovery(user);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RecoveryState{};
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  crypto::DeterministicRandom random_{42};
  std::unique_ptr<storage::Database> db_;
  container::testing::FixedKeySealer sealer_;
  std::unique_ptr<ContainerStore> store_;
  std::unique_ptr<PolicyEngine> engine_;
};

// ---- desired state ----

TEST_F(PolicyEngineTest, SetDesiredValidatesAgainstTheCatalog) {
  EXPECT_EQ(engine_->SetDesired(Source::kMdm, Device("PassportForWork/Nope"), "true").code(),
            Code::kNotFound);
  Status range = engine_->SetDesired(Source::kMdm, Device(kMin), "3");
  EXPECT_EQ(range.code(), Code::kInvalidArgument);
  EXPECT_EQ(range.message(), "MinimumPINLength 3 is outside [4-127]");
  EXPECT_EQ(engine_->SetDesired(Source::kMdm, User("alice", kAllowList), "contoso.com").code(),
            Code::kPermissionDenied);
  EXPECT_EQ(engine_->SetDesired(Source::kMdm, User("", kMin), "6").code(), Code::kInvalidArgument);
  EXPECT_EQ(engine_->SetDesired(Source::kMdm, Device("Authentication/AllowEAPCertSSO"), "1").code(),
            Code::kPermissionDenied);

  Set(Source::kMdm, Device(kRecovery), "True");
  EXPECT_EQ(engine_->Desired(Source::kMdm, Device(kRecovery)).value(), "true");
  EXPECT_EQ(engine_->DesiredOrigin(Source::kMdm, Device(kRecovery)).value(), "test-profile");
  EXPECT_EQ(engine_->DesiredOrigin(Source::kLocalAdmin, Device(kRecovery)).value(), std::nullopt);
  // Policy/Config: each source reads back its own value.
  EXPECT_EQ(engine_->Desired(Source::kLocalAdmin, Device(kRecovery)).value(), std::nullopt);
  EXPECT_EQ(engine_->ClearDesired(Source::kLocalAdmin, Device(kRecovery)).code(), Code::kNotFound);
}

// ---- PIN recovery: reboot, protector, CanReset ----

TEST_F(PolicyEngineTest, PinRecoveryWaitsForRebootThenForTheFirstUnlock) {
  InstallServiceKey();
  SignInAndProvision("alice");
  EXPECT_EQ(Rec("alice").can_reset, CanReset::kDestructiveOnly);
  EXPECT_EQ(Rec("alice").reason, "EnablePinRecovery is not enabled for alice");

  Set(Source::kMdm, Device(kRecovery), "true");
  Evaluate();
  SettingStatus row = Row("alice", kRecovery);
  EXPECT_EQ(row.state, ComplianceState::kPendingReboot);
  EXPECT_EQ(row.desired, "true");
  EXPECT_EQ(row.effective, "false");
  EXPECT_EQ(row.source, "MDM (device)");
  EXPECT_EQ(Row("", kRecovery).state, ComplianceState::kPendingReboot);
  EXPECT_EQ(Eff(User("alice", kRecovery)), "false");
  EXPECT_FALSE(Applied("alice").pin_recovery_enabled);
  RecoveryState rec = Rec("alice");
  EXPECT_EQ(rec.can_reset, CanReset::kDestructiveOnly);
  EXPECT_EQ(rec.reason, "EnablePinRecovery is pending a reboot");
  auto pending = engine_->PendingReboot();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);  // the device row and alice's

  // A sign-in is not a reboot.
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Row("alice", kRecovery).state, ComplianceState::kPendingReboot);

  clock_.Advance(std::chrono::minutes(5));
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  auto boot = engine_->LastBoot();
  ASSERT_TRUE(boot.ok());
  EXPECT_EQ(boot->count, 1);
  EXPECT_EQ(boot->last_boot, clock_.Now());
  EXPECT_EQ(Eff(User("alice", kRecovery)), "true");
  EXPECT_TRUE(Applied("alice").pin_recovery_enabled);
  EXPECT_TRUE(engine_->PendingReboot()->empty());
  row = Row("alice", kRecovery);
  EXPECT_EQ(row.state, ComplianceState::kPending);
  EXPECT_EQ(row.reason, "no PIN reset protector yet: sign in and unlock with the PIN once");
  EXPECT_EQ(Row("", kRecovery).state, ComplianceState::kSucceeded);
  rec = Rec("alice");
  EXPECT_EQ(rec.can_reset, CanReset::kDestructiveOnly);
  EXPECT_EQ(rec.reason, "no PIN reset protector yet: sign in and unlock with the PIN once");

  ASSERT_TRUE(store_->Unlock("alice", Pin("147258")).ok());
  EXPECT_TRUE(store_->Info("alice")->protector_present);
  rec = Rec("alice");
  EXPECT_EQ(rec.can_reset, CanReset::kDestructiveAndNonDestructive);
  Evaluate();
  EXPECT_EQ(Row("alice", kRecovery).state, ComplianceState::kSucceeded);
}

TEST_F(PolicyEngineTest, PinRecoveryCanTakeEffectAtSignInInstead) {
  Reopen(EngineOptions{.pin_recovery_needs_reboot = false});
  SignInAndProvision("alice");
  Set(Source::kMdm, User("alice", kRecovery), "true");
  Evaluate();
  SettingStatus row = Row("alice", kRecovery);
  EXPECT_EQ(row.state, ComplianceState::kPending);
  EXPECT_EQ(row.takes_effect, TakesEffect::kNextSignIn);
  EXPECT_EQ(row.source, "MDM (user)");
  EXPECT_EQ(Rec("alice").reason, "EnablePinRecovery is pending alice's next sign-in");
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("alice", kRecovery)), "true");
  // No service key on this device: the container cannot create the protector.
  ASSERT_TRUE(store_->Unlock("alice", Pin("147258")).ok());
  Evaluate();
  EXPECT_EQ(Rec("alice").can_reset, CanReset::kDestructiveOnly);
  EXPECT_THAT(Rec("alice").reason, StartsWith("PIN reset service key missing"));
  EXPECT_THAT(Row("alice", kRecovery).reason, StartsWith("PIN reset service key missing"));
}

TEST_F(PolicyEngineTest, RecoveryIsUnknownWithoutAContainerAndNonDestructiveOnlyForHybridKeyTrust) {
  ASSERT_TRUE(engine_->OnSignIn("carol").ok());
  RecoveryState rec = Rec("carol");
  EXPECT_EQ(rec.can_reset, CanReset::kUnknown);
  EXPECT_THAT(rec.reason, HasSubstr("no Windows Hello container"));

  InstallServiceKey();
  ASSERT_TRUE(engine_
                  ->SetFacts(DeviceFacts{.tpm_present = true,
                                         .biometric_sensor = false,
                                         .join_type = JoinType::kHybridAzureAdJoined,
                                         .trust_model = TrustModel::kKeyTrust})
                  .ok());
  SignInAndProvision("dave");
  Set(Source::kMdm, Device(kRecovery), "true");
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  rec = Rec("dave");
  EXPECT_EQ(rec.can_reset, CanReset::kDestructiveOnly);
  EXPECT_THAT(rec.reason, HasSubstr("hybrid key trust"));
  ASSERT_TRUE(store_->Unlock("dave", Pin("147258")).ok());
  rec = Rec("dave");
  EXPECT_EQ(rec.can_reset, CanReset::kNonDestructiveOnly);
  EXPECT_THAT(rec.reason, HasSubstr("not supported above the lock screen"));
}

// ---- precedence ----

TEST_F(PolicyEngineTest, UserScopeBeatsDeviceScopeAndThePinGroupComesWhole) {
  SignInAndProvision("alice");
  SignInAndProvision("bob");
  Set(Source::kMdm, Device(kMin), "8");
  Set(Source::kMdm, Device(kMax), "10");
  Set(Source::kMdm, Device(kRequireTpm), "true");
  Set(Source::kMdm, User("alice", kMin), "6");
  Evaluate();

  // bob has no user-scope value: the device's group applies.
  EXPECT_EQ(Eff(User("bob", kMin)), "8");
  EXPECT_EQ(Eff(User("bob", kMax)), "10");
  EXPECT_EQ(Applied("bob").complexity.minimum_length, 8);
  EXPECT_EQ(Applied("bob").complexity.maximum_length, 10);
  // alice sets one member in user scope: the whole PIN group (with RequireSecurityDevice)
  // comes from user scope, so the device's MaximumPINLength and RequireSecurityDevice do not
  // apply to her.
  EXPECT_EQ(Eff(User("alice", kMin)), "6");
  EXPECT_EQ(Eff(User("alice", kMax)), "127");
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 6);
  EXPECT_EQ(Applied("alice").complexity.maximum_length, std::nullopt);
  EXPECT_EQ(Row("alice", kMin).source, "MDM (user)");
  SettingStatus max = Row("alice", kMax);
  EXPECT_EQ(max.desired, std::nullopt);
  EXPECT_THAT(max.reason, HasSubstr("taken whole from user scope"));
  // RequireSecurityDevice waits for sign-in; at bob's it applies, at alice's it stays off.
  EXPECT_EQ(Row("bob", kRequireTpm).state, ComplianceState::kPending);
  ASSERT_TRUE(engine_->OnSignIn("bob").ok());
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("bob", kRequireTpm)), "true");
  EXPECT_TRUE(Applied("bob").require_security_device);
  EXPECT_EQ(Eff(User("alice", kRequireTpm)), "false");
  EXPECT_FALSE(Applied("alice").require_security_device);
  // The device row keeps the device scope's values.
  EXPECT_EQ(Eff(Device(kMax)), "10");
}

TEST_F(PolicyEngineTest, HelloFeatureGroupFollowsTheScopeThatSetsUsePassportForWork) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kUse), "false");
  Set(Source::kMdm, User("alice", kUse), "true");
  ASSERT_TRUE(engine_->OnSignIn("bob").ok());
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("alice", kUse)), "true");
  EXPECT_EQ(Eff(User("bob", kUse)), "false");
  EXPECT_TRUE(Applied("alice").hello_enabled);
  EXPECT_FALSE(Applied("bob").hello_enabled);
}

TEST_F(PolicyEngineTest, NonGroupSettingsResolvePerSetting) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kRecovery), "true");
  Set(Source::kMdm, User("alice", kRecovery), "false");
  Set(Source::kMdm, Device(kMin), "8");
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  EXPECT_EQ(Eff(User("alice", kRecovery)), "false");
  EXPECT_EQ(Eff(Device(kRecovery)), "true");
  EXPECT_THAT(Row("alice", kRecovery).reason,
              HasSubstr("user scope overrides the device scope's true"));
  // EnablePinRecovery in user scope does not pull the PIN group to user scope.
  EXPECT_EQ(Eff(User("alice", kMin)), "8");
}

TEST_F(PolicyEngineTest, ResolveUnit) {
  using internal::Desired;
  internal::DesiredIndex index({
      Desired{Source::kMdm, Scope::kDevice, "", kDigits, "1"},
      Desired{Source::kMdm, Scope::kUser, "alice", kRequireTpm, "false"},
      Desired{Source::kLocalAdmin, Scope::kDevice, "", kUse, "true"},
      Desired{Source::kMdm, Scope::kDevice, "", kUse, "true"},
  });
  // RequireSecurityDevice in alice's scope takes the PIN group from user scope.
  internal::Resolution digits = internal::Resolve(index, *FindSetting(kDigits), "alice");
  EXPECT_EQ(digits.kind, internal::Resolution::kNotConfigured);
  EXPECT_THAT(digits.group_note, HasSubstr("device scope's 1 does not apply"));
  EXPECT_EQ(internal::Resolve(index, *FindSetting(kDigits), "").value, "1");
  internal::Resolution use = internal::Resolve(index, *FindSetting(kUse), "alice");
  EXPECT_EQ(use.kind, internal::Resolution::kValue);
  EXPECT_EQ(use.source, "MDM (device) + LocalAdmin (device)");  // sources in a fixed order
}

// ---- sources ----

TEST_F(PolicyEngineTest, MdmAndLocalAdminConflictNamesBothAndKeepsTheOldValue) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kMin), "6");
  Evaluate();
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 6);

  Set(Source::kLocalAdmin, Device(kMin), "8");
  Evaluate();
  for (const std::string user : {"", "alice"}) {
    SettingStatus row = Row(user, kMin);
    EXPECT_EQ(row.state, ComplianceState::kConflict) << user;
    EXPECT_THAT(row.source, HasSubstr("MDM (device)"));
    EXPECT_THAT(row.source, HasSubstr("LocalAdmin (device)"));
    EXPECT_THAT(row.reason, HasSubstr("MDM (device) sets 6"));
    EXPECT_THAT(row.reason, HasSubstr("LocalAdmin (device) sets 8"));
    EXPECT_EQ(row.effective, "6");
  }
  EXPECT_EQ(Eff(User("alice", kMin)), "6");
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 6);

  // The same value from both: no conflict.
  Set(Source::kLocalAdmin, Device(kMin), "6");
  Evaluate();
  SettingStatus row = Row("alice", kMin);
  EXPECT_EQ(row.state, ComplianceState::kSucceeded);
  EXPECT_EQ(row.source, "MDM (device) + LocalAdmin (device)");

  // Resolved by MDM withdrawing: the local admin's value applies.
  Set(Source::kLocalAdmin, Device(kMin), "9");
  Evaluate();
  EXPECT_EQ(Row("alice", kMin).state, ComplianceState::kConflict);
  ASSERT_TRUE(engine_->ClearDesired(Source::kMdm, Device(kMin)).ok());
  Evaluate();
  EXPECT_EQ(Row("alice", kMin).state, ComplianceState::kSucceeded);
  EXPECT_EQ(Row("alice", kMin).source, "LocalAdmin (device)");
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 9);
}

TEST_F(PolicyEngineTest, ConflictCancelsAPendingValue) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kUse), "false");
  Evaluate();
  EXPECT_EQ(Row("alice", kUse).state, ComplianceState::kPending);
  Set(Source::kLocalAdmin, Device(kUse), "true");
  Evaluate();
  EXPECT_EQ(Row("alice", kUse).state, ComplianceState::kConflict);
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("alice", kUse)), "true");  // nothing applied from either
  EXPECT_TRUE(Applied("alice").hello_enabled);
}

// ---- drift ----

TEST_F(PolicyEngineTest, DriftIsRepairedAndReportedCorrective) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kMin), "8");
  Evaluate();
  EXPECT_FALSE(Row("alice", kMin).corrective);

  // Someone changes the container's applied policy through the container API...
  container::AppliedPolicy tampered = Applied("alice");
  tampered.complexity.minimum_length = 4;
  ASSERT_TRUE(store_->ApplyPolicy("alice", tampered).ok());
  Evaluate();
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 8);
  SettingStatus row = Row("alice", kMin);
  EXPECT_TRUE(row.corrective);
  EXPECT_EQ(row.state, ComplianceState::kSucceeded);
  EXPECT_EQ(row.reason,
            "repaired drift: alice's container had MinimumPINLength=4, policy requires 8");
  // The flag stays until the setting's state changes, so the report does not flap.
  std::string report = engine_->ReportXml().value();
  Evaluate();
  EXPECT_TRUE(Row("alice", kMin).corrective);
  EXPECT_EQ(engine_->ReportXml().value(), report);

  // ...or through the database, for a setting nobody configured (UsePassportForWork default).
  ASSERT_TRUE(db_->Exec("UPDATE container_policy SET hello_enabled = 0 WHERE user = 'alice'").ok());
  Evaluate();
  EXPECT_TRUE(Applied("alice").hello_enabled);
  row = Row("alice", kUse);
  EXPECT_TRUE(row.corrective);
  EXPECT_EQ(row.source, "Default");
  EXPECT_THAT(row.reason,
              StartsWith("repaired drift: alice's container had UsePassportForWork=false"));

  // A real policy change is not drift.
  Set(Source::kMdm, Device(kMin), "10");
  Evaluate();
  EXPECT_FALSE(Row("alice", kMin).corrective);
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 10);
}

// ---- decision 2: the caller's transaction (a SyncML Atomic) covers the engine's writes ----

TEST_F(PolicyEngineTest, EvaluateInsideARolledBackTransactionLeavesNoTrace) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kMin), "6");
  Evaluate();
  {
    auto tx = db_->Begin();
    ASSERT_TRUE(tx.ok());
    Set(Source::kMdm, Device(kMin), "9");
    Set(Source::kMdm, Device(kRecovery), "true");
    Evaluate();
    EXPECT_EQ(Applied("alice").complexity.minimum_length, 9);
    ASSERT_TRUE(tx->Rollback().ok());
  }
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 6);
  EXPECT_EQ(Eff(User("alice", kMin)), "6");
  EXPECT_TRUE(engine_->PendingReboot()->empty());
  EXPECT_EQ(engine_->Desired(Source::kMdm, Device(kMin)).value(), "6");
  // Nothing above counts as drift.
  Evaluate();
  EXPECT_FALSE(Row("alice", kMin).corrective);
}

TEST_F(PolicyEngineTest, HandEditedPolicyRowsAreRewrittenNotFatal) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kMin), "8");
  Evaluate();
  ASSERT_TRUE(db_->Exec("UPDATE policy_effective SET value = 'eight' WHERE setting = "
                        "'PassportForWork/PINComplexity/MinimumPINLength'")
                  .ok());
  ASSERT_TRUE(db_->Exec("INSERT OR REPLACE INTO settings (key, value) VALUES "
                        "('device.boot_count', 'many')")
                  .ok());
  Evaluate();
  EXPECT_EQ(Eff(User("alice", kMin)), "8");
  EXPECT_EQ(Applied("alice").complexity.minimum_length, 8);
  EXPECT_EQ(engine_->LastBoot().status().code(), Code::kCorruption);
  EXPECT_EQ(engine_->CompleteReboot().code(), Code::kCorruption);
}

// ---- decision 7 ----

TEST_F(PolicyEngineTest, UsePassportForWorkFalseKeepsEnrolledContainerButBlocksProvisioning) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kUse), "false");
  Evaluate();
  // Provisioning is a post-logon task: nothing changes before the next sign-in.
  EXPECT_EQ(Row("alice", kUse).state, ComplianceState::kPending);
  EXPECT_TRUE(Applied("alice").hello_enabled);

  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  ASSERT_TRUE(engine_->OnSignIn("bob").ok());
  EXPECT_FALSE(Applied("alice").hello_enabled);
  auto info = store_->Info("alice");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->exists);
  EXPECT_TRUE(store_->Unlock("alice", Pin("147258")).ok());
  SettingStatus row = Row("alice", kUse);
  EXPECT_EQ(row.state, ComplianceState::kSucceeded);
  EXPECT_THAT(row.reason, HasSubstr("the enrolled container is kept"));

  auto bob = store_->Provision("bob", Pin("258369"));
  EXPECT_EQ(bob.status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(store_->Info("bob")->exists);
}

// ---- delete ----

TEST_F(PolicyEngineTest, DeleteRevertsToNotConfiguredAtTheSettingsMoment) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kUse), "false");
  Set(Source::kMdm, Device(kMin), "8");
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("alice", kUse)), "false");
  EXPECT_EQ(Eff(Device(kMin)), "8");

  ASSERT_TRUE(engine_->ClearDesired(Source::kMdm, Device(kUse)).ok());
  ASSERT_TRUE(engine_->ClearDesired(Source::kMdm, Device(kMin)).ok());
  EXPECT_EQ(engine_->ClearDesired(Source::kMdm, Device(kMin)).code(), Code::kNotFound);
  Evaluate();
  // PIN complexity reverts at once, to the DDF default...
  EXPECT_EQ(Eff(Device(kMin)), "4");
  EXPECT_EQ(Eff(User("alice", kMin)), "4");
  EXPECT_EQ(Applied("alice").complexity.minimum_length, std::nullopt);
  EXPECT_FALSE(HasRow("alice", kMin));
  // ...UsePassportForWork at the next sign-in.
  SettingStatus row = Row("alice", kUse);
  EXPECT_EQ(row.state, ComplianceState::kPending);
  EXPECT_EQ(row.desired, std::nullopt);
  EXPECT_EQ(row.effective, "false");
  EXPECT_THAT(row.reason, HasSubstr("reverts to not configured"));
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("alice", kUse)), "true");
  EXPECT_TRUE(Applied("alice").hello_enabled);
  EXPECT_FALSE(HasRow("alice", kUse));
}

// ---- durability ----

TEST_F(PolicyEngineTest, PendingItemsSurviveReopeningTheDatabase) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kRecovery), "true");
  Set(Source::kMdm, Device(kUse), "false");
  Evaluate();
  Reopen();
  auto pending = engine_->PendingReboot();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ(Row("alice", kUse).state, ComplianceState::kPending);
  EXPECT_EQ(Eff(User("alice", kRecovery)), "false");

  ASSERT_TRUE(engine_->CompleteReboot().ok());
  EXPECT_EQ(Eff(User("alice", kRecovery)), "true");
  Reopen();
  EXPECT_EQ(engine_->LastBoot()->count, 1);
  EXPECT_EQ(Row("alice", kUse).state, ComplianceState::kPending);  // a reboot is no sign-in
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(Eff(User("alice", kUse)), "false");
}

TEST_F(PolicyEngineTest, RebootPendingItemIsAppliedWithItsQueuedValue) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kRecovery), "true");
  Evaluate();
  // The pending item is the durable record: even with nothing else to evaluate it applies.
  ASSERT_TRUE(db_->Exec("DELETE FROM policy_status").ok());
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  EXPECT_EQ(Eff(Device(kRecovery)), "true");
  EXPECT_EQ(Eff(User("alice", kRecovery)), "true");
}

TEST_F(PolicyEngineTest, NewUserStartsFromWhatIsInForceOnTheDevice) {
  Set(Source::kMdm, Device(kRecovery), "true");
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  // carol appears after the reboot: the policy already took effect on the device.
  SignInAndProvision("carol");
  EXPECT_EQ(Eff(User("carol", kRecovery)), "true");
  EXPECT_TRUE(Applied("carol").pin_recovery_enabled);
  EXPECT_NE(Row("carol", kRecovery).state, ComplianceState::kPendingReboot);
}

// ---- web sign-in allow-list ----

TEST_F(PolicyEngineTest, WebSignInAllowListAppliesImmediately) {
  EXPECT_EQ(
      engine_->SetDesired(Source::kMdm, Device(kAllowList), "http://signin.contoso.com").code(),
      Code::kInvalidArgument);
  Set(Source::kMdm, Device(kAllowList), "signin.contoso.com;https://portal.contoso.com/adfs");
  EXPECT_EQ(store_->NavigateWebSignIn("https://signin.contoso.com/reset").code(),
            Code::kPermissionDenied);  // nothing before Evaluate
  Evaluate();
  EXPECT_TRUE(store_->NavigateWebSignIn("https://signin.contoso.com/reset").ok());
  EXPECT_TRUE(store_->NavigateWebSignIn("https://portal.contoso.com/adfs/ls").ok());
  Status blocked = store_->NavigateWebSignIn("https://evil.example.com/");
  EXPECT_EQ(blocked.code(), Code::kPermissionDenied);
  EXPECT_THAT(blocked.message(), HasSubstr(container::kWebSignInBlocked));
  SettingStatus row = Row("", kAllowList);
  EXPECT_EQ(row.state, ComplianceState::kSucceeded);
  EXPECT_EQ(row.effective, "signin.contoso.com;https://portal.contoso.com/adfs");

  // Drift on the device-wide list is repaired too.
  ASSERT_TRUE(store_->SetWebSignInAllowedUrls("evil.example.com").ok());
  Evaluate();
  EXPECT_FALSE(store_->NavigateWebSignIn("https://evil.example.com/").ok());
  EXPECT_TRUE(Row("", kAllowList).corrective);

  ASSERT_TRUE(engine_->ClearDesired(Source::kMdm, Device(kAllowList)).ok());
  Evaluate();
  EXPECT_FALSE(store_->NavigateWebSignIn("https://signin.contoso.com/reset").ok());
  EXPECT_EQ(Eff(Device(kAllowList)), std::nullopt);
}

// ---- not applicable / error ----

TEST_F(PolicyEngineTest, SettingsTheDeviceCannotHonourAreNotApplicable) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kRequireTpm), "true");
  Set(Source::kMdm, Device("PassportForWork/Biometrics/UseBiometrics"), "true");
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  SettingStatus row = Row("alice", kRequireTpm);
  EXPECT_EQ(row.state, ComplianceState::kNotApplicable);
  EXPECT_THAT(row.reason, HasSubstr("TPM"));
  EXPECT_EQ(Row("", "PassportForWork/Biometrics/UseBiometrics").state,
            ComplianceState::kNotApplicable);

  ASSERT_TRUE(engine_->SetFacts(DeviceFacts{.tpm_present = true, .biometric_sensor = true}).ok());
  Evaluate();
  EXPECT_EQ(Row("alice", kRequireTpm).state, ComplianceState::kSucceeded);
  EXPECT_EQ(Row("", "PassportForWork/Biometrics/UseBiometrics").state, ComplianceState::kSucceeded);
}

TEST_F(PolicyEngineTest, InconsistentPinLengthsAndImpossibleClassesAreErrors) {
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kMin), "12");
  Set(Source::kMdm, Device(kMax), "8");
  Evaluate();
  SettingStatus row = Row("alice", kMin);
  EXPECT_EQ(row.state, ComplianceState::kError);
  EXPECT_THAT(row.reason, HasSubstr("fall back to their defaults"));

  // Every character class disallowed: the container refuses it, the engine says so.
  ASSERT_TRUE(engine_->ClearDesired(Source::kMdm, Device(kMax)).ok());
  for (const char* cls : {"UppercaseLetters", "LowercaseLetters", "SpecialCharacters", "Digits"}) {
    Set(Source::kMdm, Device(std::string("PassportForWork/PINComplexity/") + cls), "2");
  }
  Evaluate();
  row = Row("alice", kDigits);
  EXPECT_EQ(row.state, ComplianceState::kError);
  EXPECT_EQ(Applied("alice").complexity.digits, std::nullopt);
}

// ---- report ----

TEST_F(PolicyEngineTest, ReportXmlIsStableAndComplete) {
  InstallServiceKey();
  SignInAndProvision("alice");
  Set(Source::kMdm, Device(kRecovery), "true");
  Set(Source::kMdm, Device(kAllowList), "signin.contoso.com");
  Set(Source::kLocalAdmin, Device(kMin), "6");
  Evaluate();
  std::string first = engine_->ReportXml().value();
  clock_.Advance(std::chrono::hours(3));
  Evaluate();
  EXPECT_EQ(engine_->ReportXml().value(), first);

  EXPECT_THAT(first, StartsWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<DMAgentReport version=\"1\">\n"
                                "  <Device joinType=\"AzureAdJoined\" "
                                "trustModel=\"CloudKerberosTrust\" tpm=\"false\" "
                                "biometricSensor=\"false\">\n"));
  EXPECT_THAT(first, HasSubstr("<Setting name=\"Authentication/ConfigureWebSignInAllowedUrls\" "
                               "state=\"Succeeded\" source=\"MDM (device)\" "
                               "desired=\"signin.contoso.com\" effective=\"signin.contoso.com\" "
                               "takesEffect=\"Immediately\" corrective=\"false\""));
  EXPECT_THAT(first, HasSubstr("<User name=\"alice\">"));
  EXPECT_THAT(first, HasSubstr("<Setting name=\"PassportForWork/EnablePinRecovery\" "
                               "state=\"PendingReboot\""));
  EXPECT_THAT(first, HasSubstr("<Recovery CanReset=\"DestructiveOnly\" "
                               "reason=\"EnablePinRecovery is pending a reboot\"/>"));
  // Device rows come before users; settings sorted.
  EXPECT_LT(first.find("ConfigureWebSignInAllowedUrls"), first.find("<User"));
  EXPECT_LT(first.find("name=\"PassportForWork/EnablePinRecovery\""),
            first.find("name=\"PassportForWork/PINComplexity/MinimumPINLength\""));

  ASSERT_TRUE(engine_->CompleteReboot().ok());
  std::string after = engine_->ReportXml().value();
  EXPECT_NE(after, first);
  EXPECT_THAT(after, HasSubstr("no PIN reset protector yet"));
}

TEST_F(PolicyEngineTest, ReportEscapesAttributeValues) {
  Set(Source::kMdm, Device("PassportForWork/DynamicLock/Plugins"),
      "<rule description=\"a & b\">'x'</rule>");
  Evaluate();
  std::string xml = engine_->ReportXml().value();
  EXPECT_THAT(xml, HasSubstr("desired=\"&lt;rule description=&quot;a &amp; b&quot;&gt;"
                             "&apos;x&apos;&lt;/rule&gt;\""));
}

}  // namespace
}  // namespace dm::policy

namespace dm::policy {
namespace {

// The report lists each user's FIDO2 security keys with their PIN state (issue: help desks
// must see a blocked key), and a wrong PIN changes the report.
TEST_F(PolicyEngineTest, ReportListsSecurityKeysWithTheirPinState) {
  container::SecurityKeyStore keys(*db_, {.sealer = &sealer_,
                                          .clock = &clock_,
                                          .random = &random_,
                                          .device_key_file = dir_ / "security-keys.key"});
  auto id = keys.Create("bob", "YubiKey 5");
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  ASSERT_TRUE(keys.SetPin("bob", *id, SecretBytes("4821")).ok());
  std::string before = engine_->ReportXml().value();
  EXPECT_THAT(before, HasSubstr("<User name=\"bob\">"));
  EXPECT_THAT(before, HasSubstr("<SecurityKey id=\"" + *id +
                                "\" label=\"YubiKey 5\" pinSet=\"true\" pinRetries=\"8\" "
                                "blocked=\"none\" minPinLength=\"4\" forcePinChange=\"false\" "
                                "credentials=\"0\"/>"));
  EXPECT_FALSE(keys.ChangePin("bob", *id, SecretBytes("0000"), SecretBytes("5555")).ok());
  std::string after = engine_->ReportXml().value();
  EXPECT_THAT(after, HasSubstr("pinRetries=\"7\""));
}

}  // namespace
}  // namespace dm::policy
