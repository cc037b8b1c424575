#include <gtest/gtest.h>

#include "base/pki.h"
#include "csp/device_facts.h"
#include "csp/dmagent_csp.h"
#include "csp/policy_test_support.h"

namespace dm::csp {
namespace {

using testing::Bool;
using testing::Chr;
using testing::Int;

constexpr char kRecoveryState[] =
    "./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/State";

class DmAgentCspTest : public testing::DeviceTreeTest {
 protected:
  // The key the container store encrypts protectors to ("" when none).
  std::string ContainerServiceKey() {
    auto st = db().Prepare("SELECT value FROM container_device WHERE key = ?");
    EXPECT_TRUE(st.ok());
    st->Bind(1, "pin_reset_service_key");
    auto row = st->Step();
    EXPECT_TRUE(row.ok());
    return *row ? st->Text(0) : std::string();
  }
};

TEST_F(DmAgentCspTest, ReportShowsPendingRebootAfterEnablePinRecovery) {
  ASSERT_EQ(tree_->Replace(device_, Pfw("Policies/EnablePinRecovery"), Bool("true")).code, 200);
  Commit();
  auto report = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Report");
  ASSERT_EQ(report.code, 200);
  EXPECT_EQ(report.value.format, "xml");
  auto expected = engine_->ReportXml();
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(report.value.data, *expected);
  EXPECT_NE(
      report.value.data.find("name=\"PassportForWork/EnablePinRecovery\" state=\"PendingReboot\""),
      std::string::npos)
      << report.value.data;

  auto state = tree_->Get(device_, kRecoveryState);
  ASSERT_EQ(state.code, 200);
  EXPECT_EQ(state.value.data, "PendingReboot");
  EXPECT_EQ(tree_
                ->Get(device_,
                      "./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/"
                      "Desired")
                .value.data,
            "true");
  EXPECT_EQ(tree_
                ->Get(device_,
                      "./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/"
                      "TakesEffect")
                .value.data,
            "AfterReboot");
  std::string list = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Compliance").value.data;
  EXPECT_NE(list.find("PassportForWork%2FEnablePinRecovery"), std::string::npos) << list;

  // The reboot step: no longer pending.
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  state = tree_->Get(device_, kRecoveryState);
  ASSERT_EQ(state.code, 200);
  EXPECT_NE(state.value.data, "PendingReboot");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Report").value.data.find("PendingReboot"),
            std::string::npos);
}

TEST_F(DmAgentCspTest, UnknownSettingOrUserIs404) {
  EXPECT_EQ(tree_->Get(device_, kRecoveryState).code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/nobody/CanReset").code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/nobody").code, 404);
}

TEST_F(DmAgentCspTest, PerUserRecoveryState) {
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users").value.data, "alice");
  auto expected = engine_->Recovery("alice");
  ASSERT_TRUE(expected.ok());
  auto can = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/alice/CanReset");
  ASSERT_EQ(can.code, 200);
  EXPECT_EQ(can.value.format, "chr");
  EXPECT_EQ(can.value.data, policy::CanResetName(expected->can_reset));
  EXPECT_EQ(can.value.data, "Unknown");  // no container yet
  auto why = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/alice/CanResetReason");
  ASSERT_EQ(why.code, 200);
  EXPECT_EQ(why.value.data, expected->reason);
  EXPECT_FALSE(why.value.data.empty());
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/alice").value.data,
            "CanReset/CanResetReason/Compliance");
}

TEST_F(DmAgentCspTest, PerUserCompliance) {
  ASSERT_EQ(
      tree_->Replace(alice_, UserPfw("Policies/PINComplexity/MinimumPINLength"), Int("8")).code,
      200);
  Commit();
  auto all = engine_->Compliance(std::string("alice"));
  ASSERT_TRUE(all.ok());
  const policy::SettingStatus* min = nullptr;
  for (const auto& s : *all) {
    if (s.setting == "PassportForWork/PINComplexity/MinimumPINLength") min = &s;
  }
  ASSERT_NE(min, nullptr);
  const std::string base =
      "./Vendor/MSFT/DMAgent/Users/alice/Compliance/"
      "PassportForWork%2FPINComplexity%2FMinimumPINLength/";
  EXPECT_EQ(tree_->Get(device_, base + "State").value.data,
            policy::ComplianceStateName(min->state));
  EXPECT_EQ(tree_->Get(device_, base + "Source").value.data, min->source);
  EXPECT_EQ(tree_->Get(device_, base + "Desired").value.data, "8");
  EXPECT_EQ(tree_->Get(device_, base + "Reason").value.data, min->reason);
}

TEST_F(DmAgentCspTest, ReadOnlyAndDeviceOnly) {
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/DMAgent/Report", NodeValue{"<x/>", "xml"}).code,
            405);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT/DMAgent/Report").code, 405);
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/DMAgent/Users/bob", Chr("")).code, 405);
  EXPECT_EQ(tree_->Get(alice_, "./User/Vendor/MSFT/DMAgent/Report").code, 405);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent").value.data,
            "Report/Compliance/Users/Subscriptions/Services");
}

std::string RsaPublicPem() {
  auto key = crypto::GenerateRsaPrivateKey(2048);
  EXPECT_TRUE(key.ok());
  auto pub = crypto::PublicKeyPem(*key);
  EXPECT_TRUE(pub.ok());
  return *pub;
}

TEST_F(DmAgentCspTest, ComplianceAlertDefaultsToOffAndPersists) {
  auto get = tree_->Get(device_, kComplianceAlertUri);
  ASSERT_EQ(get.code, 200);
  EXPECT_EQ(get.value.format, "int");
  EXPECT_EQ(get.value.data, "0");
  auto off = ComplianceAlertSubscribed(db());
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(*off);

  ASSERT_EQ(tree_->Replace(device_, kComplianceAlertUri, Int("1")).code, 200);
  Reopen();
  Build();
  EXPECT_EQ(tree_->Get(device_, kComplianceAlertUri).value.data, "1");
  EXPECT_TRUE(*ComplianceAlertSubscribed(db()));

  ASSERT_EQ(tree_->Replace(device_, kComplianceAlertUri, Int("0")).code, 200);
  EXPECT_FALSE(*ComplianceAlertSubscribed(db()));
}

TEST_F(DmAgentCspTest, ComplianceAlertRejectsOtherValuesAndOperations) {
  EXPECT_EQ(tree_->Replace(device_, kComplianceAlertUri, Int("2")).code, 400);
  EXPECT_EQ(tree_->Replace(device_, kComplianceAlertUri, Chr("1")).code, 415);
  EXPECT_EQ(tree_->Delete(device_, kComplianceAlertUri).code, 405);
  EXPECT_EQ(tree_->Add(device_, kComplianceAlertUri, Int("1")).code, 405);
  EXPECT_EQ(
      tree_->Replace(alice_, "./User/Vendor/MSFT/DMAgent/Subscriptions/ComplianceAlert", Int("1"))
          .code,
      405);
  EXPECT_FALSE(*ComplianceAlertSubscribed(db()));
}

TEST_F(DmAgentCspTest, ServiceUrlsLandInTheEnrollmentSettings) {
  const std::pair<const char*, const char*> leaves[] = {
      {kPinResetUrlUri, kPinResetUrlKey},
      {kHelloCertificateUrlUri, kHelloCertUrlKey},
      {kFederationLoginUrlUri, kFederationLoginUrlKey}};
  for (const auto& [uri, key] : leaves) {
    EXPECT_EQ(tree_->Get(device_, uri).code, 404) << uri;
    const std::string url = std::string("https://dm.example.test:8443/") + key;
    ASSERT_EQ(tree_->Replace(device_, uri, Chr(url)).code, 200) << uri;
    auto get = tree_->Get(device_, uri);
    ASSERT_EQ(get.code, 200);
    EXPECT_EQ(get.value.data, url);
    EXPECT_EQ(ReadFact(db(), key)->value_or(""), url) << key;

    ASSERT_EQ(tree_->Delete(device_, uri).code, 200) << uri;
    EXPECT_EQ(tree_->Get(device_, uri).code, 404);
    EXPECT_EQ(ReadFact(db(), key)->value_or(""), "") << key;
    EXPECT_EQ(tree_->Delete(device_, uri).code, 404);
  }
}

TEST_F(DmAgentCspTest, ServiceUrlsMustBeBoundedHttps) {
  const std::string bad[] = {"http://dm.example.test/recover",
                             "https://",
                             "https:///recover",
                             "https://user@dm.example.test/",
                             "https://dm.example.test/a b",
                             "ftp://dm.example.test/",
                             "https://dm.example.test/" + std::string(kMaxServiceUrlLength, 'a')};
  for (const std::string& url : bad) {
    auto r = tree_->Replace(device_, kPinResetUrlUri, Chr(url));
    EXPECT_EQ(r.code, 400) << url;
  }
  EXPECT_EQ(tree_->Get(device_, kPinResetUrlUri).code, 404);
  EXPECT_EQ(ReadFact(db(), kPinResetUrlKey)->value_or(""), "");
  EXPECT_EQ(tree_->Replace(device_, kPinResetUrlUri, Int("7")).code, 415);
  EXPECT_EQ(tree_->Add(device_, kPinResetUrlUri, Chr("https://dm.example.test/")).code, 405);
  EXPECT_EQ(tree_
                ->Replace(alice_, "./User/Vendor/MSFT/DMAgent/Services/PinResetUrl",
                          Chr("https://dm.example.test/"))
                .code,
            405);
}

TEST_F(DmAgentCspTest, PinResetPublicKeyGoesToTheContainerStoreToo) {
  const std::string pem = RsaPublicPem();
  ASSERT_EQ(tree_->Replace(device_, kPinResetPublicKeyUri, Chr(pem)).code, 200);
  EXPECT_EQ(tree_->Get(device_, kPinResetPublicKeyUri).value.data, pem);
  EXPECT_EQ(ReadFact(db(), kPinResetPublicKeyKey)->value_or(""), pem);
  EXPECT_EQ(ContainerServiceKey(), pem);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Services").value.data, "PinResetPublicKey");

  // Not an RSA key (an EC one, garbage, too long): refused, nothing changes anywhere.
  auto ec = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(ec.ok());
  for (const std::string& bad : {ec->public_pem, std::string("-----BEGIN PUBLIC KEY-----\nxx\n"),
                                 std::string(kMaxPublicKeyPemLength + 1, 'A')}) {
    EXPECT_EQ(tree_->Replace(device_, kPinResetPublicKeyUri, Chr(bad)).code, 400);
  }
  EXPECT_EQ(ReadFact(db(), kPinResetPublicKeyKey)->value_or(""), pem);
  EXPECT_EQ(ContainerServiceKey(), pem);

  ASSERT_EQ(tree_->Delete(device_, kPinResetPublicKeyUri).code, 200);
  EXPECT_EQ(ReadFact(db(), kPinResetPublicKeyKey)->value_or(""), "");
  EXPECT_EQ(ContainerServiceKey(), "");
}

TEST_F(DmAgentCspTest, RolledBackReplaceUndoesTheKeyEverywhere) {
  // The message's transaction rolled back (an Atomic failed): the key is gone from both the
  // settings table and the container store (one database, one transaction).
  const std::string pem = RsaPublicPem();
  {
    auto tx = db().Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_EQ(tree_->Replace(device_, kPinResetPublicKeyUri, Chr(pem)).code, 200);
  }  // not committed
  EXPECT_EQ(ReadFact(db(), kPinResetPublicKeyKey)->value_or(""), "");
  EXPECT_EQ(ContainerServiceKey(), "");
  EXPECT_EQ(tree_->Get(device_, kPinResetPublicKeyUri).code, 404);
}

}  // namespace
}  // namespace dm::csp
