#include "container/security_key.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/pki.h"
#include "container/key_sealer_test_support.h"
#include "container/security_key_internal.h"
#include "storage/schema.h"

namespace dm::container {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr char kAlice[] = "alice";
constexpr char kRp[] = "login.contoso.com";

SecretBytes Pin(std::string_view s) { return SecretBytes(s); }

Bytes Sha(std::string_view text) {
  auto h = crypto::Sha256(crypto::AsBytes(text));
  EXPECT_TRUE(h.ok());
  return h.value_or(Bytes{});
}

// clientDataHash as a browser would compute it over clientDataJSON.
Bytes ClientDataHash(std::string_view challenge) {
  return Sha(std::string(R"({"type":"webauthn.get","challenge":")") + std::string(challenge) +
             R"(","origin":"https://login.contoso.com"})");
}

Bytes ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& p, std::span<const uint8_t> data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

bool Contains(const Bytes& hay, std::span<const uint8_t> needle) {
  return !needle.empty() &&
         std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

class SecurityKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "seckey-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }

  fs::path DbPath() const { return dir_ / "dmagent.db"; }
  fs::path DeviceKeyPath() const { return dir_ / kSecurityKeyDeviceKeyFile; }

  // Closes and reopens the database, like an agent restart. The simulated key is not re-inserted.
  void Reopen(bool pin_setup_on_preferred_assertion = true,
              std::optional<fs::path> device_key_file = std::nullopt) {
    store_.reset();
    db_.reset();
    auto db = storage::Database::Open(DbPath(), {.migrations = storage::AgentSchema()});
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<SecurityKeyStore>(
        *db_,
        SecurityKeyOptions{.sealer = sealer_in_use_,
                           .clock = &clock_,
                           .random = &random_,
                           .device_key_file = device_key_file.value_or(DeviceKeyPath()),
                           .pin_setup_on_preferred_assertion = pin_setup_on_preferred_assertion});
  }

  std::string NewKey(std::string_view user = kAlice, std::string_view label = "Blue key") {
    auto id = store_->Create(user, label);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.value_or("");
  }

  SecurityKeyInfo Info(const std::string& key, std::string_view user = kAlice) {
    auto info = store_->Get(user, key);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.value_or(SecurityKeyInfo{});
  }

  Result<MakeCredentialResponse> Register(const std::string& key, UserVerification uv,
                                          const SecretBytes* pin = nullptr,
                                          std::string_view rp = kRp,
                                          std::string_view account = "alice@contoso.com") {
    return store_->MakeCredential(
        kAlice, key,
        {.rp_id = std::string(rp),
         .client_data_hash = Sha(std::string("register ") + std::string(account)),
         .user_name = std::string(account),
         .uv = uv,
         .pin = pin});
  }

  Result<AssertionResponse> Assert(const std::string& key, UserVerification uv,
                                   const SecretBytes* pin = nullptr,
                                   const Bytes& client_data_hash = ClientDataHash("c1"),
                                   std::vector<Bytes> allow = {}, std::string_view rp = kRp) {
    return store_->GetAssertion(kAlice, key,
                                {.rp_id = std::string(rp),
                                 .client_data_hash = client_data_hash,
                                 .allow_credentials = std::move(allow),
                                 .uv = uv,
                                 .pin = pin});
  }

  // One PIN check through the platform's usual path (registration with UV required).
  Status TryPin(const std::string& key, std::string_view pin) {
    const SecretBytes p = Pin(pin);
    return Register(key, UserVerification::kRequired, &p).status();
  }

  std::string PublicKeyOf(const std::string& key, const Bytes& credential_id) {
    auto creds = store_->Credentials(kAlice, key);
    EXPECT_TRUE(creds.ok());
    for (const auto& c : creds.value_or(std::vector<CredentialInfo>{})) {
      if (c.credential_id == credential_id) return c.public_key_pem;
    }
    ADD_FAILURE() << "no such credential";
    return "";
  }

  fs::path dir_;
  testing::FixedKeySealer sealer_;
  KeySealer* sealer_in_use_ = &sealer_;  // another one plays another machine's key
  FakeClock clock_;
  crypto::DeterministicRandom random_{20250929};
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<SecurityKeyStore> store_;
};

void ExpectCtap(const Status& s, CtapError want, const char* hex) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(CtapErrorOf(s), want) << s.ToString();
  EXPECT_NE(s.message().find(std::string(CtapErrorName(want)) + " (" + hex + ")"),
            std::string::npos)
      << s.ToString();
}

// ---- clientPIN: length rules ----

TEST(SecurityKeyPinTest, LengthCountsCodePointsNotBytes) {
  EXPECT_TRUE(CheckSecurityKeyPin(Pin("1234")).ok());
  ExpectCtap(CheckSecurityKeyPin(Pin("123")), CtapError::kPinPolicyViolation, "0x37");
  // 3 code points in 6 bytes: too short although it has more than 4 bytes.
  ExpectCtap(CheckSecurityKeyPin(Pin("\xC3\xA9\xC3\xA9\xC3\xA9")), CtapError::kPinPolicyViolation,
             "0x37");
  ExpectCtap(CheckSecurityKeyPin(Pin("\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC")),  // €€€, 9 bytes
             CtapError::kPinPolicyViolation, "0x37");
  EXPECT_TRUE(CheckSecurityKeyPin(Pin("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9")).ok());  // éééé
  EXPECT_TRUE(CheckSecurityKeyPin(Pin("\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80"
                                      "\xF0\x9F\x98\x80"))
                  .ok());  // four emoji, 16 bytes
  EXPECT_EQ(internal::CountUtf8CodePoints("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80").value_or(-1), 4);
  // The key's raised minimum is counted in code points too.
  ExpectCtap(CheckSecurityKeyPin(Pin("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 6),
             CtapError::kPinPolicyViolation, "0x37");
  EXPECT_TRUE(CheckSecurityKeyPin(Pin("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 6).ok());
}

TEST(SecurityKeyPinTest, AtMost63BytesOfWellFormedUtf8) {
  EXPECT_TRUE(CheckSecurityKeyPin(Pin(std::string(63, '7'))).ok());
  ExpectCtap(CheckSecurityKeyPin(Pin(std::string(64, '7'))), CtapError::kPinPolicyViolation,
             "0x37");
  std::string euros21;
  for (int i = 0; i < 21; ++i) euros21 += "\xE2\x82\xAC";
  EXPECT_TRUE(CheckSecurityKeyPin(Pin(euros21)).ok());  // 63 bytes, 21 code points
  const Status too_long = CheckSecurityKeyPin(Pin(euros21 + "\xE2\x82\xAC"));  // 66 bytes
  ExpectCtap(too_long, CtapError::kPinPolicyViolation, "0x37");
  EXPECT_NE(too_long.message().find("66 bytes"), std::string::npos);

  for (std::string_view bad : {
           std::string_view("\xC0\xAF"
                            "1234"),  // overlong '/'
           std::string_view("12\xED\xA0\x80"
                            "34"),            // UTF-16 surrogate
           std::string_view("1234\xE2\x82"),  // truncated
           std::string_view("\xF4\x90\x80\x80"
                            "1234"),  // above U+10FFFF
           std::string_view("\xF5\x80\x80\x80"
                            "1234"),  // invalid lead byte
           std::string_view("12\x80"
                            "345"),  // stray continuation byte
           std::string_view("\xE0\x80\xAF"
                            "1234"),  // overlong 3-byte form
       }) {
    const Status s = CheckSecurityKeyPin(Pin(bad));
    ExpectCtap(s, CtapError::kPinPolicyViolation, "0x37");
    EXPECT_NE(s.message().find("UTF-8"), std::string::npos) << s.ToString();
  }
  ExpectCtap(CheckSecurityKeyPin(Pin(std::string_view("12\0"
                                                      "345",
                                                      6))),
             CtapError::kPinPolicyViolation, "0x37");
}

TEST_F(SecurityKeyTest, SetPinCountsCodePointsOnTheKey) {
  const std::string key = NewKey();
  ExpectCtap(store_->SetPin(kAlice, key, Pin("\xC3\xA9\xC3\xA9\xC3\xA9")),
             CtapError::kPinPolicyViolation, "0x37");
  EXPECT_FALSE(Info(key).pin_set);
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9")).ok());
  EXPECT_TRUE(Info(key).pin_set);
  EXPECT_TRUE(TryPin(key, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9").ok());
}

TEST_F(SecurityKeyTest, SetPinOnlyWithoutPinAndChangePinNeedsTheCurrentOne) {
  const std::string key = NewKey();
  ExpectCtap(store_->ChangePin(kAlice, key, Pin("1234"), Pin("5678")), CtapError::kPinNotSet,
             "0x35");
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("1234")).ok());
  const Status again = store_->SetPin(kAlice, key, Pin("9999"));
  ExpectCtap(again, CtapError::kNotAllowed, "0x30");
  EXPECT_EQ(again.code(), Code::kFailedPrecondition);

  const Status wrong = store_->ChangePin(kAlice, key, Pin("0000"), Pin("5678"));
  ExpectCtap(wrong, CtapError::kPinInvalid, "0x31");
  EXPECT_EQ(wrong.code(), Code::kUnauthenticated);
  EXPECT_EQ(Info(key).pin_retries, 7);
  ASSERT_TRUE(store_->ChangePin(kAlice, key, Pin("1234"), Pin("5678")).ok());
  EXPECT_EQ(Info(key).pin_retries, 8);
  ExpectCtap(TryPin(key, "1234"), CtapError::kPinInvalid, "0x31");
  EXPECT_TRUE(TryPin(key, "5678").ok());
}

TEST_F(SecurityKeyTest, MinPinLengthCanOnlyBeRaised) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetMinPinLength(kAlice, key, 6, false, nullptr).ok());
  EXPECT_EQ(Info(key).min_pin_length, 6);
  const Status lower = store_->SetMinPinLength(kAlice, key, 5, false, nullptr);
  ExpectCtap(lower, CtapError::kPinPolicyViolation, "0x37");
  EXPECT_NE(lower.message().find("only be raised"), std::string::npos);
  ExpectCtap(store_->SetMinPinLength(kAlice, key, 64, false, nullptr),
             CtapError::kPinPolicyViolation, "0x37");
  EXPECT_EQ(Info(key).min_pin_length, 6);

  ExpectCtap(store_->SetPin(kAlice, key, Pin("12345")), CtapError::kPinPolicyViolation, "0x37");
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("123456")).ok());
  // With a PIN set, authenticatorConfig needs it.
  ExpectCtap(store_->SetMinPinLength(kAlice, key, 7, false, nullptr), CtapError::kPuatRequired,
             "0x36");
  const SecretBytes pin = Pin("123456");
  ASSERT_TRUE(store_->SetMinPinLength(kAlice, key, 6, false, &pin).ok());
  EXPECT_FALSE(Info(key).force_pin_change);

  const std::string no_pin = NewKey(kAlice, "Green key");
  ExpectCtap(store_->SetMinPinLength(kAlice, no_pin, 8, true, nullptr), CtapError::kPinNotSet,
             "0x35");
}

// ---- clientPIN: retries and blocking ----

TEST_F(SecurityKeyTest, RetriesCountDownAndACorrectPinRestoresThem) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  EXPECT_EQ(Info(key).pin_retries, 8);
  const Status first = TryPin(key, "1111");
  ExpectCtap(first, CtapError::kPinInvalid, "0x31");
  EXPECT_NE(first.message().find("7 retries left"), std::string::npos);
  ExpectCtap(TryPin(key, "1112"), CtapError::kPinInvalid, "0x31");
  SecurityKeyInfo info = Info(key);
  EXPECT_EQ(info.pin_retries, 6);
  EXPECT_EQ(info.failures_since_power_up, 2);
  EXPECT_EQ(info.blocked, PinBlockState::kNone);
  ASSERT_TRUE(TryPin(key, "2468").ok());
  info = Info(key);
  EXPECT_EQ(info.pin_retries, 8);
  EXPECT_EQ(info.failures_since_power_up, 0);
}

TEST_F(SecurityKeyTest, ThreeWrongPinsInOnePowerUpBlockUntilPowerCycle) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  ExpectCtap(TryPin(key, "1111"), CtapError::kPinInvalid, "0x31");
  ExpectCtap(TryPin(key, "1112"), CtapError::kPinInvalid, "0x31");
  const Status third = TryPin(key, "1113");
  ExpectCtap(third, CtapError::kPinAuthBlocked, "0x34");
  EXPECT_NE(third.message().find("re-insert"), std::string::npos);
  // Even the right PIN is refused now, and it costs no retry.
  ExpectCtap(TryPin(key, "2468"), CtapError::kPinAuthBlocked, "0x34");
  EXPECT_EQ(Info(key).pin_retries, 5);
  EXPECT_EQ(Info(key).blocked, PinBlockState::kPinAuthBlocked);
  // An agent restart is not a power cycle of the key.
  Reopen();
  ExpectCtap(TryPin(key, "2468"), CtapError::kPinAuthBlocked, "0x34");

  ASSERT_TRUE(store_->PowerCycle(kAlice, key).ok());
  EXPECT_EQ(Info(key).blocked, PinBlockState::kNone);
  ASSERT_TRUE(TryPin(key, "2468").ok());
  EXPECT_EQ(Info(key).pin_retries, 8);
}

TEST_F(SecurityKeyTest, NoRetriesLeftBlocksThePinUntilReset) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  ExpectCtap(Register(key, UserVerification::kRequired).status(), CtapError::kPuatRequired, "0x36");
  EXPECT_EQ(Info(key).pin_retries, 8);  // asking for the PIN consumed nothing
  for (int attempt = 1; attempt <= 8; ++attempt) {
    const Status s = TryPin(key, "0000");
    if (attempt == 8) {
      ExpectCtap(s, CtapError::kPinBlocked, "0x32");
    } else if (attempt % 3 == 0) {
      ExpectCtap(s, CtapError::kPinAuthBlocked, "0x34");
      ASSERT_TRUE(store_->PowerCycle(kAlice, key).ok());
    } else {
      ExpectCtap(s, CtapError::kPinInvalid, "0x31");
    }
    EXPECT_EQ(Info(key).pin_retries, 8 - attempt);
  }
  EXPECT_EQ(Info(key).blocked, PinBlockState::kPinBlocked);
  ExpectCtap(TryPin(key, "2468"), CtapError::kPinBlocked, "0x32");
  ASSERT_TRUE(store_->PowerCycle(kAlice, key).ok());
  ExpectCtap(TryPin(key, "2468"), CtapError::kPinBlocked, "0x32");
  ExpectCtap(store_->ChangePin(kAlice, key, Pin("2468"), Pin("1357")), CtapError::kPinBlocked,
             "0x32");

  auto wiped = store_->Reset(kAlice, key, ResetConfirmation::kDestroyAllCredentials);
  ASSERT_TRUE(wiped.ok()) << wiped.status().ToString();
  const SecurityKeyInfo info = Info(key);
  EXPECT_FALSE(info.pin_set);
  EXPECT_EQ(info.pin_retries, 8);
  EXPECT_EQ(info.blocked, PinBlockState::kNone);
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("1357")).ok());
  EXPECT_TRUE(TryPin(key, "1357").ok());
}

TEST_F(SecurityKeyTest, ForcePinChangeRefusesUvUntilThePinIsChanged) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("1234")).ok());
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged).ok());
  const SecretBytes old_pin = Pin("1234");
  // Raising the minimum above the current PIN's length forces a change.
  ASSERT_TRUE(store_->SetMinPinLength(kAlice, key, 6, false, &old_pin).ok());
  EXPECT_TRUE(Info(key).force_pin_change);

  const Status refused = TryPin(key, "1234");
  ExpectCtap(refused, CtapError::kPinPolicyViolation, "0x37");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.message().find("forcePINChange"), std::string::npos);
  EXPECT_EQ(Info(key).pin_retries, 8);  // the PIN itself was right
  ExpectCtap(Assert(key, UserVerification::kRequired, &old_pin).status(),
             CtapError::kPinPolicyViolation, "0x37");
  // No PIN is asked for "discouraged", so it still works.
  EXPECT_TRUE(Assert(key, UserVerification::kDiscouraged).ok());

  // The new PIN is held to the new minimum; the current one only to 4.
  ExpectCtap(store_->ChangePin(kAlice, key, Pin("1234"), Pin("12345")),
             CtapError::kPinPolicyViolation, "0x37");
  ASSERT_TRUE(store_->ChangePin(kAlice, key, Pin("1234"), Pin("123456")).ok());
  EXPECT_FALSE(Info(key).force_pin_change);
  EXPECT_TRUE(TryPin(key, "123456").ok());
}

TEST_F(SecurityKeyTest, ForceChangePinFlagRefusesTheSamePin) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("246810")).ok());
  const SecretBytes pin = Pin("246810");
  ASSERT_TRUE(store_->SetMinPinLength(kAlice, key, 6, true, &pin).ok());
  EXPECT_TRUE(Info(key).force_pin_change);
  EXPECT_EQ(Info(key).min_pin_length, 6);
  ExpectCtap(store_->ChangePin(kAlice, key, Pin("246810"), Pin("246810")),
             CtapError::kPinPolicyViolation, "0x37");
  EXPECT_TRUE(Info(key).force_pin_change);
  ASSERT_TRUE(store_->ChangePin(kAlice, key, Pin("246810"), Pin("135790")).ok());
  EXPECT_FALSE(Info(key).force_pin_change);
  EXPECT_TRUE(TryPin(key, "135790").ok());
}

// ---- authenticatorReset ----

TEST_F(SecurityKeyTest, ResetWipesEverythingButOnlyWithin10sAndWhenConfirmed) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetMinPinLength(kAlice, key, 6, false, nullptr).ok());
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("135790")).ok());
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged, nullptr, kRp, "a@contoso.com").ok());
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged, nullptr, "github.com", "a").ok());
  ExpectCtap(TryPin(key, "000000"), CtapError::kPinInvalid, "0x31");

  clock_.Advance(seconds(11));
  const Status late =
      store_->Reset(kAlice, key, ResetConfirmation::kDestroyAllCredentials).status();
  ExpectCtap(late, CtapError::kNotAllowed, "0x30");
  EXPECT_NE(late.message().find("10 s"), std::string::npos);
  EXPECT_EQ(Info(key).credential_count, 2);

  ASSERT_TRUE(store_->PowerCycle(kAlice, key).ok());
  clock_.Advance(seconds(9));
  ExpectCtap(store_->Reset(kAlice, key, ResetConfirmation::kNotConfirmed).status(),
             CtapError::kOperationDenied, "0x27");
  EXPECT_EQ(Info(key).credential_count, 2);
  EXPECT_TRUE(Info(key).pin_set);

  auto wiped = store_->Reset(kAlice, key, ResetConfirmation::kDestroyAllCredentials);
  ASSERT_TRUE(wiped.ok()) << wiped.status().ToString();
  EXPECT_EQ(*wiped, 2);
  const SecurityKeyInfo info = Info(key);
  EXPECT_FALSE(info.pin_set);
  EXPECT_EQ(info.min_pin_length, 4);  // lowered only by a reset
  EXPECT_EQ(info.pin_retries, 8);
  EXPECT_FALSE(info.force_pin_change);
  EXPECT_EQ(info.credential_count, 0);
  ASSERT_TRUE(info.last_reset_at.has_value());
  EXPECT_EQ(*info.last_reset_at, FromUnixSeconds(ToUnixSeconds(clock_.Now())));
  auto creds = store_->Credentials(kAlice, key);
  ASSERT_TRUE(creds.ok());
  EXPECT_TRUE(creds->empty());
  ExpectCtap(Assert(key, UserVerification::kDiscouraged).status(), CtapError::kNoCredentials,
             "0x2E");
  // The old PIN is gone; a 4-character one is allowed again.
  EXPECT_TRUE(store_->SetPin(kAlice, key, Pin("1234")).ok());
}

// ---- userVerification ----

TEST_F(SecurityKeyTest, UvRequiredNeedsAPin) {
  const std::string key = NewKey();
  auto setup = Register(key, UserVerification::kRequired);
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  EXPECT_EQ(setup->outcome, Outcome::kPinSetupRequired);
  EXPECT_NE(setup->reason.find("required"), std::string::npos);
  EXPECT_EQ(Info(key).credential_count, 0);
  auto get = Assert(key, UserVerification::kRequired);
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->outcome, Outcome::kPinSetupRequired);

  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  ExpectCtap(Register(key, UserVerification::kRequired).status(), CtapError::kPuatRequired, "0x36");
  ExpectCtap(TryPin(key, "1111"), CtapError::kPinInvalid, "0x31");
  const SecretBytes pin = Pin("2468");
  auto made = Register(key, UserVerification::kRequired, &pin);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->outcome, Outcome::kOk);
  EXPECT_TRUE(made->user_verified);
  EXPECT_EQ(made->authenticator_data[32], 0x45);  // UP | UV | AT
  auto assertion = Assert(key, UserVerification::kRequired, &pin);
  ASSERT_TRUE(assertion.ok()) << assertion.status().ToString();
  EXPECT_TRUE(assertion->user_verified);
  EXPECT_EQ(assertion->authenticator_data[32], 0x05);  // UP | UV
}

TEST_F(SecurityKeyTest, UvPreferredWithoutPinAsksForPinSetup) {
  const std::string key = NewKey();
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged).ok());
  auto get = Assert(key, UserVerification::kPreferred);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->outcome, Outcome::kPinSetupRequired);
  EXPECT_NE(get->reason.find("preferred"), std::string::npos);
  EXPECT_TRUE(get->signature.empty());
  auto reg = Register(key, UserVerification::kPreferred);
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->outcome, Outcome::kPinSetupRequired);
  EXPECT_EQ(Info(key).credential_count, 1);

  // The asked-for PIN is created, then the same request succeeds with UV.
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("8642")).ok());
  ExpectCtap(Assert(key, UserVerification::kPreferred).status(), CtapError::kPuatRequired, "0x36");
  const SecretBytes pin = Pin("8642");
  auto with_pin = Assert(key, UserVerification::kPreferred, &pin);
  ASSERT_TRUE(with_pin.ok());
  EXPECT_EQ(with_pin->outcome, Outcome::kOk);
  EXPECT_TRUE(with_pin->user_verified);
  EXPECT_EQ(with_pin->authenticator_data[32], 0x05);
  EXPECT_EQ(with_pin->sign_count, 1u);  // the PinSetupRequired attempt signed nothing
}

TEST_F(SecurityKeyTest, UvPreferredBeforeTheWindowsChangeProceededWithoutUv) {
  Reopen(/*pin_setup_on_preferred_assertion=*/false);
  const std::string key = NewKey();
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged).ok());
  auto get = Assert(key, UserVerification::kPreferred);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->outcome, Outcome::kOk);
  EXPECT_FALSE(get->user_verified);
  EXPECT_EQ(get->authenticator_data[32], 0x01);
  // Registration asked for the PIN setup before the change too.
  auto reg = Register(key, UserVerification::kPreferred);
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->outcome, Outcome::kPinSetupRequired);
}

TEST_F(SecurityKeyTest, UvDiscouragedNeverAsksForThePin) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  auto reg = Register(key, UserVerification::kDiscouraged);
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  EXPECT_EQ(reg->authenticator_data[32], 0x41);  // UP | AT
  const SecretBytes wrong = Pin("0000");
  auto get = Assert(key, UserVerification::kDiscouraged, &wrong);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_FALSE(get->user_verified);
  EXPECT_EQ(get->authenticator_data[32], 0x01);
  EXPECT_EQ(Info(key).pin_retries, 8);  // the PIN was not even looked at
  for (const char* p : {"1111", "1112", "1113"}) (void)TryPin(key, p);
  ASSERT_EQ(Info(key).blocked, PinBlockState::kPinAuthBlocked);
  EXPECT_TRUE(Assert(key, UserVerification::kDiscouraged).ok());
}

// ---- WebAuthn data and signatures ----

TEST_F(SecurityKeyTest, AssertionSignsAuthenticatorDataAndClientDataHash) {
  const std::string key = NewKey();
  auto first = Register(key, UserVerification::kDiscouraged, nullptr, kRp, "first");
  auto second = Register(key, UserVerification::kDiscouraged, nullptr, kRp, "second");
  ASSERT_TRUE(first.ok() && second.ok());
  const Bytes cdh = ClientDataHash("abc");
  auto a1 = Assert(key, UserVerification::kDiscouraged, nullptr, cdh);
  ASSERT_TRUE(a1.ok()) << a1.status().ToString();
  EXPECT_EQ(a1->credential_id, second->credential_id);  // newest first without an allow list
  ASSERT_EQ(a1->authenticator_data.size(), 37u);
  const Bytes rp_hash = Sha(kRp);
  EXPECT_TRUE(std::equal(rp_hash.begin(), rp_hash.end(), a1->authenticator_data.begin()));
  EXPECT_EQ(Bytes(a1->authenticator_data.begin() + 33, a1->authenticator_data.end()),
            (Bytes{0, 0, 0, 1}));
  const std::string pub = PublicKeyOf(key, a1->credential_id);
  EXPECT_TRUE(
      crypto::EcdsaVerify(pub, SignedData(a1->authenticator_data, cdh), a1->signature).ok());
  EXPECT_FALSE(crypto::EcdsaVerify(pub, SignedData(a1->authenticator_data, ClientDataHash("abd")),
                                   a1->signature)
                   .ok());

  auto a2 = Assert(key, UserVerification::kDiscouraged, nullptr, cdh, {first->credential_id});
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a2->credential_id, first->credential_id);
  EXPECT_EQ(a2->sign_count, 1u);
  auto a3 = Assert(key, UserVerification::kDiscouraged, nullptr, cdh, {second->credential_id});
  ASSERT_TRUE(a3.ok());
  EXPECT_EQ(a3->sign_count, 2u);
  EXPECT_EQ(Bytes(a3->authenticator_data.begin() + 33, a3->authenticator_data.end()),
            (Bytes{0, 0, 0, 2}));
  ExpectCtap(Assert(key, UserVerification::kDiscouraged, nullptr, cdh, {Bytes(16, 0xEE)}).status(),
             CtapError::kNoCredentials, "0x2E");
  ExpectCtap(
      Assert(key, UserVerification::kDiscouraged, nullptr, cdh, {}, "other.example").status(),
      CtapError::kNoCredentials, "0x2E");
  ExpectCtap(Assert(key, UserVerification::kDiscouraged, nullptr, Bytes(31, 1)).status(),
             CtapError::kInvalidLength, "0x03");
}

TEST_F(SecurityKeyTest, MakeCredentialReturnsAttestedCredentialData) {
  const std::string key = NewKey();
  auto made = Register(key, UserVerification::kDiscouraged);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const Bytes& ad = made->authenticator_data;
  ASSERT_EQ(ad.size(), 37u + 16 + 2 + 16 + 77);
  EXPECT_EQ(Bytes(ad.begin(), ad.begin() + 32), Sha(kRp));
  EXPECT_EQ(Bytes(ad.begin() + 33, ad.begin() + 37), (Bytes{0, 0, 0, 0}));
  std::string hex = key;
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  EXPECT_EQ(crypto::HexEncode(std::span(ad).subspan(37, 16)), hex);  // AAGUID = key id
  EXPECT_EQ(ad[53], 0);
  EXPECT_EQ(ad[54], 16);
  EXPECT_EQ(Bytes(ad.begin() + 55, ad.begin() + 71), made->credential_id);
  const Bytes cose_head = {0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20};
  EXPECT_EQ(Bytes(ad.begin() + 71, ad.begin() + 81), cose_head);

  // x and y, read from the PEM by OpenSSL independently of the code under test.
  BIO* bio =
      BIO_new_mem_buf(made->public_key_pem.data(), static_cast<int>(made->public_key_pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(pkey, nullptr);
  uint8_t point[65];
  size_t point_len = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                            sizeof point, &point_len),
            1);
  EVP_PKEY_free(pkey);
  ASSERT_EQ(point_len, 65u);
  EXPECT_EQ(Bytes(ad.begin() + 81, ad.begin() + 113), Bytes(point + 1, point + 33));
  EXPECT_EQ(ad[113], 0x22);
  EXPECT_EQ(Bytes(ad.begin() + 116, ad.end()), Bytes(point + 33, point + 65));

  EXPECT_TRUE(crypto::EcdsaVerify(made->public_key_pem,
                                  SignedData(ad, Sha("register alice@contoso.com")),
                                  made->attestation_signature)
                  .ok());
  EXPECT_EQ(PublicKeyOf(key, made->credential_id), made->public_key_pem);
}

TEST_F(SecurityKeyTest, SignatureMadeBeforeAPinChangeVerifiesAfterIt) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  const SecretBytes old_pin = Pin("2468");
  auto made = Register(key, UserVerification::kRequired, &old_pin);
  ASSERT_TRUE(made.ok());
  const Bytes cdh = ClientDataHash("before");
  auto before = Assert(key, UserVerification::kRequired, &old_pin, cdh);
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  ASSERT_TRUE(store_->ChangePin(kAlice, key, Pin("2468"), Pin("97531")).ok());
  Reopen();
  const std::string pub_after = PublicKeyOf(key, made->credential_id);
  EXPECT_EQ(pub_after, made->public_key_pem);
  EXPECT_TRUE(
      crypto::EcdsaVerify(pub_after, SignedData(before->authenticator_data, cdh), before->signature)
          .ok());
  const SecretBytes new_pin = Pin("97531");
  const Bytes cdh2 = ClientDataHash("after");
  auto after = Assert(key, UserVerification::kRequired, &new_pin, cdh2);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->sign_count, before->sign_count + 1);
  EXPECT_TRUE(
      crypto::EcdsaVerify(pub_after, SignedData(after->authenticator_data, cdh2), after->signature)
          .ok());
}

TEST_F(SecurityKeyTest, OpensslCommandLineVerifiesAnAssertion) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "openssl command line tool not installed";
  }
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  const SecretBytes pin = Pin("2468");
  auto made = Register(key, UserVerification::kRequired, &pin);
  ASSERT_TRUE(made.ok());
  const Bytes cdh = ClientDataHash("openssl");
  auto a = Assert(key, UserVerification::kRequired, &pin, cdh);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const std::string pub = PublicKeyOf(key, a->credential_id);
  WriteFile(dir_ / "pub.pem", crypto::AsBytes(pub));
  WriteFile(dir_ / "data.bin", SignedData(a->authenticator_data, cdh));
  WriteFile(dir_ / "sig.der", a->signature);

  const std::string cmd = "cd '" + dir_.string() +
                          "' && openssl dgst -sha256 -verify pub.pem -signature sig.der data.bin"
                          " > out.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  const Bytes out = ReadFile(dir_ / "out.txt");
  const std::string text(out.begin(), out.end());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 0) << text;
  EXPECT_NE(text.find("Verified OK"), std::string::npos) << text;

  // The same command rejects one flipped bit of the signed data.
  Bytes tampered = SignedData(a->authenticator_data, cdh);
  tampered[32] ^= 0x04;  // clear UV
  WriteFile(dir_ / "data.bin", tampered);
  const int bad = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(bad));
  EXPECT_NE(WEXITSTATUS(bad), 0);
}

// ---- secrets at rest ----

struct KeyMaterial {
  std::string pem;
  Bytes der;
  Bytes scalar;
};

KeyMaterial Material(const SecretBytes& private_pem) {
  KeyMaterial m;
  m.pem = std::string(private_pem.view());
  BIO* bio = BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) return m;
  unsigned char* der = nullptr;
  const int len = i2d_PrivateKey(pkey, &der);
  if (len > 0) m.der.assign(der, der + len);
  OPENSSL_free(der);
  BIGNUM* d = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1) {
    m.scalar.resize(32);
    BN_bn2binpad(d, m.scalar.data(), 32);
    BN_clear_free(d);
  }
  EVP_PKEY_free(pkey);
  return m;
}

TEST_F(SecurityKeyTest, DatabaseHoldsNeitherThePinNorAnyPrivateKey) {
  const std::string old_pin = "Zq7#orchid-1729";
  const std::string new_pin = "Vx3!heron-4051";
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin(old_pin)).ok());
  const SecretBytes p1 = Pin(old_pin);
  auto c1 = Register(key, UserVerification::kRequired, &p1, kRp, "one");
  auto c2 = Register(key, UserVerification::kRequired, &p1, "github.com", "two");
  ASSERT_TRUE(c1.ok() && c2.ok());
  ASSERT_TRUE(store_->ChangePin(kAlice, key, Pin(old_pin), Pin(new_pin)).ok());
  ASSERT_TRUE(Assert(key, UserVerification::kDiscouraged).ok());

  std::vector<std::pair<std::string, Bytes>> secrets;
  for (const std::string& pin : {old_pin, new_pin}) {
    secrets.emplace_back("PIN " + pin, Bytes(pin.begin(), pin.end()));
    auto hash = internal::PinHash(Pin(pin));
    ASSERT_TRUE(hash.ok());
    secrets.emplace_back("pinHash of " + pin, Bytes(hash->data(), hash->data() + hash->size()));
  }
  for (const auto* made : {&*c1, &*c2}) {
    auto priv = internal::OpenCredentialPrivateKey(*db_, sealer_, DeviceKeyPath(), kAlice, key,
                                                   made->credential_id);
    ASSERT_TRUE(priv.ok()) << priv.status().ToString();
    // The seam returns the real key: it derives the stored public key.
    auto pub = pki::PublicKeyOf(*priv);
    ASSERT_TRUE(pub.ok());
    ASSERT_EQ(*pub, made->public_key_pem);
    const KeyMaterial m = Material(*priv);
    ASSERT_EQ(m.scalar.size(), 32u);
    ASSERT_FALSE(m.der.empty());
    secrets.emplace_back("private key PEM", Bytes(m.pem.begin(), m.pem.end()));
    const size_t body = m.pem.find('\n') + 1;  // first base64 line of the PEM body
    secrets.emplace_back("private key PEM line",
                         Bytes(m.pem.begin() + body, m.pem.begin() + body + 40));
    secrets.emplace_back("private key DER", m.der);
    secrets.emplace_back("private scalar", m.scalar);
  }
  secrets.emplace_back("device key", ReadFile(DeviceKeyPath()));
  secrets.emplace_back("PEM marker", Bytes{'P', 'R', 'I', 'V', 'A', 'T', 'E', ' ', 'K', 'E', 'Y'});

  auto scan = [&](const char* when) {
    Bytes all;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().filename().string().rfind("dmagent.db", 0) != 0) continue;
      const Bytes b = ReadFile(entry.path());
      all.insert(all.end(), b.begin(), b.end());
    }
    ASSERT_FALSE(all.empty());
    // The scan sees what the store wrote: public data is there.
    EXPECT_TRUE(Contains(all, crypto::AsBytes(c1->public_key_pem.substr(27, 40)))) << when;
    EXPECT_TRUE(Contains(all, crypto::AsBytes(crypto::HexEncode(c2->credential_id)))) << when;
    for (const auto& [what, bytes] : secrets) {
      EXPECT_FALSE(Contains(all, bytes)) << what << " found in the database files " << when;
    }
  };
  scan("while open");
  store_.reset();
  db_.reset();
  scan("after close");
}

TEST_F(SecurityKeyTest, DeviceKeyFileIsPrivateAndBindsTheSecrets) {
  const std::string key = NewKey();
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged).ok());
  struct stat st {};
  ASSERT_EQ(::stat(DeviceKeyPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);

  // Another device key (the file replaced, or the database copied to another machine): the
  // summary still works, the secrets do not open, and a reset is the way out.
  Reopen(true, dir_ / "other.key");
  auto list = store_->List(kAlice);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 1u);
  const Status s = Assert(key, UserVerification::kDiscouraged).status();
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  ASSERT_TRUE(store_->PowerCycle(kAlice, key).ok());
  ASSERT_TRUE(store_->Reset(kAlice, key, ResetConfirmation::kDestroyAllCredentials).ok());
  EXPECT_TRUE(store_->SetPin(kAlice, key, Pin("1234")).ok());

  // A key file other users can read is refused.
  ASSERT_EQ(::chmod((dir_ / "other.key").c_str(), 0640), 0);
  Reopen(true, dir_ / "other.key");
  const Status open = store_->ChangePin(kAlice, key, Pin("1234"), Pin("5678"));
  EXPECT_EQ(open.code(), Code::kFailedPrecondition) << open.ToString();
  EXPECT_NE(open.message().find("0640"), std::string::npos);

  // No key file configured: reports work, nothing secret does.
  store_ = std::make_unique<SecurityKeyStore>(
      *db_, SecurityKeyOptions{.sealer = &sealer_, .clock = &clock_});
  EXPECT_TRUE(store_->List(kAlice).ok());
  EXPECT_EQ(store_->Create(kAlice, "new").status().code(), Code::kFailedPrecondition);
}

TEST_F(SecurityKeyTest, SealedBlobsOnlyOpenInTheirOwnSlot) {
  const std::string key = NewKey();
  auto a = Register(key, UserVerification::kDiscouraged, nullptr, kRp, "a");
  auto b = Register(key, UserVerification::kDiscouraged, nullptr, "github.com", "b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(db_->Run("UPDATE security_key_credential SET sealed_private_key = (SELECT "
                       "sealed_private_key FROM security_key_credential WHERE credential_id = ?) "
                       "WHERE credential_id = ?",
                       std::string_view(crypto::HexEncode(a->credential_id)),
                       std::string_view(crypto::HexEncode(b->credential_id)))
                  .ok());
  EXPECT_EQ(
      Assert(key, UserVerification::kDiscouraged, nullptr, ClientDataHash("x"), {}, "github.com")
          .status()
          .code(),
      Code::kCorruption);
  EXPECT_TRUE(Assert(key, UserVerification::kDiscouraged).ok());

  // A PIN verifier copied from another key would not open either; the MAC over the PIN state,
  // which covers the PIN record, refuses it first.
  const std::string other = NewKey(kAlice, "Other");
  ASSERT_TRUE(store_->SetPin(kAlice, other, Pin("2468")).ok());
  ASSERT_TRUE(db_->Run("UPDATE security_key SET sealed_pin = (SELECT sealed_pin FROM "
                       "security_key WHERE key_id = ?) WHERE key_id = ?",
                       std::string_view(other), std::string_view(key))
                  .ok());
  ExpectCtap(TryPin(key, "2468"), CtapError::kPinBlocked, "0x32");
}

// ---- the help-desk summary ----

TEST_F(SecurityKeyTest, ListSummarisesEachKeyOfAUser) {
  const std::string blue = NewKey(kAlice, "Blue key");
  clock_.Advance(seconds(5));
  const std::string green = NewKey(kAlice, "Green key");
  const std::string bobs = NewKey("bob", "Bob's key");
  ASSERT_TRUE(store_->SetPin(kAlice, blue, Pin("2468")).ok());
  ASSERT_TRUE(Register(blue, UserVerification::kDiscouraged).ok());
  ASSERT_TRUE(Register(blue, UserVerification::kDiscouraged, nullptr, "github.com").ok());
  for (const char* p : {"1111", "1112", "1113"}) (void)TryPin(blue, p);
  ASSERT_TRUE(store_->SetMinPinLength(kAlice, green, 8, false, nullptr).ok());

  auto list = store_->List(kAlice);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  const SecurityKeyInfo& b = (*list)[0];
  EXPECT_EQ(b.key_id, blue);
  EXPECT_EQ(b.user, kAlice);
  EXPECT_EQ(b.label, "Blue key");
  EXPECT_TRUE(b.pin_set);
  EXPECT_EQ(b.pin_retries, 5);
  EXPECT_EQ(b.blocked, PinBlockState::kPinAuthBlocked);
  EXPECT_EQ(PinBlockStateName(b.blocked), "PIN_AUTH_BLOCKED");
  EXPECT_EQ(b.min_pin_length, 4);
  EXPECT_FALSE(b.force_pin_change);
  EXPECT_EQ(b.credential_count, 2);
  EXPECT_TRUE(b.pin_set_at.has_value());
  EXPECT_FALSE(b.last_reset_at.has_value());
  const SecurityKeyInfo& g = (*list)[1];
  EXPECT_EQ(g.key_id, green);
  EXPECT_FALSE(g.pin_set);
  EXPECT_EQ(g.blocked, PinBlockState::kNone);
  EXPECT_EQ(g.min_pin_length, 8);
  EXPECT_EQ(g.credential_count, 0);
  EXPECT_EQ(g.created_at, b.created_at + seconds(5));

  auto all = store_->ListAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[2].key_id, bobs);
  auto nobody = store_->List("carol");
  ASSERT_TRUE(nobody.ok());
  EXPECT_TRUE(nobody->empty());
}

TEST_F(SecurityKeyTest, ResolveKeyForTheCommandLine) {
  const std::string blue = NewKey(kAlice, "Blue key");
  const std::string green = NewKey(kAlice, "Green key");
  const std::string bobs = NewKey("bob", "Bob's key");
  auto only = store_->ResolveKey("bob", std::nullopt);
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(*only, bobs);
  const Status two = store_->ResolveKey(kAlice, std::nullopt).status();
  EXPECT_EQ(two.code(), Code::kInvalidArgument);
  EXPECT_NE(two.message().find(blue), std::string::npos);
  EXPECT_NE(two.message().find("Green key"), std::string::npos);
  std::string upper = green;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(store_->ResolveKey(kAlice, upper).value_or(""), green);
  EXPECT_EQ(store_->ResolveKey(kAlice, std::string_view(blue).substr(0, 8)).value_or(""), blue);
  // Another user's key is not found, whatever the id.
  EXPECT_EQ(store_->ResolveKey(kAlice, bobs).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Get(kAlice, bobs).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ResolveKey("carol", std::nullopt).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ResolveKey(kAlice, "x'; DROP").status().code(), Code::kInvalidArgument);
}

// ---- PIN state bound to the machine (issue #11: an edited counter reads as locked) ----

// An attacker who can write the database (a restored backup, a support bundle edited and put
// back) resets the retry counter: the key must read as blocked, not as fresh.
TEST_F(SecurityKeyTest, EditedRetryCounterReadsAsBlockedNeverAsReset) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  ExpectCtap(TryPin(key, "0000"), CtapError::kPinInvalid, "0x31");
  ExpectCtap(TryPin(key, "1111"), CtapError::kPinInvalid, "0x31");
  ASSERT_EQ(Info(key).pin_retries, 6);
  ASSERT_TRUE(db_->Run("UPDATE security_key SET pin_retries = 8, power_up_failures = 0").ok());

  SecurityKeyInfo info = Info(key);
  EXPECT_FALSE(info.state_verified);
  EXPECT_EQ(info.pin_retries, 0);
  EXPECT_EQ(info.blocked, PinBlockState::kPinBlocked);
  ExpectCtap(TryPin(key, "2468"), CtapError::kPinBlocked, "0x32");
  ExpectCtap(Assert(key, UserVerification::kDiscouraged).status(), CtapError::kPinBlocked, "0x32");
  ExpectCtap(store_->PowerCycle(kAlice, key), CtapError::kPinBlocked, "0x32");
  // Nothing above wrote a MAC for the edited state: it is still blocked after a restart.
  Reopen();
  EXPECT_EQ(Info(key).blocked, PinBlockState::kPinBlocked);

  // A reset (destroying the credentials) is the way out.
  ASSERT_TRUE(store_->Reset(kAlice, key, ResetConfirmation::kDestroyAllCredentials).ok());
  info = Info(key);
  EXPECT_TRUE(info.state_verified);
  EXPECT_EQ(info.blocked, PinBlockState::kNone);
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("1357")).ok());
  EXPECT_TRUE(TryPin(key, "1357").ok());
}

// Clearing sealed_pin would let anyone set a new PIN on the user's key; dropping the MAC would
// pass for a key from before the MAC existed.
TEST_F(SecurityKeyTest, ClearedPinOrDroppedMacReadsAsBlocked) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  ASSERT_TRUE(db_->Run("UPDATE security_key SET sealed_pin = NULL, pin_set_at = NULL").ok());
  ExpectCtap(store_->SetPin(kAlice, key, Pin("9999")), CtapError::kPinBlocked, "0x32");
  EXPECT_EQ(Info(key).blocked, PinBlockState::kPinBlocked);

  const std::string other = NewKey(kAlice, "Green key");
  ASSERT_TRUE(store_->SetPin(kAlice, other, Pin("2468")).ok());
  ASSERT_TRUE(db_->Run("UPDATE security_key SET counter_mac = NULL WHERE key_id = ?",
                       std::string_view(other))
                  .ok());
  ExpectCtap(TryPin(other, "2468"), CtapError::kPinBlocked, "0x32");
  EXPECT_FALSE(Info(other).state_verified);
}

// The database and key file copied to a machine with another machine.key.
TEST_F(SecurityKeyTest, AnotherMachinesSealerBlocksTheKey) {
  const std::string key = NewKey();
  ASSERT_TRUE(Register(key, UserVerification::kDiscouraged).ok());
  testing::FixedKeySealer other_machine(0x33);
  sealer_in_use_ = &other_machine;
  Reopen();
  EXPECT_EQ(Info(key).blocked, PinBlockState::kPinBlocked);
  ExpectCtap(Assert(key, UserVerification::kDiscouraged).status(), CtapError::kPinBlocked, "0x32");
  store_.reset();
  sealer_in_use_ = &sealer_;
}

// A key written before the sealer existed: sealed_secret under the key file only, no MAC. It
// is bound in place on its next load, with its counters as they were.
TEST_F(SecurityKeyTest, KeyFromBeforeTheSealerIsUpgradedInPlace) {
  const std::string key = NewKey();
  ASSERT_TRUE(store_->SetPin(kAlice, key, Pin("2468")).ok());
  ExpectCtap(TryPin(key, "0000"), CtapError::kPinInvalid, "0x31");
  auto read_secret = [&] {
    auto st = db_->Prepare("SELECT sealed_secret, counter_mac IS NULL FROM security_key");
    EXPECT_TRUE(st.ok() && st->Step().value_or(false));
    return std::make_pair(st->Blob(0), st->Int(1) != 0);
  };
  const auto [sealed, no_mac] = read_secret();
  ASSERT_FALSE(no_mac);
  auto inner = sealer_.Open(
      sealed, internal::SecurityKeyAssociatedData(internal::kPurposeSecretSeal, kAlice, key));
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  ASSERT_EQ(inner->size(), 60u);
  {  // the statement must not outlive the connection Reopen() closes
    auto legacy = db_->Prepare("UPDATE security_key SET sealed_secret = ?, counter_mac = NULL");
    ASSERT_TRUE(legacy.ok());
    legacy->BindBlob(1, inner->span());
    ASSERT_TRUE(legacy->Run().ok());
  }
  Reopen();

  EXPECT_TRUE(TryPin(key, "2468").ok());  // loads, upgrades, and the PIN still opens
  const auto [upgraded, still_no_mac] = read_secret();
  EXPECT_FALSE(still_no_mac);
  EXPECT_GT(upgraded.size(), 60u);
  EXPECT_EQ(Info(key).pin_retries, 8);
  // Dropping the MAC of an upgraded row does not make it legacy again.
  ASSERT_TRUE(db_->Run("UPDATE security_key SET counter_mac = NULL").ok());
  EXPECT_EQ(Info(key).blocked, PinBlockState::kPinBlocked);
}

TEST(SecurityKeyErrorsTest, CtapCodeSurvivesContext) {
  const Status s = Status(Code::kUnauthenticated, "CTAP2_ERR_PIN_INVALID (0x31): incorrect PIN");
  EXPECT_EQ(CtapErrorOf(s), CtapError::kPinInvalid);
  EXPECT_EQ(CtapErrorOf(s.WithContext("key set-pin")), CtapError::kPinInvalid);
  EXPECT_EQ(CtapErrorOf(
                Status(Code::kFailedPrecondition, "CTAP2_ERR_PIN_AUTH_BLOCKED (0x34): re-insert")),
            CtapError::kPinAuthBlocked);
  EXPECT_EQ(CtapErrorOf(NotFound("no key")), CtapError::kNone);
  EXPECT_EQ(CtapErrorOf(Status::Ok()), CtapError::kNone);
  EXPECT_EQ(CtapErrorName(CtapError::kPuatRequired), "CTAP2_ERR_PUAT_REQUIRED");
  EXPECT_EQ(static_cast<int>(CtapError::kPinPolicyViolation), 0x37);
  EXPECT_EQ(static_cast<int>(CtapError::kNotAllowed), 0x30);
  EXPECT_EQ(ParseUserVerification("preferred").value_or(UserVerification::kRequired),
            UserVerification::kPreferred);
  EXPECT_FALSE(ParseUserVerification("Preferred").ok());
}

}  // namespace
}  // namespace dm::container
