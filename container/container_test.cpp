#include "container/container.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "container/container_internal.h"
#include "container/key_sealer_test_support.h"
#include "container/local_pin_reset_service.h"
#include "storage/schema.h"

namespace dm::container {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// "{XXXXXXXX-XXXX-4XXX-[89AB]XXX-XXXXXXXXXXXX}", upper-case hex, as dsregcmd prints NgcKeyId.
bool IsBracedUuidV4(const std::string& s) {
  if (s.size() != 38 || s.front() != '{' || s.back() != '}') return false;
  for (size_t i = 1; i < 37; ++i) {
    const char c = s[i];
    if (i == 9 || i == 14 || i == 19 || i == 24) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return s[15] == '4' && (s[20] == '8' || s[20] == '9' || s[20] == 'A' || s[20] == 'B');
}

SecretBytes Pin(std::string_view s) { return SecretBytes(s); }
SecretBytes TotpSecret() { return SecretBytes(std::string_view("totp-secret-for-tests-0001")); }
constexpr char kPassword[] = "Corr3ct-Horse-Battery";

// The ciphertext columns of a container row, read directly for independent checks.
struct RawRow {
  std::string ngc_key_id;
  Bytes sealed_private_key;
  std::optional<Bytes> encrypted_protector;
  std::optional<Bytes> protector_wrapped_master;
  Bytes pin_wrapped_master;
};

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "container-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
    auto s = LocalPinResetService::Create(
        {.clock = &clock_, .kdf = crypto::ScryptParams::ForTests(), .rsa_bits = 2048});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(*s);
    ASSERT_TRUE(service_->AddUser("alice", Pin(kPassword), TotpSecret()).ok());
    service_->SetConsent(kPinResetServiceAppId, true);
    service_->SetConsent(kPinResetClientAppId, true);
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }

  // Closes and reopens the database file, like an agent restart.
  void Reopen(CertificateIssuer* issuer = nullptr) {
    store_.reset();
    db_.reset();
    auto db = storage::Database::Open(dir_ / "dmagent.db", {.migrations = storage::AgentSchema()});
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<ContainerStore>(
        *db_, sealer_,
        StoreOptions{.clock = &clock_, .kdf = crypto::ScryptParams::ForTests(), .issuer = issuer});
  }

  ResetCredentials Creds(std::string_view password = kPassword) {
    auto code = crypto::Totp(TotpSecret(), clock_.Now());
    EXPECT_TRUE(code.ok());
    // Each test step gets a fresh TOTP window: a code is accepted only once.
    clock_.Advance(seconds(30));
    return {SecretBytes(password), *code};
  }

  void EnableRecovery(std::string_view user, PinComplexity complexity = {}) {
    auto key = service_->PublicKeyPem();
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE(store_->SetPinResetServiceKey(*key).ok());
    auto changed =
        store_->ApplyPolicy(user, {.pin_recovery_enabled = true, .complexity = complexity});
    ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  }

  ContainerInfo MustInfo(std::string_view user) {
    auto info = store_->Info(user);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : ContainerInfo{};
  }

  // Runs `sql` on the database file through a second, plain SQLite connection: what anyone who
  // can write the file can do, bypassing the store.
  void EditFile(const std::string& sql) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open_v2((dir_ / "dmagent.db").c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr),
              SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
    sqlite3_free(err);
    sqlite3_close(raw);
  }

  // What an attacker holding only the database computes to test a PIN guess: scrypt(PIN, salt)
  // and the AES-GCM tag of the stored PIN wrap. True when the guess is confirmed.
  bool OfflineGuessOpens(std::string_view user, std::string_view pin) {
    auto st = db_->Prepare(
        "SELECT pin_salt, pin_kdf_n, pin_kdf_r, pin_kdf_p, pin_wrapped_master, ngc_key_id FROM "
        "container WHERE user = ?");
    EXPECT_TRUE(st.ok());
    st->Bind(1, user);
    auto has = st->Step();
    EXPECT_TRUE(has.ok() && *has);
    const crypto::ScryptParams kdf{static_cast<uint64_t>(st->Int(1)),
                                   static_cast<uint32_t>(st->Int(2)),
                                   static_cast<uint32_t>(st->Int(3))};
    auto kek = crypto::Scrypt(Pin(pin), st->Blob(0), kdf);
    EXPECT_TRUE(kek.ok());
    return crypto::Open(*kek, st->Blob(4),
                        internal::AssociatedData(internal::kPurposePinWrap, user, st->Text(5)))
        .ok();
  }

  RawRow Raw(std::string_view user) {
    auto st = db_->Prepare(
        "SELECT ngc_key_id, sealed_private_key, encrypted_protector, protector_wrapped_master, "
        "pin_wrapped_master FROM container WHERE user = ?");
    EXPECT_TRUE(st.ok());
    st->Bind(1, user);
    auto has = st->Step();
    EXPECT_TRUE(has.ok() && *has);
    RawRow r;
    r.ngc_key_id = st->Text(0);
    r.sealed_private_key = st->Blob(1);
    if (!st->IsNull(2)) r.encrypted_protector = st->Blob(2);
    if (!st->IsNull(3)) r.protector_wrapped_master = st->Blob(3);
    r.pin_wrapped_master = st->Blob(4);
    return r;
  }

  // Opens the container with a protector, independently of the store: protector -> master key
  // -> private key PEM.
  Result<SecretBytes> MasterFromProtector(std::string_view user, const SecretBytes& protector) {
    RawRow r = Raw(user);
    if (!r.protector_wrapped_master) return NotFound("no protector wrap");
    return crypto::Open(
        protector, *r.protector_wrapped_master,
        internal::AssociatedData(internal::kPurposeProtectorWrap, user, r.ngc_key_id));
  }
  Result<SecretBytes> PrivateKeyFromMaster(std::string_view user, const SecretBytes& master) {
    RawRow r = Raw(user);
    return crypto::Open(master, r.sealed_private_key,
                        internal::AssociatedData(internal::kPurposePrivateKey, user, r.ngc_key_id));
  }

  // Signs with the Hello key through the store and verifies with the certificate's key.
  void ExpectSignsWith(std::string_view user, std::string_view pin) {
    auto sig = store_->Sign(user, Pin(pin), crypto::AsBytes("challenge"));
    ASSERT_TRUE(sig.ok()) << sig.status().ToString();
    auto cert = pki::ParseCertificate(MustInfo(user).certificate_pem);
    ASSERT_TRUE(cert.ok());
    EXPECT_TRUE(crypto::EcdsaVerify(cert->public_key_pem, crypto::AsBytes("challenge"), *sig).ok());
  }

  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<storage::Database> db_;
  testing::FixedKeySealer sealer_;
  std::unique_ptr<ContainerStore> store_;
  std::unique_ptr<LocalPinResetService> service_;
};

// ---- provisioning ----

TEST_F(ContainerTest, ProvisionWithDeviceCaIssuesAVerifiableCertificate) {
  auto ca = pki::CreateCa("Contoso Hello CA", clock_.Now() - hours(1), hours(24 * 3650));
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  const std::string ca_pem = ca->cert_pem;
  LocalCaIssuer issuer(std::move(*ca), hours(24 * 90));
  Reopen(&issuer);

  auto info = store_->Provision("alice", Pin("482913"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->exists);
  EXPECT_TRUE(info->ngc_set);
  EXPECT_TRUE(IsBracedUuidV4(info->ngc_key_id)) << info->ngc_key_id;
  EXPECT_FALSE(info->self_signed);
  EXPECT_EQ(info->issuer_cn, "Contoso Hello CA");
  auto cert = pki::ParseCertificate(info->certificate_pem);
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(cert->subject_cn, "alice");
  EXPECT_EQ(info->thumbprint, cert->thumbprint);
  EXPECT_EQ(info->public_key_pem, cert->public_key_pem);
  EXPECT_EQ(info->not_before, cert->not_before);
  EXPECT_EQ(info->not_after, cert->not_after);
  EXPECT_EQ(info->created_at, clock_.Now());
  EXPECT_EQ(info->pin_set_at, clock_.Now());
  EXPECT_TRUE(pki::VerifyCertificate(info->certificate_pem, ca_pem, clock_.Now()).ok());
  EXPECT_FALSE(info->protector_present);
  EXPECT_EQ(info->can_reset, CanReset::kDestructiveOnly);
  EXPECT_EQ(info->retries_left, 5);
  ExpectSignsWith("alice", "482913");
}

TEST_F(ContainerTest, ProvisionWithoutCaSelfSigns) {
  auto info = store_->Provision("bob", Pin("7319"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->self_signed);
  EXPECT_EQ(info->issuer_cn, "bob");
  EXPECT_EQ(info->not_after - info->not_before, hours(24 * 365));
  ExpectSignsWith("bob", "7319");
}

TEST_F(ContainerTest, ProvisionRefusals) {
  ASSERT_TRUE(store_->Provision("alice", Pin("4829")).ok());
  EXPECT_EQ(store_->Provision("alice", Pin("4829")).status().code(), Code::kAlreadyExists);

  auto weak = store_->Provision("carol", Pin("48a9"));
  EXPECT_EQ(weak.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(weak.status().message(), "PIN must not contain lowercase letters");

  ASSERT_TRUE(store_->ApplyPolicy("dave", {.hello_enabled = false}).ok());
  auto off = store_->Provision("dave", Pin("4829"));
  EXPECT_EQ(off.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(off.status().message().find("UsePassportForWork=false"), std::string::npos);

  ASSERT_TRUE(store_->ApplyPolicy("erin", {.require_security_device = true}).ok());
  auto tpm = store_->Provision("erin", Pin("4829"));
  EXPECT_EQ(tpm.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(tpm.status().message().find("RequireSecurityDevice"), std::string::npos);

  EXPECT_EQ(store_->Provision("", Pin("4829")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Unlock("nobody", Pin("4829")).status().code(), Code::kNotFound);
  auto none = store_->Info("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->exists);
}

// ---- PIN retry counter and lockout ----

TEST_F(ContainerTest, WrongPinsLockOutAndTheLockSurvivesARestart) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  for (int i = 1; i <= 4; ++i) {
    auto r = store_->Unlock("alice", Pin("1111"));
    ASSERT_EQ(r.status().code(), Code::kUnauthenticated);
    EXPECT_NE(
        r.status().message().find(std::to_string(5 - i) + (i == 4 ? " attempt" : " attempts")),
        std::string::npos)
        << r.status().message();
  }
  EXPECT_EQ(MustInfo("alice").retries_left, 1);
  auto fifth = store_->Unlock("alice", Pin("1111"));
  EXPECT_EQ(fifth.status().code(), Code::kUnauthenticated);
  EXPECT_NE(fifth.status().message().find("locked for 1 min"), std::string::npos);

  // The right PIN does not help while locked, and a restart does not unlock.
  EXPECT_EQ(store_->Unlock("alice", Pin("2468")).status().code(), Code::kFailedPrecondition);
  Reopen();
  ContainerInfo info = MustInfo("alice");
  EXPECT_TRUE(info.locked_out);
  EXPECT_EQ(info.retries_left, 0);
  EXPECT_EQ(info.failed_attempts, 5);
  ASSERT_TRUE(info.locked_until.has_value());
  EXPECT_EQ(*info.locked_until, clock_.Now() + minutes(1));
  EXPECT_EQ(store_->Unlock("alice", Pin("2468")).status().code(), Code::kFailedPrecondition);

  // After the lock, one more wrong PIN locks again for twice as long.
  clock_.Advance(seconds(61));
  auto again = store_->Unlock("alice", Pin("1111"));
  EXPECT_NE(again.status().message().find("locked for 2 min"), std::string::npos)
      << again.status().message();
  clock_.Advance(minutes(2) + seconds(1));
  auto third = store_->Unlock("alice", Pin("1111"));
  EXPECT_NE(third.status().message().find("locked for 4 min"), std::string::npos);
  clock_.Advance(minutes(4) + seconds(1));

  // The right PIN clears everything.
  ASSERT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
  info = MustInfo("alice");
  EXPECT_FALSE(info.locked_out);
  EXPECT_EQ(info.failed_attempts, 0);
  EXPECT_EQ(info.retries_left, 5);
  auto fresh = store_->Unlock("alice", Pin("1111"));
  EXPECT_NE(fresh.status().message().find("4 attempts left"), std::string::npos);
}

TEST_F(ContainerTest, CorrectPinResetsTheCounter) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(store_->Unlock("alice", Pin("1357")).ok());
  ASSERT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(store_->Unlock("alice", Pin("1357")).ok());
  EXPECT_FALSE(MustInfo("alice").locked_out);
  EXPECT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
}

// ---- complexity, history, expiration ----

TEST_F(ContainerTest, ChangePinEnforcesAppliedComplexity) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  ASSERT_TRUE(
      store_
          ->ApplyPolicy("alice",
                        {.complexity = {.minimum_length = 6, .uppercase = 1, .lowercase = 0}})
          .ok());
  // The old PIN still unlocks, but must be changed.
  auto u = store_->Unlock("alice", Pin("2468"));
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->must_change_pin);
  EXPECT_NE(u->reason.find("at least 6 characters"), std::string::npos) << u->reason;

  Status s = store_->ChangePin("alice", Pin("2468"), Pin("246813"));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "PIN must contain at least one uppercase letter");
  s = store_->ChangePin("alice", Pin("2468"), Pin("24681X#"));
  EXPECT_EQ(s.message(), "PIN must not contain special characters");
  ASSERT_TRUE(store_->ChangePin("alice", Pin("2468"), Pin("24681Xa")).ok());
  auto after = store_->Unlock("alice", Pin("24681Xa"));
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->must_change_pin);
  EXPECT_EQ(store_->Unlock("alice", Pin("2468")).status().code(), Code::kUnauthenticated);
  ExpectSignsWith("alice", "24681Xa");
}

TEST_F(ContainerTest, ChangePinNeedsTheOldPinAndCountsFailures) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  EXPECT_EQ(store_->ChangePin("alice", Pin("9999"), Pin("1357")).code(), Code::kUnauthenticated);
  EXPECT_EQ(MustInfo("alice").failed_attempts, 1);
  EXPECT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
}

TEST_F(ContainerTest, HistoryRefusesRecentPinsIncludingTheCurrentOne) {
  ASSERT_TRUE(store_->ApplyPolicy("alice", {.complexity = {.history = 3}}).ok());
  ASSERT_TRUE(store_->Provision("alice", Pin("1111")).ok());
  Status same = store_->ChangePin("alice", Pin("1111"), Pin("1111"));
  EXPECT_EQ(same.code(), Code::kInvalidArgument);
  EXPECT_NE(same.message().find("last 3 PINs"), std::string::npos) << same.message();
  ASSERT_TRUE(store_->ChangePin("alice", Pin("1111"), Pin("2222")).ok());
  ASSERT_TRUE(store_->ChangePin("alice", Pin("2222"), Pin("3333")).ok());
  // History 3 = {1111, 2222, 3333}.
  EXPECT_EQ(store_->ChangePin("alice", Pin("3333"), Pin("1111")).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->ChangePin("alice", Pin("3333"), Pin("2222")).code(), Code::kInvalidArgument);
  ASSERT_TRUE(store_->ChangePin("alice", Pin("3333"), Pin("4444")).ok());
  // 1111 has dropped out of the last three.
  EXPECT_TRUE(store_->ChangePin("alice", Pin("4444"), Pin("1111")).ok());
}

TEST_F(ContainerTest, HistoryTurnedOnLaterCountsTheCurrentPin) {
  ASSERT_TRUE(store_->Provision("alice", Pin("1111")).ok());
  ASSERT_TRUE(store_->ChangePin("alice", Pin("1111"), Pin("1111")).ok());  // no history: fine
  ASSERT_TRUE(store_->ApplyPolicy("alice", {.complexity = {.history = 2}}).ok());
  EXPECT_EQ(store_->ChangePin("alice", Pin("1111"), Pin("1111")).code(), Code::kInvalidArgument);
  ASSERT_TRUE(store_->ChangePin("alice", Pin("1111"), Pin("2222")).ok());
  EXPECT_EQ(store_->ChangePin("alice", Pin("2222"), Pin("1111")).code(), Code::kInvalidArgument);
}

TEST_F(ContainerTest, ExpiredPinUnlocksButMustBeChanged) {
  ASSERT_TRUE(store_->ApplyPolicy("alice", {.complexity = {.expiration_days = 30}}).ok());
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  ContainerInfo info = MustInfo("alice");
  ASSERT_TRUE(info.pin_expires_at.has_value());
  EXPECT_EQ(*info.pin_expires_at, clock_.Now() + hours(24 * 30));
  clock_.Advance(hours(24 * 30) - seconds(1));
  auto u = store_->Unlock("alice", Pin("2468"));
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->must_change_pin);
  clock_.Advance(seconds(1));
  u = store_->Unlock("alice", Pin("2468"));
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->must_change_pin);
  EXPECT_NE(u->reason.find("PIN expired"), std::string::npos);
  EXPECT_TRUE(MustInfo("alice").pin_expired);
  ASSERT_TRUE(store_->ChangePin("alice", Pin("2468"), Pin("1357")).ok());
  EXPECT_FALSE(MustInfo("alice").pin_expired);
  u = store_->Unlock("alice", Pin("1357"));
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->must_change_pin);
}

// ---- the PIN reset protector ----

TEST_F(ContainerTest, ProtectorAppearsOnlyAfterRecoveryIsOnAndThePinIsUsed) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  EXPECT_FALSE(MustInfo("alice").protector_present);

  // Recovery on, but no service key yet: no protector even after an unlock.
  ASSERT_TRUE(store_->ApplyPolicy("alice", {.pin_recovery_enabled = true}).ok());
  ASSERT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
  ContainerInfo info = MustInfo("alice");
  EXPECT_FALSE(info.protector_present);
  EXPECT_EQ(info.can_reset, CanReset::kDestructiveOnly);
  EXPECT_NE(info.can_reset_reason.find("key is unknown"), std::string::npos);

  // Key known: still nothing until the master key is available (an unlock).
  auto key = service_->PublicKeyPem();
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(store_->SetPinResetServiceKey(*key).ok());
  info = MustInfo("alice");
  EXPECT_FALSE(info.protector_present);
  EXPECT_NE(info.can_reset_reason.find("next PIN unlock"), std::string::npos);
  EXPECT_FALSE(Raw("alice").encrypted_protector.has_value());

  // A wrong PIN does not create it; the right one does.
  ASSERT_FALSE(store_->Unlock("alice", Pin("1111")).ok());
  EXPECT_FALSE(MustInfo("alice").protector_present);
  ASSERT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
  info = MustInfo("alice");
  EXPECT_TRUE(info.protector_present);
  EXPECT_EQ(info.can_reset, CanReset::kDestructiveAndNonDestructive);
  EXPECT_EQ(CanResetName(info.can_reset), "DestructiveAndNonDestructive");

  // A second unlock keeps the same protector.
  Bytes first = *Raw("alice").encrypted_protector;
  ASSERT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
  EXPECT_EQ(*Raw("alice").encrypted_protector, first);

  // Recovery off removes it again; the keys stay.
  const std::string thumb = info.thumbprint;
  auto changed = store_->ApplyPolicy("alice", {.pin_recovery_enabled = false});
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  info = MustInfo("alice");
  EXPECT_FALSE(info.protector_present);
  EXPECT_FALSE(Raw("alice").protector_wrapped_master.has_value());
  EXPECT_EQ(info.thumbprint, thumb);
  EXPECT_EQ(info.can_reset, CanReset::kDestructiveOnly);
}

TEST_F(ContainerTest, ProtectorIsCreatedAtProvisioningWhenRecoveryIsAlreadyOn) {
  EnableRecovery("alice");
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  EXPECT_TRUE(MustInfo("alice").protector_present);
}

TEST_F(ContainerTest, ProtectorFollowsAChangedServiceKey) {
  EnableRecovery("alice");
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  Bytes old_protector = *Raw("alice").encrypted_protector;
  auto other = LocalPinResetService::Create(
      {.clock = &clock_, .kdf = crypto::ScryptParams::ForTests(), .rsa_bits = 2048});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(store_->SetPinResetServiceKey(*(*other)->PublicKeyPem()).ok());
  ASSERT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
  Bytes new_protector = *Raw("alice").encrypted_protector;
  EXPECT_NE(new_protector, old_protector);
  EXPECT_TRUE(crypto::RsaOaepDecrypt((*other)->private_key_pem(), new_protector,
                                     PinResetProtectorLabel("alice"))
                  .ok());
  EXPECT_FALSE(crypto::RsaOaepDecrypt(service_->private_key_pem(), new_protector,
                                      PinResetProtectorLabel("alice"))
                   .ok());
  EXPECT_EQ(store_->SetPinResetServiceKey("-----BEGIN PUBLIC KEY-----\nxx\n").code(),
            Code::kInvalidArgument);
}

// The stored protector is plain RSA-OAEP(SHA-256, MGF1-SHA-256) to the service key: the openssl
// CLI decrypts it, and the 32 bytes it yields open the container without the store's help.
TEST_F(ContainerTest, ProtectorDecryptsWithOpensslAndUnwrapsTheContainer) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
  EnableRecovery("alice");
  auto info = store_->Provision("alice", Pin("2468"));
  ASSERT_TRUE(info.ok());
  RawRow raw = Raw("alice");
  ASSERT_TRUE(raw.encrypted_protector.has_value());
  EXPECT_EQ(raw.encrypted_protector->size(), 256u);

  const fs::path key_file = dir_ / "service-key.pem";  // test only: the service's private key
  const fs::path ct_file = dir_ / "protector.bin";
  std::ofstream(key_file) << service_->private_key_pem().view();
  std::ofstream(ct_file, std::ios::binary)
      .write(reinterpret_cast<const char*>(raw.encrypted_protector->data()),
             static_cast<std::streamsize>(raw.encrypted_protector->size()));
  const std::string cmd = "openssl pkeyutl -decrypt -inkey " + key_file.string() + " -in " +
                          ct_file.string() +
                          " -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256"
                          " -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_oaep_label:" +
                          crypto::HexEncode(crypto::AsBytes(PinResetProtectorLabel("alice")));
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0);
  fs::remove(key_file);
  ASSERT_EQ(out.size(), 32u);

  SecretBytes protector(out);
  auto master = MasterFromProtector("alice", protector);
  ASSERT_TRUE(master.ok()) << master.status().ToString();
  EXPECT_EQ(master->size(), 32u);
  auto priv = PrivateKeyFromMaster("alice", *master);
  ASSERT_TRUE(priv.ok()) << priv.status().ToString();
  auto pub = crypto::PublicKeyPem(*priv);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, info->public_key_pem);
  // And a wrong protector does not.
  SecretBytes wrong = protector.Clone();
  wrong.data()[0] ^= 1;
  EXPECT_FALSE(MasterFromProtector("alice", wrong).ok());
}

// ---- resets ----

TEST_F(ContainerTest, NonDestructiveResetKeepsKeysAndRotatesTheProtector) {
  EnableRecovery("alice", {.history = 5});
  auto before = store_->Provision("alice", Pin("2468"));
  ASSERT_TRUE(before.ok());
  const RawRow raw_before = Raw("alice");
  auto old_protector =
      crypto::RsaOaepDecrypt(service_->private_key_pem(), *raw_before.encrypted_protector,
                             PinResetProtectorLabel("alice"));
  ASSERT_TRUE(old_protector.ok());
  auto master_before = MasterFromProtector("alice", *old_protector);
  ASSERT_TRUE(master_before.ok());
  auto priv_before = PrivateKeyFromMaster("alice", *master_before);
  ASSERT_TRUE(priv_before.ok());
  // Forgotten PIN, locked out on the way.
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(store_->Unlock("alice", Pin("0000")).ok());
  ASSERT_TRUE(MustInfo("alice").locked_out);

  clock_.Advance(hours(1));
  ASSERT_TRUE(store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin("135790")).ok());

  ContainerInfo after = MustInfo("alice");
  EXPECT_EQ(after.ngc_key_id, before->ngc_key_id);
  EXPECT_EQ(after.certificate_pem, before->certificate_pem);
  EXPECT_EQ(after.public_key_pem, before->public_key_pem);
  EXPECT_EQ(after.thumbprint, before->thumbprint);
  EXPECT_FALSE(after.locked_out);
  EXPECT_EQ(after.failed_attempts, 0);
  EXPECT_TRUE(after.protector_present);
  EXPECT_EQ(after.pin_set_at, clock_.Now());
  ASSERT_TRUE(after.last_reset.has_value());
  EXPECT_EQ(after.last_reset->kind, ResetKind::kNonDestructive);
  EXPECT_EQ(after.last_reset->old_thumbprint, before->thumbprint);
  EXPECT_EQ(after.last_reset->new_thumbprint, before->thumbprint);
  const RawRow raw_after = Raw("alice");
  EXPECT_EQ(raw_after.sealed_private_key, raw_before.sealed_private_key);

  // The private key is byte-identical and the master key unchanged.
  auto new_protector = crypto::RsaOaepDecrypt(
      service_->private_key_pem(), *raw_after.encrypted_protector, PinResetProtectorLabel("alice"));
  ASSERT_TRUE(new_protector.ok());
  EXPECT_FALSE(*new_protector == *old_protector);
  auto master_after = MasterFromProtector("alice", *new_protector);
  ASSERT_TRUE(master_after.ok());
  EXPECT_TRUE(*master_after == *master_before);
  auto priv_after = PrivateKeyFromMaster("alice", *master_after);
  ASSERT_TRUE(priv_after.ok());
  EXPECT_TRUE(*priv_after == *priv_before);
  // The old protector is retired: it no longer opens anything.
  EXPECT_FALSE(MasterFromProtector("alice", *old_protector).ok());

  EXPECT_EQ(store_->Unlock("alice", Pin("2468")).status().code(), Code::kUnauthenticated);
  ExpectSignsWith("alice", "135790");
  // History does not survive a reset: the pre-reset PIN is allowed again.
  EXPECT_TRUE(store_->ChangePin("alice", Pin("135790"), Pin("2468")).ok());
}

TEST_F(ContainerTest, NonDestructiveResetWithoutProtectorIsAFailedPrecondition) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  Status s = store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin("1357"));
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("no PIN reset protector"), std::string::npos) << s.message();
  EXPECT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
}

TEST_F(ContainerTest, ResetIsRefusedWithoutConsentOrTheRightCredentials) {
  EnableRecovery("alice");
  auto before = store_->Provision("alice", Pin("2468"));
  ASSERT_TRUE(before.ok());
  const Bytes protector = *Raw("alice").encrypted_protector;

  service_->SetConsent(kPinResetClientAppId, false);
  Status s = store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin("1357"));
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("Microsoft Pin Reset Client Production"), std::string::npos);
  service_->SetConsent(kPinResetClientAppId, true);
  service_->SetConsent(kPinResetServiceAppId, false);
  s = store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin("1357"));
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("b8456c59-1230-44c7-a4a2-99b085333e84"), std::string::npos);
  EXPECT_EQ(store_->ResetPinDestructive("alice", *service_, Creds(), Pin("1357")).status().code(),
            Code::kPermissionDenied);
  service_->SetConsent(kPinResetServiceAppId, true);

  EXPECT_EQ(store_->ResetPinNonDestructive("alice", *service_, Creds("wrong password"), Pin("1357"))
                .code(),
            Code::kUnauthenticated);
  ResetCredentials bad_code = Creds();
  bad_code.otp_code = bad_code.otp_code == "000000" ? "000001" : "000000";
  EXPECT_EQ(store_->ResetPinNonDestructive("alice", *service_, bad_code, Pin("1357")).code(),
            Code::kUnauthenticated);
  EXPECT_EQ(store_->ResetPinDestructive("alice", *service_, Creds("wrong password"), Pin("1357"))
                .status()
                .code(),
            Code::kUnauthenticated);
  // A new PIN that breaks policy is refused before the service is asked.
  EXPECT_EQ(store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin("13")).code(),
            Code::kInvalidArgument);

  // Nothing changed.
  EXPECT_EQ(*Raw("alice").encrypted_protector, protector);
  EXPECT_EQ(MustInfo("alice").thumbprint, before->thumbprint);
  EXPECT_FALSE(MustInfo("alice").last_reset.has_value());
  EXPECT_TRUE(store_->Unlock("alice", Pin("2468")).ok());
}

TEST_F(ContainerTest, DestructiveResetReplacesKeysAndCertificateAndIsRecorded) {
  EnableRecovery("alice");
  auto before = store_->Provision("alice", Pin("2468"));
  ASSERT_TRUE(before.ok());
  const RawRow raw_before = Raw("alice");
  clock_.Advance(hours(2));
  auto after = store_->ResetPinDestructive("alice", *service_, Creds(), Pin("97531"));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_NE(after->ngc_key_id, before->ngc_key_id);
  EXPECT_NE(after->thumbprint, before->thumbprint);
  EXPECT_NE(after->public_key_pem, before->public_key_pem);
  EXPECT_NE(after->certificate_pem, before->certificate_pem);
  EXPECT_NE(Raw("alice").sealed_private_key, raw_before.sealed_private_key);
  EXPECT_TRUE(after->protector_present);  // re-armed for the new container
  ASSERT_TRUE(after->last_reset.has_value());
  EXPECT_EQ(after->last_reset->kind, ResetKind::kDestructive);
  EXPECT_EQ(after->last_reset->at, clock_.Now());
  EXPECT_EQ(after->last_reset->old_thumbprint, before->thumbprint);
  EXPECT_EQ(after->last_reset->new_thumbprint, after->thumbprint);
  EXPECT_EQ(ResetKindName(after->last_reset->kind), "destructive");
  EXPECT_EQ(store_->Unlock("alice", Pin("2468")).status().code(), Code::kUnauthenticated);
  ExpectSignsWith("alice", "97531");
  // The record outlives a restart.
  Reopen();
  ASSERT_TRUE(MustInfo("alice").last_reset.has_value());
  EXPECT_EQ(MustInfo("alice").last_reset->old_thumbprint, before->thumbprint);
}

// ---- policy ----

TEST_F(ContainerTest, ApplyPolicyReportsChangesAndReadsBack) {
  EXPECT_EQ(store_->GetAppliedPolicy("alice").status().code(), Code::kNotFound);
  AppliedPolicy p{.pin_recovery_enabled = true,
                  .complexity = {.minimum_length = 6, .digits = 0, .history = 4}};
  auto changed = store_->ApplyPolicy("alice", p);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  changed = store_->ApplyPolicy("alice", p);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  Reopen();
  auto read = store_->GetAppliedPolicy("alice");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, p);
  EXPECT_FALSE(read->complexity.uppercase.has_value());  // not configured stays not configured
  EXPECT_EQ(read->complexity.digits, 0);

  AppliedPolicy bad = p;
  bad.complexity.history = 51;
  EXPECT_EQ(store_->ApplyPolicy("alice", bad).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(*store_->GetAppliedPolicy("alice"), p);

  p.complexity.uppercase = 0;  // 0 differs from not configured
  changed = store_->ApplyPolicy("alice", p);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  auto users = store_->Users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, std::vector<std::string>{"alice"});
}

TEST_F(ContainerTest, TurningHelloOffKeepsTheEnrolledContainer) {
  EnableRecovery("alice");
  auto before = store_->Provision("alice", Pin("2468"));
  ASSERT_TRUE(before.ok());
  auto changed =
      store_->ApplyPolicy("alice", {.hello_enabled = false, .pin_recovery_enabled = true});
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed);
  Reopen();
  ContainerInfo info = MustInfo("alice");
  EXPECT_TRUE(info.exists);
  EXPECT_EQ(info.thumbprint, before->thumbprint);
  EXPECT_TRUE(info.protector_present);
  EXPECT_EQ(info.can_reset, CanReset::kNonDestructiveOnly);
  ExpectSignsWith("alice", "2468");
  EXPECT_TRUE(store_->ChangePin("alice", Pin("2468"), Pin("1357")).ok());
  // A destructive reset would provision anew: refused, container untouched.
  auto d = store_->ResetPinDestructive("alice", *service_, Creds(), Pin("9753"));
  EXPECT_EQ(d.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(MustInfo("alice").thumbprint, before->thumbprint);
  // Other users cannot enrol.
  ASSERT_TRUE(store_->ApplyPolicy("bob", {.hello_enabled = false}).ok());
  EXPECT_EQ(store_->Provision("bob", Pin("2468")).status().code(), Code::kFailedPrecondition);
  auto users = store_->Users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, (std::vector<std::string>{"alice", "bob"}));
}

// ---- blobs are bound to their place ----

TEST_F(ContainerTest, WrappedKeysCannotBeMovedBetweenUsers) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  ASSERT_TRUE(store_->Provision("bob", Pin("1357")).ok());
  // Give bob alice's PIN wrap and salt: alice's PIN must still not open bob's container.
  ASSERT_TRUE(db_->Exec("UPDATE container SET pin_wrapped_master = (SELECT pin_wrapped_master "
                        "FROM container WHERE user = 'alice'), pin_salt = (SELECT pin_salt FROM "
                        "container WHERE user = 'alice') WHERE user = 'bob'")
                  .ok());
  // The device seal binds the wrap to its user: refused before any PIN is tried.
  EXPECT_EQ(store_->Unlock("bob", Pin("2468")).status().code(), Code::kCorruption);
  EXPECT_EQ(MustInfo("bob").failed_attempts, 0);
}

// ---- bound to the device: no PIN oracle in the database, counters that cannot be reset ----

TEST_F(ContainerTest, ADatabaseCopyWithoutTheMachineKeyIsNoPinOracle) {
  ASSERT_TRUE(store_->Provision("alice", Pin("2468")).ok());
  // Offline, even the right PIN is not confirmed: the wrap is sealed under the device key.
  EXPECT_FALSE(OfflineGuessOpens("alice", "2468"));

  // The same database on a device with another machine key: the right PIN and a wrong one fail
  // alike, and neither is counted.
  const fs::path copy_path = dir_ / "copy.db";
  ASSERT_TRUE(db_->Exec("VACUUM INTO '" + copy_path.string() + "'").ok());
  auto copy = storage::Database::Open(copy_path, {.migrations = storage::AgentSchema()});
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  testing::FixedKeySealer other_machine(0x33);
  ContainerStore thief(**copy, other_machine,
                       StoreOptions{.clock = &clock_, .kdf = crypto::ScryptParams::ForTests()});
  auto right = thief.Unlock("alice", Pin("2468"));
  auto wrong = thief.Unlock("alice", Pin("1357"));
  ASSERT_FALSE(right.ok());
  EXPECT_EQ(right.status().code(), wrong.status().code());
  EXPECT_EQ(right.status().message(), wrong.status().message());
  EXPECT_FALSE(thief.Sign("alice", Pin("2468"), crypto::AsBytes("challenge")).ok());
  auto info = thief.Info("alice");
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->counter_verified);
  EXPECT_TRUE(info->locked_out);

  // On its own device the container is fine.
  ExpectSignsWith("alice", "2468");
  EXPECT_TRUE(MustInfo("alice").counter_verified);
}

TEST_F(ContainerTest, AnEditedRetryCounterReadsAsLockedNotReset) {
  EnableRecovery("alice");
  ASSERT_TRUE(service_->AddUser("bob", Pin(kPassword), TotpSecret()).ok());
  const std::vector<std::string> users = {"alice", "bob", "carol", "dave"};
  for (const auto& u : users) {
    ASSERT_TRUE(store_->Provision(u, Pin("2468")).ok());
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(store_->Unlock(u, Pin("1357")).ok());
    ASSERT_TRUE(MustInfo(u).locked_out);
  }
  ASSERT_TRUE(store_->Provision("erin", Pin("2468")).ok());  // clean counters to copy from
  // Edits through a second connection to the real file: reset the counters and the lock; drop
  // the MAC; take another user's valid MAC of clean counters; relabel the row as written before
  // sealing (which has no MAC to check).
  const std::string reset = "failed_attempts = 0, lockouts = 0, locked_until = NULL";
  EditFile("UPDATE container SET " + reset + " WHERE user = 'alice'");
  EditFile("UPDATE container SET " + reset + ", counter_mac = NULL WHERE user = 'bob'");
  EditFile("UPDATE container SET " + reset +
           ", counter_mac = (SELECT counter_mac FROM container WHERE user = 'erin') WHERE user "
           "= 'carol'");
  EditFile("UPDATE container SET " + reset +
           ", seal_version = 0, counter_mac = NULL WHERE user = 'dave'");
  clock_.Advance(hours(25));  // past any lockout the counters had
  Reopen();
  for (const auto& u : users) {
    SCOPED_TRACE(u);
    ContainerInfo info = MustInfo(u);
    EXPECT_FALSE(info.counter_verified);
    EXPECT_TRUE(info.locked_out);
    EXPECT_EQ(info.retries_left, 0);
    auto unlocked = store_->Unlock(u, Pin("2468"));
    EXPECT_EQ(unlocked.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(unlocked.status().message().find("does not verify"), std::string::npos)
        << unlocked.status().message();
    EXPECT_FALSE(MustInfo(u).counter_verified);  // still locked after the attempt
  }
  EXPECT_TRUE(store_->Unlock("erin", Pin("2468")).ok());

  // A PIN reset rewrites the counters and their MAC: non-destructive keeps the keys.
  const std::string thumbprint = MustInfo("alice").thumbprint;
  ASSERT_TRUE(store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin("97531")).ok());
  EXPECT_TRUE(MustInfo("alice").counter_verified);
  EXPECT_FALSE(MustInfo("alice").locked_out);
  ExpectSignsWith("alice", "97531");
  EXPECT_EQ(MustInfo("alice").thumbprint, thumbprint);
  ASSERT_TRUE(store_->ResetPinDestructive("bob", *service_, Creds(), Pin("97531")).ok());
  EXPECT_TRUE(MustInfo("bob").counter_verified);
  ExpectSignsWith("bob", "97531");
}

// A container written before sealing existed: the version-1 schema, its PIN wrap under
// scrypt(PIN) only, no counter MAC.
TEST_F(ContainerTest, AContainerFromBeforeSealingIsSealedAndKeepsItsCounters) {
  store_.reset();
  db_.reset();
  for (const char* f : {"dmagent.db", "dmagent.db-wal", "dmagent.db-shm"}) fs::remove(dir_ / f);
  {
    auto v1 = storage::Database::Open(dir_ / "dmagent.db",
                                      {.migrations = storage::AgentSchema().first(1)});
    ASSERT_TRUE(v1.ok()) << v1.status().ToString();
    crypto::DeterministicRandom random(11);
    for (const char* user : {"alice", "bob"}) {
      const std::string key_id = std::string("{LEGACY-") + user + "}";
      auto keys = pki::GenerateKeyPair(pki::KeyType::kEcP256);
      ASSERT_TRUE(keys.ok());
      pki::IssueOptions io;
      io.common_name = user;
      io.not_before = clock_.Now();
      io.client_auth = true;
      auto cert = pki::SelfSign(keys->private_pem, io);
      ASSERT_TRUE(cert.ok());
      auto master = random.Secret(32);
      auto salt = random.Public(16);
      ASSERT_TRUE(master.ok() && salt.ok());
      auto kek = crypto::Scrypt(Pin("2468"), *salt, crypto::ScryptParams::ForTests());
      ASSERT_TRUE(kek.ok());
      auto wrap =
          crypto::Seal(*kek, master->span(),
                       internal::AssociatedData(internal::kPurposePinWrap, user, key_id), random);
      auto sealed_key = crypto::Seal(
          *master, keys->private_pem.span(),
          internal::AssociatedData(internal::kPurposePrivateKey, user, key_id), random);
      ASSERT_TRUE(wrap.ok() && sealed_key.ok());
      auto st = (*v1)->Prepare(
          "INSERT INTO container (user, ngc_key_id, public_key_pem, sealed_private_key, "
          "certificate_pem, thumbprint, issuer_cn, self_signed, not_before, not_after, "
          "created_at, pin_salt, pin_kdf_n, pin_kdf_r, pin_kdf_p, pin_wrapped_master, "
          "pin_set_at, history_salt, failed_attempts) VALUES (?, ?, ?, ?, ?, 'T', ?, 1, 0, 0, "
          "0, ?, 1024, 8, 1, ?, 0, ?, 2)");
      ASSERT_TRUE(st.ok());
      st->Bind(1, std::string_view(user)).Bind(2, std::string_view(key_id));
      st->Bind(3, std::string_view(keys->public_pem)).BindBlob(4, *sealed_key);
      st->Bind(5, std::string_view(*cert)).Bind(6, std::string_view(user));
      st->BindBlob(7, *salt).BindBlob(8, *wrap).BindBlob(9, *salt);
      ASSERT_TRUE(st->Run().ok());
    }
  }
  Reopen();                                         // migrates to the current schema
  ASSERT_TRUE(OfflineGuessOpens("alice", "2468"));  // what the old format gave away

  // A PIN operation seals the row it uses first (bob); the store's open seals the rest (alice,
  // no PIN needed). Both keep their two failed attempts.
  auto wrong = store_->Unlock("bob", Pin("1357"));
  EXPECT_EQ(wrong.status().code(), Code::kUnauthenticated) << wrong.status().ToString();
  EXPECT_EQ(MustInfo("bob").failed_attempts, 3);
  EXPECT_FALSE(OfflineGuessOpens("bob", "2468"));
  auto sealed = store_->SealLegacyContainers();
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(*sealed, 1);
  EXPECT_FALSE(OfflineGuessOpens("alice", "2468"));
  ContainerInfo info = MustInfo("alice");
  EXPECT_TRUE(info.counter_verified);
  EXPECT_EQ(info.failed_attempts, 2);
  EXPECT_EQ(info.retries_left, 3);
  EXPECT_EQ(*store_->SealLegacyContainers(), 0);

  // The old PIN still opens the old keys, and the counters are now authenticated.
  ExpectSignsWith("alice", "2468");
  ExpectSignsWith("bob", "2468");
  ASSERT_EQ(store_->Unlock("alice", Pin("1357")).status().code(), Code::kUnauthenticated);
  EditFile("UPDATE container SET failed_attempts = 0 WHERE user = 'alice'");
  EXPECT_FALSE(MustInfo("alice").counter_verified);
}

// ---- nothing secret reaches the database file in clear ----

std::string ReadFileBytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST_F(ContainerTest, DatabaseFilesHoldNoPinProtectorMasterKeyOrPrivateKey) {
  const std::vector<std::string> pins = {"Qz7!kP2#wX9m", "Rb4$nL8&vT1q", "Hj6%cY3*gM5s",
                                         "Wd2^fZ7(pK4u"};
  PinComplexity c{.uppercase = 1, .lowercase = 1, .special = 1, .digits = 1, .history = 5};
  EnableRecovery("alice", c);
  ASSERT_TRUE(store_->Provision("alice", Pin(pins[0])).ok());
  ASSERT_TRUE(store_->ChangePin("alice", Pin(pins[0]), Pin(pins[1])).ok());
  ASSERT_FALSE(store_->Unlock("alice", Pin(pins[3])).ok());

  std::vector<SecretBytes> secrets;
  auto collect = [&] {
    RawRow raw = Raw("alice");
    auto protector = crypto::RsaOaepDecrypt(service_->private_key_pem(), *raw.encrypted_protector,
                                            PinResetProtectorLabel("alice"));
    ASSERT_TRUE(protector.ok());
    auto master = MasterFromProtector("alice", *protector);
    ASSERT_TRUE(master.ok());
    auto priv = PrivateKeyFromMaster("alice", *master);
    ASSERT_TRUE(priv.ok());
    secrets.push_back(protector->Clone());
    secrets.push_back(master->Clone());
    secrets.push_back(priv->Clone());
    // Each base64 line of the PEM body too: a partial leak counts.
    std::string pem(priv->view());
    size_t pos = 0;
    while ((pos = pem.find('\n', pos)) != std::string::npos) {
      size_t end = pem.find('\n', pos + 1);
      if (end == std::string::npos) break;
      std::string line = pem.substr(pos + 1, end - pos - 1);
      if (line.size() >= 32 && line.find("-----") == std::string::npos) {
        secrets.emplace_back(std::string_view(line));
      }
      pos = end;
    }
  };
  collect();
  ASSERT_TRUE(store_->ResetPinNonDestructive("alice", *service_, Creds(), Pin(pins[2])).ok());
  collect();  // the rotated protector

  for (const auto& p : pins) secrets.emplace_back(std::string_view(p));
  ASSERT_TRUE(fs::exists(dir_ / "dmagent.db-wal"));
  for (const char* file : {"dmagent.db", "dmagent.db-wal", "dmagent.db-shm"}) {
    if (!fs::exists(dir_ / file)) continue;
    const std::string bytes = ReadFileBytes(dir_ / file);
    ASSERT_FALSE(bytes.empty());
    for (const auto& s : secrets) {
      EXPECT_EQ(bytes.find(s.view()), std::string::npos)
          << file << " contains a secret of " << s.size() << " bytes";
    }
  }
  // Sanity: the scan does find what is public, so it would have found a leak.
  auto info = MustInfo("alice");
  const std::string all =
      ReadFileBytes(dir_ / "dmagent.db") + ReadFileBytes(dir_ / "dmagent.db-wal");
  EXPECT_NE(all.find(info.ngc_key_id), std::string::npos);
}

// ---- web sign-in through the store ----

TEST_F(ContainerTest, WebSignInAllowListIsDeviceWideAndPersistent) {
  EXPECT_EQ(store_->NavigateWebSignIn("https://signin.contoso.com/").message(), kWebSignInBlocked);
  ASSERT_TRUE(store_->SetWebSignInAllowedUrls("signin.contoso.com;portal.contoso.com").ok());
  Reopen();
  EXPECT_TRUE(store_->NavigateWebSignIn("https://SIGNIN.contoso.com/adfs?x=1").ok());
  EXPECT_TRUE(store_->NavigateWebSignIn("https://portal.contoso.com").ok());
  Status blocked = store_->NavigateWebSignIn("https://signin.contoso.com@evil.com/");
  EXPECT_EQ(blocked.code(), Code::kPermissionDenied);
  EXPECT_EQ(blocked.message(), "We can't open that page right now");
  EXPECT_EQ(store_->NavigateWebSignIn("https://evil.com/").message(), kWebSignInBlocked);

  // A bad value is refused and the old list stays.
  EXPECT_EQ(store_->SetWebSignInAllowedUrls("signin.contoso.com;*.evil.com").code(),
            Code::kInvalidArgument);
  auto list = store_->WebSignInAllowList();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  ASSERT_TRUE(store_->SetWebSignInAllowedUrls("").ok());
  EXPECT_EQ(store_->NavigateWebSignIn("https://signin.contoso.com/").message(), kWebSignInBlocked);
}

}  // namespace
}  // namespace dm::container
