#include "policy/catalog.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace dm::policy {
namespace {

TEST(CatalogTest, NamesAreUniqueAndFindable) {
  std::set<std::string_view> names;
  for (const SettingDef& def : AllSettings()) {
    EXPECT_TRUE(names.insert(def.name).second) << def.name;
    EXPECT_EQ(FindSetting(def.name), &def);
  }
  EXPECT_EQ(FindSetting("PassportForWork/NoSuchPolicy"), nullptr);
  EXPECT_EQ(FindSetting(""), nullptr);
}

TEST(CatalogTest, DefaultsAreValidValues) {
  for (const SettingDef& def : AllSettings()) {
    if (def.default_value) {
      EXPECT_TRUE(ValidateValue(def, *def.default_value).ok()) << def.name;
    }
    EXPECT_FALSE(def.device_only && def.user_only) << def.name;
  }
}

TEST(CatalogTest, PassportForWorkLeavesFollowTheDdf) {
  const SettingDef* use = FindSetting("PassportForWork/UsePassportForWork");
  ASSERT_NE(use, nullptr);
  EXPECT_EQ(use->default_value, "true");
  EXPECT_FALSE(use->device_only);
  EXPECT_EQ(use->takes_effect, TakesEffect::kNextSignIn);
  EXPECT_EQ(use->group, Group::kHelloFeature);

  const SettingDef* recovery = FindSetting("PassportForWork/EnablePinRecovery");
  ASSERT_NE(recovery, nullptr);
  EXPECT_EQ(recovery->takes_effect, TakesEffect::kAfterReboot);
  EXPECT_FALSE(recovery->device_only);

  const SettingDef* tpm = FindSetting("PassportForWork/RequireSecurityDevice");
  ASSERT_NE(tpm, nullptr);
  EXPECT_EQ(tpm->group, Group::kPinComplexity);
  EXPECT_EQ(tpm->takes_effect, TakesEffect::kNextSignIn);

  for (const char* device_only :
       {"PassportForWork/DisablePostLogonProvisioning",
        "PassportForWork/ExcludeSecurityDevices/TPM12", "PassportForWork/Remote/UseRemotePassport",
        "PassportForWork/UseCertificateForOnPremAuth", "PassportForWork/UseCloudTrustForOnPremAuth",
        "PassportForWork/UseHelloCertificatesAsSmartCardCertificates",
        "PassportForWork/Biometrics/UseBiometrics", "PassportForWork/DynamicLock/DynamicLock",
        "PassportForWork/SecurityKey/UseSecurityKeyForSignin",
        "Authentication/ConfigureWebSignInAllowedUrls"}) {
    const SettingDef* def = FindSetting(device_only);
    ASSERT_NE(def, nullptr) << device_only;
    EXPECT_TRUE(def->device_only) << device_only;
  }

  const SettingDef* key = FindSetting("PassportForWork/SecurityKey/UseSecurityKeyForSignin");
  EXPECT_EQ(key->type, ValueType::kInt);
  EXPECT_EQ(key->default_value, "0");

  // The character classes have no default: "not configured" is not 0.
  const SettingDef* digits = FindSetting("PassportForWork/PINComplexity/Digits");
  ASSERT_NE(digits, nullptr);
  EXPECT_FALSE(digits->default_value.has_value());
  EXPECT_EQ(digits->group, Group::kPinComplexity);
}

TEST(CatalogTest, IntegerRangesNameTheRule) {
  const SettingDef& min = *FindSetting("PassportForWork/PINComplexity/MinimumPINLength");
  Status s = ValidateValue(min, "3");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "MinimumPINLength 3 is outside [4-127]");
  EXPECT_TRUE(ValidateValue(min, "4").ok());
  EXPECT_TRUE(ValidateValue(min, "127").ok());
  EXPECT_FALSE(ValidateValue(min, "128").ok());
  EXPECT_FALSE(ValidateValue(min, "six").ok());
  EXPECT_FALSE(ValidateValue(min, "").ok());
  EXPECT_FALSE(ValidateValue(min, "6x").ok());
  EXPECT_EQ(NormalizeValue(min, " 006").value(), "6");

  const SettingDef& expiration = *FindSetting("PassportForWork/PINComplexity/Expiration");
  EXPECT_TRUE(ValidateValue(expiration, "730").ok());
  EXPECT_FALSE(ValidateValue(expiration, "731").ok());
  EXPECT_FALSE(ValidateValue(expiration, "-1").ok());

  const SettingDef& web = *FindSetting("Authentication/EnableWebSignIn");
  EXPECT_TRUE(ValidateValue(web, "2").ok());
  EXPECT_FALSE(ValidateValue(web, "3").ok());
}

TEST(CatalogTest, BooleansAreCaseInsensitiveAndNormalised) {
  const SettingDef& def = *FindSetting("PassportForWork/EnablePinRecovery");
  EXPECT_EQ(NormalizeValue(def, "True").value(), "true");
  EXPECT_EQ(NormalizeValue(def, "FALSE").value(), "false");
  EXPECT_FALSE(ValidateValue(def, "1").ok());
  EXPECT_FALSE(ValidateValue(def, "yes").ok());
}

TEST(CatalogTest, WebSignInAllowListTakesHostsAndHttpsUrls) {
  const SettingDef& def = *FindSetting("Authentication/ConfigureWebSignInAllowedUrls");
  EXPECT_TRUE(ValidateValue(def, "accounts.contoso.com;signin.contoso.com").ok());
  EXPECT_TRUE(ValidateValue(def, "signin.contoso.com;https://portal.contoso.com/adfs/ls").ok());
  EXPECT_TRUE(ValidateValue(def, "https://login.microsoftonline.us:8443/").ok());
  EXPECT_TRUE(ValidateValue(def, "").ok());  // an empty list
  EXPECT_EQ(NormalizeValue(def, " a.contoso.com ; b.contoso.com;").value(),
            "a.contoso.com;b.contoso.com");

  Status http = ValidateValue(def, "signin.contoso.com;http://portal.contoso.com");
  EXPECT_EQ(http.code(), Code::kInvalidArgument);
  EXPECT_NE(http.message().find("'http://portal.contoso.com'"), std::string::npos)
      << http.message();
  EXPECT_FALSE(ValidateValue(def, "contoso .com").ok());
  EXPECT_FALSE(ValidateValue(def, "-bad.contoso.com").ok());
  EXPECT_FALSE(ValidateValue(def, "https://user@contoso.com/").ok());
  EXPECT_FALSE(ValidateValue(def, "https://contoso.com:0/").ok());
  EXPECT_FALSE(ValidateValue(def, "https://contoso.com:99999").ok());
  EXPECT_FALSE(ValidateValue(def, "https://").ok());
  EXPECT_FALSE(ValidateValue(def, "contoso.com,fabrikam.com").ok());

  const SettingDef& webcam = *FindSetting("Authentication/ConfigureWebcamAccessDomainNames");
  EXPECT_TRUE(ValidateValue(webcam, "contoso.com").ok());
  EXPECT_FALSE(ValidateValue(webcam, "https://contoso.com").ok());
}

TEST(CatalogTest, StringFormats) {
  const SettingDef& tenant = *FindSetting("Authentication/PreferredAadTenantDomainName");
  EXPECT_TRUE(ValidateValue(tenant, "contoso.com").ok());
  EXPECT_FALSE(ValidateValue(tenant, "contoso.com;fabrikam.com").ok());

  const SettingDef& group_a = *FindSetting("PassportForWork/DeviceUnlock/GroupA");
  EXPECT_TRUE(ValidateValue(group_a, "{8A2D0AE6-1C8D-4F52-A14E-5C2B3A1D0E9F}").ok());
  EXPECT_FALSE(ValidateValue(group_a, "8A2D0AE6-1C8D-4F52-A14E-5C2B3A1D0E9F").ok());
  EXPECT_FALSE(ValidateValue(group_a, "{8A2D0AE6-1C8D-4F52-A14E-5C2B3A1D0E9G}").ok());
}

TEST(CatalogTest, TakesEffectNames) {
  EXPECT_EQ(TakesEffectName(TakesEffect::kImmediately), "Immediately");
  EXPECT_EQ(TakesEffectName(TakesEffect::kNextSignIn), "NextSignIn");
  EXPECT_EQ(TakesEffectName(TakesEffect::kAfterReboot), "AfterReboot");
}

}  // namespace
}  // namespace dm::policy
