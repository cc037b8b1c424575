#include <gtest/gtest.h>

#include "csp/policy_test_support.h"

namespace dm::csp {
namespace {

using policy::Scope;
using testing::Bool;
using testing::Chr;
using testing::Int;
using testing::NodeFmt;

constexpr char kConfig[] = "./Vendor/MSFT/Policy/Config/Authentication/";
constexpr char kResult[] = "./Vendor/MSFT/Policy/Result/Authentication/";
constexpr char kWebSignIn[] = "Authentication/EnableWebSignIn";
constexpr char kAllowList[] = "Authentication/ConfigureWebSignInAllowedUrls";

class PolicyCspTest : public testing::DeviceTreeTest {
 protected:
  std::string Config(std::string_view p) { return kConfig + std::string(p); }
  std::string Result(std::string_view p) { return kResult + std::string(p); }
};

TEST_F(PolicyCspTest, ConfigAddGetReplaceAndResultAfterCommit) {
  ASSERT_EQ(tree_->Add(device_, Config("EnableWebSignIn"), Int("1")).code, 200);
  EXPECT_EQ(Desired(Scope::kDevice, "", kWebSignIn), "1");
  auto g = tree_->Get(device_, Config("EnableWebSignIn"));
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "1");
  EXPECT_EQ(g.value.format, "int");
  Commit();
  g = tree_->Get(device_, Result("EnableWebSignIn"));
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "1");
  ASSERT_EQ(tree_->Replace(device_, Config("EnableWebSignIn"), Int("2")).code, 200);
  Commit();
  EXPECT_EQ(tree_->Get(device_, Result("EnableWebSignIn")).value.data, "2");
  // The same node through ./Device.
  EXPECT_EQ(tree_->Get(device_, "./Device/Vendor/MSFT/Policy/Config/Authentication/EnableWebSignIn")
                .value.data,
            "2");
}

// One rule for the case of a URI in every CSP (the DDFs say CaseSense CIS): static names match
// whatever their case, dynamic names ({TenantId}, a provider ID) are kept as the server spelt
// them. A lower-cased Policy path reaches the same setting as the documented spelling.
TEST_F(PolicyCspTest, StaticNamesMatchWhateverTheirCase) {
  ASSERT_EQ(tree_
                ->Add(device_, "./device/vendor/msft/policy/config/authentication/enablewebsignin",
                      Int("1"))
                .code,
            200);
  Commit();
  EXPECT_EQ(tree_->Get(device_, Config("EnableWebSignIn")).value.data, "1");
  EXPECT_EQ(tree_->Get(device_, "./DEVICE/VENDOR/MSFT/POLICY/RESULT/AUTHENTICATION/ENABLEWEBSIGNIN")
                .value.data,
            "1");
  EXPECT_EQ(tree_->Get(device_, "./vendor/msft/policy/config/authentication").value.data,
            "EnableWebSignIn");
  EXPECT_EQ(tree_->Get(device_, "./devdetail/swv").code, 200);
  ASSERT_EQ(tree_->Add(device_, Pfw("Policies/UsePassportForWork"), Bool("true")).code, 200);
  EXPECT_EQ(tree_
                ->Get(device_, "./vendor/msft/passportforwork/" + std::string(testing::kTenant) +
                                   "/policies/usepassportforwork")
                .value.data,
            "true");
}

TEST_F(PolicyCspTest, ConfigDeleteMeansNotConfigured) {
  ASSERT_EQ(tree_->Replace(device_, Config("EnableWebSignIn"), Int("1")).code, 200);
  ASSERT_EQ(tree_
                ->Replace(device_, Config("ConfigureWebSignInAllowedUrls"),
                          Chr("signin.contoso.com;portal.contoso.com"))
                .code,
            200);
  Commit();
  EXPECT_EQ(tree_->Get(device_, Result("ConfigureWebSignInAllowedUrls")).value.data,
            "signin.contoso.com;portal.contoso.com");
  ASSERT_EQ(tree_->Delete(device_, Config("EnableWebSignIn")).code, 200);
  ASSERT_EQ(tree_->Delete(device_, Config("ConfigureWebSignInAllowedUrls")).code, 200);
  Commit();
  EXPECT_EQ(tree_->Get(device_, Config("EnableWebSignIn")).code, 404);
  EXPECT_FALSE(Desired(Scope::kDevice, "", kWebSignIn).has_value());
  // Not configured: Result reports the OS default where there is one, 404 where there is none.
  auto g = tree_->Get(device_, Result("EnableWebSignIn"));
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "0");
  EXPECT_EQ(tree_->Get(device_, Result("ConfigureWebSignInAllowedUrls")).code, 404);
  EXPECT_EQ(tree_->Delete(device_, Config("EnableWebSignIn")).code, 404);
}

TEST_F(PolicyCspTest, ValuesAreCheckedAndNormalisedByTheCatalog) {
  EXPECT_EQ(tree_->Add(device_, Config("EnableWebSignIn"), Int("3")).code, 400);
  EXPECT_EQ(tree_->Add(device_, Config("EnableWebSignIn"), Chr("1")).code, 415);
  EXPECT_EQ(tree_->Add(device_, Config("ConfigureWebSignInAllowedUrls"), Chr("not a host")).code,
            400);
  ASSERT_EQ(tree_
                ->Add(device_, Config("ConfigureWebSignInAllowedUrls"),
                      Chr(" accounts.contoso.com ; https://signin.contoso.com/x ;"))
                .code,
            200);
  EXPECT_EQ(tree_->Get(device_, Config("ConfigureWebSignInAllowedUrls")).value.data,
            "accounts.contoso.com;https://signin.contoso.com/x");
  // A re-sent Add that normalises to the same value succeeds.
  EXPECT_EQ(tree_
                ->Add(device_, Config("ConfigureWebSignInAllowedUrls"),
                      Chr("accounts.contoso.com;https://signin.contoso.com/x"))
                .code,
            200);
  EXPECT_EQ(
      tree_->Add(device_, Config("ConfigureWebSignInAllowedUrls"), Chr("other.contoso.com")).code,
      418);
}

TEST_F(PolicyCspTest, ResultIsGetOnly) {
  EXPECT_EQ(tree_->Replace(device_, Result("EnableWebSignIn"), Int("1")).code, 405);
  EXPECT_EQ(tree_->Add(device_, Result("EnableWebSignIn"), Int("1")).code, 405);
  EXPECT_EQ(tree_->Delete(device_, Result("EnableWebSignIn")).code, 405);
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/Policy/Result/Authentication", NodeFmt()).code, 405);
}

TEST_F(PolicyCspTest, ScopeRules) {
  // AllowEAPCertSSO is user-only; the others here are device-only.
  const std::string user_config = "./User/Vendor/MSFT/Policy/Config/Authentication/AllowEAPCertSSO";
  ASSERT_EQ(tree_->Add(alice_, user_config, Int("1")).code, 200);
  EXPECT_EQ(Desired(Scope::kUser, "alice", "Authentication/AllowEAPCertSSO"), "1");
  EXPECT_EQ(tree_->Add(device_, Config("AllowEAPCertSSO"), Int("1")).code, 405);
  EXPECT_EQ(tree_->Get(device_, Result("AllowEAPCertSSO")).code, 405);
  EXPECT_EQ(
      tree_
          ->Add(alice_, "./User/Vendor/MSFT/Policy/Config/Authentication/EnableWebSignIn", Int("1"))
          .code,
      405);
  Commit();
  auto g = tree_->Get(alice_, "./User/Vendor/MSFT/Policy/Result/Authentication/AllowEAPCertSSO");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "1");
  EXPECT_EQ(tree_->Get(alice_, "./User/Vendor/MSFT/Policy/Config/Authentication").value.data,
            "AllowEAPCertSSO");
}

TEST_F(PolicyCspTest, UnknownAreasAndPoliciesAre404) {
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/Policy/Config/Browser/AllowCookies", Int("1")).code,
            404);
  EXPECT_EQ(tree_->Replace(device_, Config("NoSuchPolicy"), Int("1")).code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Policy/Result/Browser/AllowCookies").code, 404);
}

TEST_F(PolicyCspTest, AreaNodesAndListings) {
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Policy").value.data, "Config/Result");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Policy/Config").value.data, "");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Policy/Config/Authentication").code, 404);
  ASSERT_EQ(tree_->Add(device_, Config("AllowFastReconnect"), Int("0")).code, 200);
  ASSERT_EQ(tree_->Add(device_, Config("EnableWebSignIn"), Int("1")).code, 200);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Policy/Config").value.data, "Authentication");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Policy/Config/Authentication").value.data,
            "AllowFastReconnect/EnableWebSignIn");
  // Result lists what has a value in force: configured ones and those with a default.
  Commit();
  std::string result = tree_->Get(device_, "./Vendor/MSFT/Policy/Result/Authentication").value.data;
  EXPECT_NE(result.find("EnableWebSignIn"), std::string::npos);
  EXPECT_NE(result.find("AllowFastReconnect"), std::string::npos);
  EXPECT_EQ(result.find("ConfigureWebSignInAllowedUrls"), std::string::npos);
  EXPECT_EQ(result.find("AllowEAPCertSSO"), std::string::npos);  // user-only
  // Deleting the area clears every policy in it.
  ASSERT_EQ(tree_->Delete(device_, "./Vendor/MSFT/Policy/Config/Authentication").code, 200);
  EXPECT_FALSE(Desired(Scope::kDevice, "", kWebSignIn).has_value());
  EXPECT_FALSE(Desired(Scope::kDevice, "", "Authentication/AllowFastReconnect").has_value());
  EXPECT_FALSE(Desired(Scope::kDevice, "", kAllowList).has_value());
}

TEST_F(PolicyCspTest, TheDeviceTreeHasEveryCsp) {
  EXPECT_EQ(tree_->Get(device_, ".").value.data, "DevInfo/DevDetail/Vendor");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT").value.data,
            "DMClient/Reboot/CertificateStore/PassportForWork/Policy/DMAgent");
  EXPECT_EQ(tree_->Get(alice_, "./User/Vendor/MSFT").value.data, "PassportForWork/Policy");
  EXPECT_EQ(tree_->Get(device_, "./DevInfo/DmV").value.data, "1.3");
}

}  // namespace
}  // namespace dm::csp
