#include <gtest/gtest.h>

#include "csp/policy_test_support.h"
#include "storage/database.h"

namespace dm::csp {
namespace {

using policy::Scope;
using testing::Bool;
using testing::Chr;
using testing::Int;
using testing::kTenant;
using testing::kTenant2;
using testing::NodeFmt;

constexpr char kRecovery[] = "PassportForWork/EnablePinRecovery";
constexpr char kMin[] = "PassportForWork/PINComplexity/MinimumPINLength";
constexpr char kUse[] = "PassportForWork/UsePassportForWork";

class PassportForWorkTest : public testing::DeviceTreeTest {
 protected:
  // The origin the engine recorded for a desired value (policy_desired.origin).
  std::string Origin(std::string_view setting) {
    auto st = db().Prepare("SELECT origin FROM policy_desired WHERE setting = ?");
    EXPECT_TRUE(st.ok());
    st->Bind(1, setting);
    auto row = st->Step();
    return row.ok() && *row ? st->Text(0) : std::string("<none>");
  }
};

TEST_F(PassportForWorkTest, DocumentedAddSequence) {
  // The SyncML example of the PassportForWork doc: Add the tenant node, then Add leaves.
  ASSERT_EQ(
      tree_->Add(device_, "./Vendor/MSFT/PassportForWork/" + std::string(kTenant), Chr("")).code,
      200);
  ASSERT_EQ(tree_->Add(device_, Pfw("Policies/UsePassportForWork"), Bool("true")).code, 200);
  ASSERT_EQ(tree_->Add(device_, Pfw("Policies/PINComplexity/MinimumPINLength"), Int("6")).code,
            200);
  ASSERT_EQ(tree_->Add(device_, Pfw("Policies/EnablePinRecovery"), Bool("True")).code, 200);
  EXPECT_EQ(Desired(Scope::kDevice, "", kUse), "true");
  EXPECT_EQ(Desired(Scope::kDevice, "", kMin), "6");
  EXPECT_EQ(Desired(Scope::kDevice, "", kRecovery), "true");
  EXPECT_EQ(Origin(kMin), kTenant);

  auto g = tree_->Get(device_, Pfw("Policies/PINComplexity/MinimumPINLength"));
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "6");
  EXPECT_EQ(g.value.format, "int");
  g = tree_->Get(device_, Pfw("Policies"));
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "EnablePinRecovery/UsePassportForWork/PINComplexity");
  g = tree_->Get(device_, "./Device/Vendor/MSFT/PassportForWork");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data,
            std::string(kTenant) + "/Biometrics/DeviceUnlock/DynamicLock/SecurityKey");
}

TEST_F(PassportForWorkTest, UnsetLeafIs404) {
  ASSERT_EQ(tree_->Add(device_, Pfw("Policies"), NodeFmt()).code, 200);
  auto g = tree_->Get(device_, Pfw("Policies/RequireSecurityDevice"));
  EXPECT_EQ(g.code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/PassportForWork/Biometrics/UseBiometrics").code,
            404);
}

TEST_F(PassportForWorkTest, BoolNodeWithIntFormatIs415) {
  auto r = tree_->Add(device_, Pfw("Policies/EnablePinRecovery"), Int("1"));
  EXPECT_EQ(r.code, 415);
  EXPECT_EQ(tree_->Replace(device_, Pfw("Policies/UsePassportForWork"), Chr("true")).code, 415);
  EXPECT_EQ(tree_->Replace(device_, Pfw("Policies/PINComplexity/Digits"), Bool("true")).code, 415);
  // UseSecurityKeyForSignin is an int although it reads like a switch.
  EXPECT_EQ(
      tree_
          ->Replace(device_, "./Vendor/MSFT/PassportForWork/SecurityKey/UseSecurityKeyForSignin",
                    Bool("true"))
          .code,
      415);
  EXPECT_FALSE(Desired(Scope::kDevice, "", kRecovery).has_value());
}

TEST_F(PassportForWorkTest, MinimumPinLengthOutOfRangeIs400) {
  auto r = tree_->Add(device_, Pfw("Policies/PINComplexity/MinimumPINLength"), Int("3"));
  EXPECT_EQ(r.code, 400);
  EXPECT_NE(r.reason.find("4-127"), std::string::npos) << r.reason;
  EXPECT_EQ(
      tree_->Replace(device_, Pfw("Policies/PINComplexity/MaximumPINLength"), Int("128")).code,
      400);
  EXPECT_EQ(tree_->Replace(device_, Pfw("Policies/PINComplexity/Digits"), Int("3")).code, 400);
  EXPECT_EQ(tree_->Replace(device_, Pfw("Policies/EnablePinRecovery"), Bool("yes")).code, 400);
  EXPECT_EQ(tree_->Get(device_, Pfw("")).code, 400);  // trailing '/'
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/PassportForWork/" + std::string(kTenant)).code,
            404);  // nothing was created
  EXPECT_FALSE(Desired(Scope::kDevice, "", kMin).has_value());
}

TEST_F(PassportForWorkTest, DeviceOnlyNodesUnderUserAre405) {
  const std::string device_only[] = {
      UserPfw("Policies/UseCertificateForOnPremAuth"),
      UserPfw("Policies/UseCloudTrustForOnPremAuth"),
      UserPfw("Policies/DisablePostLogonProvisioning"),
      UserPfw("Policies/UseHelloCertificatesAsSmartCardCertificates"),
      UserPfw("Policies/EnableWindowsHelloProvisioningForSecurityKeys"),
      UserPfw("Policies/ExcludeSecurityDevices/TPM12"),
      UserPfw("Policies/Remote/UseRemotePassport"),
      "./User/Vendor/MSFT/PassportForWork/Biometrics/UseBiometrics",
      "./User/Vendor/MSFT/PassportForWork/SecurityKey/UseSecurityKeyForSignin",
      "./User/Vendor/MSFT/PassportForWork/UseBiometrics",
  };
  for (const std::string& uri : device_only) {
    SCOPED_TRACE(uri);
    auto r = tree_->Replace(alice_, uri,
                            uri.find("SecurityKey") != std::string::npos ? Int("1") : Bool("true"));
    EXPECT_EQ(r.code, 405);
  }
  EXPECT_EQ(tree_->Get(alice_, UserPfw("Policies/ExcludeSecurityDevices")).code, 405);
}

TEST_F(PassportForWorkTest, UserScopeTargetsTheSessionUser) {
  ASSERT_EQ(tree_->Add(alice_, UserPfw("Policies/EnablePinRecovery"), Bool("true")).code, 200);
  ASSERT_EQ(tree_->Add(alice_, UserPfw("Policies/PINComplexity/MinimumPINLength"), Int("8")).code,
            200);
  EXPECT_EQ(Desired(Scope::kUser, "alice", kRecovery), "true");
  EXPECT_EQ(Desired(Scope::kUser, "alice", kMin), "8");
  EXPECT_FALSE(Desired(Scope::kDevice, "", kRecovery).has_value());
  EXPECT_EQ(tree_->Get(device_, Pfw("Policies/EnablePinRecovery")).code, 404);
  EXPECT_EQ(tree_->Get(alice_, UserPfw("Policies/EnablePinRecovery")).value.data, "true");
  Context bob{"bob"};
  EXPECT_EQ(tree_->Get(bob, UserPfw("Policies/EnablePinRecovery")).code, 404);
  // No signed-in user: ./User addresses nothing.
  EXPECT_EQ(tree_->Add(device_, UserPfw("Policies/UsePassportForWork"), Bool("true")).code, 404);
}

TEST_F(PassportForWorkTest, DeleteOfLeafClearsIt) {
  ASSERT_EQ(tree_->Replace(device_, Pfw("Policies/EnablePinRecovery"), Bool("true")).code, 200);
  EXPECT_EQ(tree_->Delete(device_, Pfw("Policies/EnablePinRecovery")).code, 200);
  EXPECT_FALSE(Desired(Scope::kDevice, "", kRecovery).has_value());
  EXPECT_EQ(tree_->Delete(device_, Pfw("Policies/EnablePinRecovery")).code, 404);
  EXPECT_EQ(tree_->Get(device_, Pfw("Policies")).code, 200);
}

TEST_F(PassportForWorkTest, DeleteOfTenantOrPoliciesClearsEverythingUnderIt) {
  for (const char* under : {"", "/Policies"}) {
    SCOPED_TRACE(under);
    ASSERT_EQ(tree_->Replace(device_, Pfw("Policies/UsePassportForWork"), Bool("false")).code, 200);
    ASSERT_EQ(
        tree_->Replace(device_, Pfw("Policies/PINComplexity/MinimumPINLength"), Int("6")).code,
        200);
    ASSERT_EQ(tree_->Replace(device_, Pfw("Policies/Remote/UseRemotePassport"), Bool("true")).code,
              200);
    std::string node = "./Vendor/MSFT/PassportForWork/" + std::string(kTenant) + under;
    ASSERT_EQ(tree_->Delete(device_, node).code, 200);
    EXPECT_FALSE(Desired(Scope::kDevice, "", kUse).has_value());
    EXPECT_FALSE(Desired(Scope::kDevice, "", kMin).has_value());
    EXPECT_FALSE(
        Desired(Scope::kDevice, "", "PassportForWork/Remote/UseRemotePassport").has_value());
    EXPECT_EQ(tree_->Get(device_, node).code, 404);
    EXPECT_EQ(tree_->Get(device_, Pfw("Policies/UsePassportForWork")).code, 404);
  }
}

TEST_F(PassportForWorkTest, ReplaceCreatesTheTenantNodeImplicitly) {
  // Intune and Fleet send Replace without Adding {TenantId} first.
  auto r = tree_->Replace(device_, Pfw("Policies/EnablePinRecovery"), Bool("true"));
  ASSERT_EQ(r.code, 200) << r.reason;
  EXPECT_EQ(tree_->Get(device_, Pfw("Policies")).value.data, "EnablePinRecovery");
  EXPECT_EQ(Origin(kRecovery), kTenant);
  // A node the CSP does not define is still 404.
  EXPECT_EQ(tree_->Replace(device_, Pfw("Policies/NoSuchPolicy"), Bool("true")).code, 404);
  EXPECT_EQ(tree_->Replace(device_, Pfw("Settings/EnablePinRecovery"), Bool("true")).code, 404);
}

TEST_F(PassportForWorkTest, ReDeliveredAddIsIdempotent) {
  ASSERT_EQ(tree_->Add(device_, Pfw("Policies/EnablePinRecovery"), Bool("true")).code, 200);
  EXPECT_EQ(tree_->Add(device_, Pfw("Policies/EnablePinRecovery"), Bool("true")).code, 200);
  EXPECT_EQ(tree_->Add(device_, Pfw("Policies/EnablePinRecovery"), Bool("false")).code, 418);
  EXPECT_EQ(tree_->Add(device_, Pfw("Policies"), NodeFmt()).code, 418);
  EXPECT_EQ(Desired(Scope::kDevice, "", kRecovery), "true");
}

TEST_F(PassportForWorkTest, TenantIdMustBeAGuidWithoutBraces) {
  EXPECT_EQ(
      tree_->Add(device_, "./Vendor/MSFT/PassportForWork/{" + std::string(kTenant) + "}", NodeFmt())
          .code,
      400);
  EXPECT_EQ(
      tree_->Replace(device_, Pfw("Policies/EnablePinRecovery", "contoso"), Bool("true")).code,
      400);
}

TEST_F(PassportForWorkTest, GroupNodesAreGetOnlyButTheirLeavesAreWritable) {
  const std::string bio = "./Vendor/MSFT/PassportForWork/Biometrics";
  EXPECT_EQ(tree_->Add(device_, bio, NodeFmt()).code, 405);
  EXPECT_EQ(tree_->Delete(device_, bio).code, 405);
  EXPECT_EQ(tree_->Get(device_, bio).value.data, "");
  ASSERT_EQ(tree_->Replace(device_, bio + "/UseBiometrics", Bool("false")).code, 200);
  ASSERT_EQ(tree_->Replace(device_, bio + "/EnableESSwithSupportedPeripherals", Int("1")).code,
            200);
  EXPECT_EQ(tree_->Get(device_, bio).value.data, "EnableESSwithSupportedPeripherals/UseBiometrics");
  EXPECT_EQ(Desired(Scope::kDevice, "", "PassportForWork/Biometrics/UseBiometrics"), "false");
  EXPECT_EQ(Origin("PassportForWork/Biometrics/UseBiometrics"), "");
  EXPECT_EQ(
      tree_
          ->Replace(device_, "./Vendor/MSFT/PassportForWork/DeviceUnlock/GroupA", Chr("not-a-guid"))
          .code,
      400);
  EXPECT_EQ(tree_
                ->Replace(device_, "./Vendor/MSFT/PassportForWork/DeviceUnlock/GroupA",
                          Chr("{2A8B9F6C-1D3E-4F50-8A7B-9C0D1E2F3A4B}"))
                .code,
            200);
  EXPECT_EQ(tree_->Delete(device_, bio + "/UseBiometrics").code, 200);
  EXPECT_FALSE(Desired(Scope::kDevice, "", "PassportForWork/Biometrics/UseBiometrics").has_value());
}

TEST_F(PassportForWorkTest, TheTenantThatWroteLastOwnsASetting) {
  ASSERT_EQ(tree_->Replace(device_, Pfw("Policies/EnablePinRecovery", kTenant), Bool("true")).code,
            200);
  ASSERT_EQ(
      tree_->Replace(device_, Pfw("Policies/EnablePinRecovery", kTenant2), Bool("false")).code,
      200);
  EXPECT_EQ(Origin(kRecovery), kTenant2);
  EXPECT_EQ(tree_->Get(device_, Pfw("Policies/EnablePinRecovery", kTenant)).code, 404);
  // Deleting the first tenant leaves the second tenant's value alone.
  ASSERT_EQ(tree_->Delete(device_, "./Vendor/MSFT/PassportForWork/" + std::string(kTenant)).code,
            200);
  EXPECT_EQ(Desired(Scope::kDevice, "", kRecovery), "false");
  EXPECT_EQ(tree_->Get(device_, Pfw("Policies/EnablePinRecovery", kTenant2)).value.data, "false");
}

// Ownership moves along a chain of tenants, in both scopes: only the last writer keeps the leaf,
// and rewriting under the same tenant keeps it.
TEST_F(PassportForWorkTest, OwnershipFollowsTheLastWriterAcrossManyTenants) {
  const std::string tenants[] = {kTenant, kTenant2, "0a1b2c3d-0000-4000-8000-000000000003"};
  for (const bool user : {false, true}) {
    const Context& ctx = user ? alice_ : device_;
    const std::string root = user ? "./User" : "./Device";
    auto uri = [&](const std::string& t) {
      return root + "/Vendor/MSFT/PassportForWork/" + t + "/Policies/PINComplexity/Digits";
    };
    for (int round = 0; round < 2; ++round) {
      for (const std::string& t : tenants) {
        ASSERT_EQ(tree_->Replace(ctx, uri(t), Int(round == 0 ? "1" : "2")).code, 200) << uri(t);
        ASSERT_EQ(tree_->Replace(ctx, uri(t), Int(round == 0 ? "1" : "2")).code, 200) << uri(t);
        for (const std::string& other : tenants) {
          EXPECT_EQ(tree_->Get(ctx, uri(other)).code, other == t ? 200 : 404)
              << uri(other) << " after " << t;
        }
      }
    }
    // The tenants' interior nodes stay; only the leaf moved.
    EXPECT_EQ(
        tree_->Get(ctx, root + "/Vendor/MSFT/PassportForWork/" + tenants[0] + "/Policies").code,
        200);
  }
}

// Every PassportForWork catalog setting has a node, with the catalog's type as its Format.
TEST_F(PassportForWorkTest, EveryCatalogSettingHasANodeWithItsFormat) {
  int checked = 0;
  for (const policy::SettingDef& def : policy::AllSettings()) {
    std::string_view name = def.name;
    if (name.rfind("PassportForWork/", 0) != 0) continue;
    std::string rest(name.substr(16));
    bool root = rest.rfind("Biometrics/", 0) == 0 || rest.rfind("DeviceUnlock/", 0) == 0 ||
                rest.rfind("DynamicLock/", 0) == 0 || rest.rfind("SecurityKey/", 0) == 0 ||
                rest == "UseBiometrics";
    std::string uri = root ? "./Vendor/MSFT/PassportForWork/" + rest : Pfw("Policies/" + rest);
    NodeValue v;
    switch (def.type) {
      case policy::ValueType::kBool:
        v = Bool("true");
        break;
      case policy::ValueType::kInt:
        v = Int(std::to_string(def.min.value_or(0)));
        break;
      case policy::ValueType::kString:
        v = Chr(def.format == policy::StringFormat::kBracedGuid
                    ? "{2A8B9F6C-1D3E-4F50-8A7B-9C0D1E2F3A4B}"
                    : "plugin");
        break;
    }
    SCOPED_TRACE(uri);
    auto r = tree_->Replace(device_, uri, v);
    EXPECT_EQ(r.code, 200) << r.reason;
    EXPECT_EQ(Desired(Scope::kDevice, "", std::string(name)), v.data);
    auto g = tree_->Get(device_, uri);
    EXPECT_EQ(g.value.format, v.format);
    ++checked;
  }
  EXPECT_GE(checked, 25);
}

}  // namespace
}  // namespace dm::csp
