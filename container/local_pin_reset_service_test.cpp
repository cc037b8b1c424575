#include "container/local_pin_reset_service.h"

#include <gtest/gtest.h>

namespace dm::container {
namespace {

SecretBytes TotpSecret() { return SecretBytes(std::string_view("0123456789abcdefghij")); }

class LocalPinResetServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = LocalPinResetService::Create(
        {.clock = &clock_, .kdf = crypto::ScryptParams::ForTests(), .rsa_bits = 2048});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(*s);
    ASSERT_TRUE(
        service_->AddUser("alice", SecretBytes(std::string_view("correct horse")), TotpSecret())
            .ok());
    service_->SetConsent(kPinResetServiceAppId, true);
    service_->SetConsent(kPinResetClientAppId, true);
  }

  ResetCredentials Creds(std::string_view password, std::string code = "") {
    if (code.empty()) {
      auto c = crypto::Totp(TotpSecret(), clock_.Now());
      EXPECT_TRUE(c.ok());
      code = *c;
    }
    return {SecretBytes(password), code};
  }

  // As the device encrypts a user's protector: labelled with the user.
  Result<Bytes> Encrypt(const SecretBytes& protector, std::string_view user = "alice") {
    DM_ASSIGN_OR_RETURN(std::string pub, service_->PublicKeyPem());
    return crypto::RsaOaepEncrypt(pub, protector.span(), PinResetProtectorLabel(user));
  }

  FakeClock clock_;
  std::unique_ptr<LocalPinResetService> service_;
};

TEST_F(LocalPinResetServiceTest, ReleasesTheProtectorToTheRightUser) {
  auto protector = crypto::OsRandom().Secret(32);
  ASSERT_TRUE(protector.ok());
  auto enc = Encrypt(*protector);
  ASSERT_TRUE(enc.ok());
  auto out = service_->RecoverProtector("alice", *enc, Creds("correct horse"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(*out == *protector);
}

TEST_F(LocalPinResetServiceTest, WrongPasswordWrongCodeAndUnknownUserAreRefused) {
  EXPECT_EQ(service_->Authenticate("alice", Creds("wrong horse")).code(), Code::kUnauthenticated);
  auto good = crypto::Totp(TotpSecret(), clock_.Now());
  ASSERT_TRUE(good.ok());
  std::string bad = *good;
  bad[0] = bad[0] == '9' ? '0' : static_cast<char>(bad[0] + 1);
  EXPECT_EQ(service_->Authenticate("alice", Creds("correct horse", bad)).code(),
            Code::kUnauthenticated);
  EXPECT_EQ(service_->Authenticate("alice", Creds("correct horse", "")).code(), Code::kOk);
  EXPECT_EQ(service_->Authenticate("mallory", Creds("correct horse")).code(),
            Code::kUnauthenticated);
}

TEST_F(LocalPinResetServiceTest, TotpCodeIsSingleUseAndTimeBound) {
  ResetCredentials c = Creds("correct horse");
  EXPECT_TRUE(service_->Authenticate("alice", c).ok());
  EXPECT_EQ(service_->Authenticate("alice", c).code(), Code::kUnauthenticated);  // replay
  // A code from two steps ago is outside the window.
  auto old = crypto::Totp(TotpSecret(), clock_.Now() - std::chrono::seconds(90));
  ASSERT_TRUE(old.ok());
  clock_.Advance(std::chrono::seconds(30));
  EXPECT_EQ(service_->Authenticate("alice", Creds("correct horse", *old)).code(),
            Code::kUnauthenticated);
  EXPECT_TRUE(service_->Authenticate("alice", Creds("correct horse")).ok());
}

TEST_F(LocalPinResetServiceTest, RepeatedFailuresLockTheUserOut) {
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(service_->Authenticate("alice", Creds("guess")).code(), Code::kUnauthenticated);
  }
  // Locked: even the right password and code are refused until the lockout ends.
  Status s = service_->Authenticate("alice", Creds("correct horse"));
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("too many failed sign-ins"), std::string::npos);
  clock_.Advance(std::chrono::minutes(15));
  EXPECT_TRUE(service_->Authenticate("alice", Creds("correct horse")).ok());
}

TEST_F(LocalPinResetServiceTest, MissingConsentNamesTheApp) {
  service_->SetConsent(kPinResetServiceAppId, false);
  Status s = service_->Authenticate("alice", Creds("correct horse"));
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("AADSTS650052"), std::string::npos);
  EXPECT_NE(s.message().find("Microsoft Pin Reset Service Production"), std::string::npos);
  EXPECT_NE(s.message().find("b8456c59-1230-44c7-a4a2-99b085333e84"), std::string::npos);
  EXPECT_EQ(s.message().find("9115dd05"), std::string::npos);

  service_->SetConsent(kPinResetServiceAppId, true);
  service_->SetConsent(kPinResetClientAppId, false);
  s = service_->Authenticate("alice", Creds("correct horse"));
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("Microsoft Pin Reset Client Production"), std::string::npos);
  EXPECT_NE(s.message().find("9115dd05-fad5-4f9c-acc7-305d08b1b04e"), std::string::npos);
  EXPECT_EQ(s.message().find("b8456c59"), std::string::npos);

  auto protector = crypto::OsRandom().Secret(32);
  ASSERT_TRUE(protector.ok());
  auto enc = Encrypt(*protector);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(service_->RecoverProtector("alice", *enc, Creds("correct horse")).status().code(),
            Code::kPermissionDenied);
}

// Alice's credentials must not release Bob's protector (the label binds it to Bob).
TEST_F(LocalPinResetServiceTest, AnotherUsersProtectorIsRefused) {
  auto protector = crypto::OsRandom().Secret(32);
  ASSERT_TRUE(protector.ok());
  auto bobs = Encrypt(*protector, "bob");
  ASSERT_TRUE(bobs.ok());
  EXPECT_EQ(service_->RecoverProtector("alice", *bobs, Creds("correct horse")).status().code(),
            Code::kInvalidArgument);
  auto alices = Encrypt(*protector, "ALICE");  // UPNs compare case-insensitively
  ASSERT_TRUE(alices.ok());
  clock_.Advance(std::chrono::seconds(30));  // a one-time code is accepted once
  EXPECT_TRUE(service_->RecoverProtector("alice", *alices, Creds("correct horse")).ok());
}

TEST_F(LocalPinResetServiceTest, ForeignCiphertextIsRefused) {
  auto other = crypto::GenerateRsaPrivateKey(2048);
  ASSERT_TRUE(other.ok());
  auto pub = crypto::PublicKeyPem(*other);
  ASSERT_TRUE(pub.ok());
  auto enc = crypto::RsaOaepEncrypt(*pub, Bytes(32, 1));
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(service_->RecoverProtector("alice", *enc, Creds("correct horse")).status().code(),
            Code::kInvalidArgument);
}

TEST_F(LocalPinResetServiceTest, ReloadsFromItsPrivateKeyAndDefaultsTo3072Bits) {
  auto reloaded =
      LocalPinResetService::FromPrivateKey(service_->private_key_pem().Clone(), {.clock = &clock_});
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ(*(*reloaded)->PublicKeyPem(), *service_->PublicKeyPem());

  auto strong = LocalPinResetService::Create({.clock = &clock_});
  ASSERT_TRUE(strong.ok());
  auto enc = crypto::RsaOaepEncrypt(*(*strong)->PublicKeyPem(), Bytes(32, 1));
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->size(), 384u);  // 3072-bit modulus
}

}  // namespace
}  // namespace dm::container
