// ContainerStore: Hello containers in the agent database (ARCHITECTURE decisions 4 and 7).
//
// Key hierarchy per container:
//   master key (32 random bytes, never stored in clear)
//     seals: the Hello private key PEM, the PIN history verifiers
//     wrapped by: KEK = scrypt(PIN, salt)            -> pin_wrapped_master
//                 protector (32 random bytes)        -> protector_wrapped_master
//   protector stored only as RSA-OAEP(service public key) -> encrypted_protector
// The PIN wrap is sealed once more under the device's KeySealer (machine.key today), and the
// retry counter is MACed under it: the database alone gives no PIN oracle, and an edited
// counter reads as locked (SECURITY.md, "Stolen disk or copy of the database").
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "container/container.h"
#include "container/container_internal.h"

namespace dm::container {
namespace {

using internal::AssociatedData;

constexpr size_t kKeySize = crypto::kAesKeySize;
constexpr size_t kSaltSize = 16;
constexpr size_t kVerifierSize = 32;
constexpr int kMaxHistory = 50;
constexpr char kDeviceServiceKey[] = "pin_reset_service_key";
constexpr char kDeviceAllowList[] = "web_signin_allowed_urls";
// container.seal_version: 0 = written before the key sealer (unsealed PIN wrap, no counter
// MAC), 1 = sealed.
constexpr int kUnsealed = 0;
constexpr int kSealed = 1;
// An unsealed PIN wrap: AES-GCM nonce, the 32-byte master key, tag.
constexpr size_t kLegacyWrapSize =
    crypto::kGcmNonceSize + crypto::kAesKeySize + crypto::kGcmTagSize;

std::string_view KindText(ResetKind k) {
  return k == ResetKind::kDestructive ? "destructive" : "non-destructive";
}

// Everything one container row holds. Blobs are ciphertext.
struct Row {
  std::string user;
  std::string ngc_key_id;
  std::string public_key_pem;
  Bytes sealed_private_key;
  std::string certificate_pem;
  std::string thumbprint;
  std::string issuer_cn;
  bool self_signed = false;
  int64_t not_before = 0;
  int64_t not_after = 0;
  int64_t created_at = 0;
  Bytes pin_salt;
  crypto::ScryptParams pin_kdf;
  Bytes pin_wrapped_master;
  int64_t pin_set_at = 0;
  Bytes history_salt;
  std::optional<Bytes> sealed_history;
  int failed_attempts = 0;
  int lockouts = 0;
  std::optional<int64_t> locked_until;
  std::optional<Bytes> encrypted_protector;
  std::optional<Bytes> protector_wrapped_master;
  std::optional<std::string> protector_key_sha256;
  std::optional<int64_t> protector_created_at;
  int seal_version = kSealed;
  std::optional<Bytes> counter_mac;
};

constexpr char kRowColumns[] =
    "user, ngc_key_id, public_key_pem, sealed_private_key, certificate_pem, thumbprint, "
    "issuer_cn, self_signed, not_before, not_after, created_at, pin_salt, pin_kdf_n, pin_kdf_r, "
    "pin_kdf_p, pin_wrapped_master, pin_set_at, history_salt, sealed_history, failed_attempts, "
    "lockouts, locked_until, encrypted_protector, protector_wrapped_master, "
    "protector_key_sha256, protector_created_at, seal_version, counter_mac";

std::optional<Bytes> OptBlob(const storage::Statement& st, int col) {
  if (st.IsNull(col)) return std::nullopt;
  return st.Blob(col);
}
std::optional<int64_t> OptInt(const storage::Statement& st, int col) {
  if (st.IsNull(col)) return std::nullopt;
  return st.Int(col);
}

Row ReadRow(const storage::Statement& st) {
  Row r;
  r.user = st.Text(0);
  r.ngc_key_id = st.Text(1);
  r.public_key_pem = st.Text(2);
  r.sealed_private_key = st.Blob(3);
  r.certificate_pem = st.Text(4);
  r.thumbprint = st.Text(5);
  r.issuer_cn = st.Text(6);
  r.self_signed = st.Int(7) != 0;
  r.not_before = st.Int(8);
  r.not_after = st.Int(9);
  r.created_at = st.Int(10);
  r.pin_salt = st.Blob(11);
  r.pin_kdf = {static_cast<uint64_t>(st.Int(12)), static_cast<uint32_t>(st.Int(13)),
               static_cast<uint32_t>(st.Int(14))};
  r.pin_wrapped_master = st.Blob(15);
  r.pin_set_at = st.Int(16);
  r.history_salt = st.Blob(17);
  r.sealed_history = OptBlob(st, 18);
  r.failed_attempts = static_cast<int>(st.Int(19));
  r.lockouts = static_cast<int>(st.Int(20));
  r.locked_until = OptInt(st, 21);
  r.encrypted_protector = OptBlob(st, 22);
  r.protector_wrapped_master = OptBlob(st, 23);
  r.protector_key_sha256 = st.OptText(24);
  r.protector_created_at = OptInt(st, 25);
  r.seal_version = static_cast<int>(st.Int(26));
  r.counter_mac = OptBlob(st, 27);
  return r;
}

void BindOptBlob(storage::Statement& st, int i, const std::optional<Bytes>& b) {
  if (b) {
    st.BindBlob(i, *b);
  } else {
    st.BindNull(i);
  }
}
void BindOptInt(storage::Statement& st, int i, const std::optional<int64_t>& v) {
  if (v) {
    st.Bind(i, *v);
  } else {
    st.BindNull(i);
  }
}

// What counter_mac authenticates: the counters, bound to the user and the container's key id.
std::string CounterMacData(const Row& r) {
  return AssociatedData(internal::kPurposeCounters, r.user, r.ngc_key_id) + "\n" +
         std::to_string(r.failed_attempts) + "\n" + std::to_string(r.lockouts) + "\n" +
         (r.locked_until ? std::to_string(*r.locked_until) : "-");
}

// Whether the counters are the ones this device wrote. A row from before sealing has no MAC:
// its counters are taken as they are if its wrap has the old size (a sealed wrap relabelled as
// old does not), and the store seals it before any PIN is tried.
bool CountersVerify(KeySealer& sealer, const Row& r) {
  if (r.seal_version == kUnsealed) return r.pin_wrapped_master.size() == kLegacyWrapSize;
  return r.counter_mac && sealer.VerifyMac(CounterMacData(r), *r.counter_mac).ok();
}

std::string PinSealContext(const Row& r) {
  return AssociatedData(internal::kPurposePinSeal, r.user, r.ngc_key_id);
}

// INSERT OR REPLACE of a whole row: used for provisioning and destructive reset, where every
// column is new, and for updates, where the caller changed the fields it meant to. The counter
// MAC is computed here, so every write of a row authenticates the counters it writes.
Status WriteRow(storage::Database& db, KeySealer& sealer, Row& r) {
  if (r.seal_version != kSealed) return Internal("container row written without its seal");
  DM_ASSIGN_OR_RETURN(Bytes mac, sealer.Mac(CounterMacData(r)));
  DM_ASSIGN_OR_RETURN(
      storage::Statement st,
      db.Prepare(
          std::string("INSERT OR REPLACE INTO container (") + kRowColumns +
          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "?, ?, ?, ?)"));
  st.Bind(1, std::string_view(r.user))
      .Bind(2, std::string_view(r.ngc_key_id))
      .Bind(3, std::string_view(r.public_key_pem));
  st.BindBlob(4, r.sealed_private_key)
      .Bind(5, std::string_view(r.certificate_pem))
      .Bind(6, std::string_view(r.thumbprint));
  st.Bind(7, std::string_view(r.issuer_cn))
      .Bind(8, r.self_signed)
      .Bind(9, r.not_before)
      .Bind(10, r.not_after);
  st.Bind(11, r.created_at).BindBlob(12, r.pin_salt);
  st.Bind(13, static_cast<int64_t>(r.pin_kdf.n)).Bind(14, static_cast<int64_t>(r.pin_kdf.r));
  st.Bind(15, static_cast<int64_t>(r.pin_kdf.p)).BindBlob(16, r.pin_wrapped_master);
  st.Bind(17, r.pin_set_at).BindBlob(18, r.history_salt);
  BindOptBlob(st, 19, r.sealed_history);
  st.Bind(20, r.failed_attempts).Bind(21, r.lockouts);
  BindOptInt(st, 22, r.locked_until);
  BindOptBlob(st, 23, r.encrypted_protector);
  BindOptBlob(st, 24, r.protector_wrapped_master);
  st.Bind(25, r.protector_key_sha256);
  BindOptInt(st, 26, r.protector_created_at);
  st.Bind(27, r.seal_version).BindBlob(28, mac);
  DM_RETURN_IF_ERROR(st.Run());
  r.counter_mac = std::move(mac);
  return Status::Ok();
}

// Writes the counters of `r` and their MAC, nothing else.
Status WriteCounters(storage::Database& db, KeySealer& sealer, Row& r) {
  DM_ASSIGN_OR_RETURN(Bytes mac, sealer.Mac(CounterMacData(r)));
  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db.Prepare("UPDATE container SET failed_attempts = ?, lockouts = ?, "
                                 "locked_until = ?, counter_mac = ? WHERE user = ?"));
  st.Bind(1, r.failed_attempts).Bind(2, r.lockouts);
  BindOptInt(st, 3, r.locked_until);
  st.BindBlob(4, mac).Bind(5, std::string_view(r.user));
  DM_RETURN_IF_ERROR(st.Run());
  r.counter_mac = std::move(mac);
  return Status::Ok();
}

// Upgrade of a row from before sealing: its PIN wrap is sealed under the device key and its
// counters, as they are, get a MAC. Needs no PIN, so the store does it when it opens.
Status SealLegacyRow(storage::Database& db, KeySealer& sealer, Row& r) {
  if (r.seal_version != kUnsealed) return Status::Ok();
  const bool genuine = r.pin_wrapped_master.size() == kLegacyWrapSize;
  DM_ASSIGN_OR_RETURN(Bytes sealed, sealer.Seal(r.pin_wrapped_master, PinSealContext(r)));
  r.pin_wrapped_master = std::move(sealed);
  r.seal_version = kSealed;
  DM_RETURN_IF_ERROR(WriteRow(db, sealer, r));
  if (genuine) return Status::Ok();
  // Not an old wrap of a master key: a sealed row relabelled as old to get fresh counters.
  // Its counters stay unauthenticated, so it reads as locked until a PIN reset.
  spdlog::warn("container '{}': marked as unsealed but its PIN wrap is not one; PIN entry locked",
               r.user);
  r.counter_mac.reset();
  return db.Run("UPDATE container SET counter_mac = NULL WHERE user = ?", std::string_view(r.user));
}

Result<std::optional<Row>> LoadRow(storage::Database& db, std::string_view user) {
  DM_ASSIGN_OR_RETURN(storage::Statement st, db.Prepare(std::string("SELECT ") + kRowColumns +
                                                        " FROM container WHERE user = ?"));
  st.Bind(1, user);
  DM_ASSIGN_OR_RETURN(bool has, st.Step());
  if (!has) return std::optional<Row>();
  return std::optional<Row>(ReadRow(st));
}

Status NoContainer(std::string_view user) {
  return NotFound("no Windows Hello container for user '" + std::string(user) + "'");
}

Result<std::optional<std::string>> GetDeviceSetting(storage::Database& db, std::string_view key) {
  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db.Prepare("SELECT value FROM container_device WHERE key = ?"));
  st.Bind(1, key);
  DM_ASSIGN_OR_RETURN(bool has, st.Step());
  if (!has) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Status SetDeviceSetting(storage::Database& db, std::string_view key, std::string_view value) {
  if (value.empty()) return db.Run("DELETE FROM container_device WHERE key = ?", key);
  return db.Run("INSERT OR REPLACE INTO container_device (key, value) VALUES (?, ?)", key, value);
}

Result<std::string> KeyFingerprint(std::string_view public_key_pem) {
  DM_ASSIGN_OR_RETURN(Bytes h, crypto::Sha256(crypto::AsBytes(public_key_pem)));
  return crypto::HexEncode(h);
}

// ---- PIN history: verifiers sealed under the master key ----
// Plain layout before sealing: N(8, LE) r(4) p(4) then 32-byte verifiers, oldest first. The
// scrypt cost is fixed per history so a later cost change still compares like with like.
struct History {
  crypto::ScryptParams kdf;
  std::vector<SecretBytes> verifiers;
};

Result<History> OpenHistory(const Row& row, const SecretBytes& master,
                            const crypto::ScryptParams& default_kdf) {
  History h;
  h.kdf = default_kdf;
  if (!row.sealed_history) return h;
  DM_ASSIGN_OR_RETURN(SecretBytes plain, crypto::Open(master, *row.sealed_history,
                                                      AssociatedData(internal::kPurposeHistory,
                                                                     row.user, row.ngc_key_id)));
  if (plain.size() < 16 || (plain.size() - 16) % kVerifierSize != 0) {
    return Corruption("PIN history of '" + row.user + "' does not decode");
  }
  uint64_t n = 0;
  uint32_t r = 0, p = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{plain.data()[i]} << (8 * i);
  for (int i = 0; i < 4; ++i) r |= uint32_t{plain.data()[8 + i]} << (8 * i);
  for (int i = 0; i < 4; ++i) p |= uint32_t{plain.data()[12 + i]} << (8 * i);
  h.kdf = {n, r, p};
  for (size_t off = 16; off < plain.size(); off += kVerifierSize) {
    h.verifiers.emplace_back(plain.data() + off, kVerifierSize);
  }
  return h;
}

Result<std::optional<Bytes>> SealHistory(const History& h, const Row& row,
                                         const SecretBytes& master, crypto::Random& random) {
  if (h.verifiers.empty()) return std::optional<Bytes>();
  SecretBytes plain(16 + h.verifiers.size() * kVerifierSize);
  for (int i = 0; i < 8; ++i) plain.data()[i] = static_cast<uint8_t>(h.kdf.n >> (8 * i));
  for (int i = 0; i < 4; ++i) plain.data()[8 + i] = static_cast<uint8_t>(h.kdf.r >> (8 * i));
  for (int i = 0; i < 4; ++i) plain.data()[12 + i] = static_cast<uint8_t>(h.kdf.p >> (8 * i));
  for (size_t i = 0; i < h.verifiers.size(); ++i) {
    std::memcpy(plain.data() + 16 + i * kVerifierSize, h.verifiers[i].data(), kVerifierSize);
  }
  DM_ASSIGN_OR_RETURN(
      Bytes sealed,
      crypto::Seal(master, plain.span(),
                   AssociatedData(internal::kPurposeHistory, row.user, row.ngc_key_id), random));
  return std::optional<Bytes>(std::move(sealed));
}

void TrimHistory(History& h, int keep) {
  keep = std::clamp(keep, 0, kMaxHistory);
  if (static_cast<int>(h.verifiers.size()) > keep) {
    h.verifiers.erase(h.verifiers.begin(), h.verifiers.end() - keep);
  }
}

std::string FormatDuration(std::chrono::seconds s) {
  const auto n = s.count();
  if (n % 3600 == 0) return std::to_string(n / 3600) + " h";
  if (n % 60 == 0) return std::to_string(n / 60) + " min";
  return std::to_string(n) + " s";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
std::string_view CanResetName(CanReset c) {
  switch (c) {
    case CanReset::kDestructiveOnly:
      return "DestructiveOnly";
    case CanReset::kNonDestructiveOnly:
      return "NonDestructiveOnly";
    case CanReset::kDestructiveAndNonDestructive:
      return "DestructiveAndNonDestructive";
    case CanReset::kUnknown:
      break;
  }
  return "Unknown";
}

std::string_view ResetKindName(ResetKind k) { return KindText(k); }

// The implementation's private helpers live in this class so they can reach the store's
// database and options without widening the public header.
class StoreImpl {
 public:
  StoreImpl(storage::Database& db, KeySealer& sealer, const StoreOptions& o)
      : db_(db), sealer_(sealer), o_(o) {}

  Result<AppliedPolicy> PolicyOrDefault(std::string_view user);
  Result<std::optional<AppliedPolicy>> LoadPolicy(std::string_view user);
  Result<std::optional<std::string>> ServiceKey() {
    return GetDeviceSetting(db_, kDeviceServiceKey);
  }

  // Fresh key pair, certificate, master key and PIN wrap for `user` (no DB write).
  Result<Row> NewContainer(std::string_view user, const SecretBytes& pin,
                           const AppliedPolicy& policy, SecretBytes& master_out);
  Status WrapUnderPin(Row& row, const SecretBytes& pin, const SecretBytes& master);
  Result<SecretBytes> Verifier(const SecretBytes& pin, const Row& row,
                               const crypto::ScryptParams& kdf);
  // Creates (or re-creates) the protector when policy wants one and the service key is known.
  // Failures are logged, not returned: a PIN operation must not fail because recovery could
  // not be armed.
  void MaybeArmProtector(Row& row, const SecretBytes& master, const AppliedPolicy& policy,
                         bool force_rotate);

  struct Unlocked {
    Row row;
    SecretBytes master;
    UnlockResult result;
  };
  Result<Unlocked> Unlock(std::string_view user, const SecretBytes& pin);
  Status RecordReset(std::string_view user, ResetKind kind, const Row& old_row,
                     std::string_view new_thumbprint, TimePoint at);
  Result<ContainerInfo> Info(std::string_view user);

  // The row for a PIN operation; a row from before sealing is sealed first.
  Result<std::optional<Row>> LoadForUse(std::string_view user);

  storage::Database& db_;
  KeySealer& sealer_;
  const StoreOptions& o_;
};

Result<std::optional<Row>> StoreImpl::LoadForUse(std::string_view user) {
  DM_ASSIGN_OR_RETURN(std::optional<Row> row, LoadRow(db_, user));
  if (row && row->seal_version == kUnsealed) {
    DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
    DM_RETURN_IF_ERROR(SealLegacyRow(db_, sealer_, *row));
    DM_RETURN_IF_ERROR(tx.Commit());
    spdlog::info("container '{}': sealed under the device key", row->user);
  }
  return row;
}

Result<std::optional<AppliedPolicy>> StoreImpl::LoadPolicy(std::string_view user) {
  DM_ASSIGN_OR_RETURN(
      storage::Statement st,
      db_.Prepare("SELECT hello_enabled, pin_recovery_enabled, require_security_device, "
                  "min_length, max_length, uppercase, lowercase, special, digits, history, "
                  "expiration_days FROM container_policy WHERE user = ?"));
  st.Bind(1, user);
  DM_ASSIGN_OR_RETURN(bool has, st.Step());
  if (!has) return std::optional<AppliedPolicy>();
  AppliedPolicy p;
  p.hello_enabled = st.Int(0) != 0;
  p.pin_recovery_enabled = st.Int(1) != 0;
  p.require_security_device = st.Int(2) != 0;
  auto opt = [&](int col) -> std::optional<int> {
    if (st.IsNull(col)) return std::nullopt;
    return static_cast<int>(st.Int(col));
  };
  p.complexity = {opt(3), opt(4), opt(5), opt(6), opt(7), opt(8), opt(9), opt(10)};
  return std::optional<AppliedPolicy>(p);
}

Result<AppliedPolicy> StoreImpl::PolicyOrDefault(std::string_view user) {
  DM_ASSIGN_OR_RETURN(std::optional<AppliedPolicy> p, LoadPolicy(user));
  // Nothing applied: the CSP defaults (UsePassportForWork true, nothing else configured).
  return p.value_or(AppliedPolicy{});
}

Status StoreImpl::WrapUnderPin(Row& row, const SecretBytes& pin, const SecretBytes& master) {
  DM_ASSIGN_OR_RETURN(row.pin_salt, o_.random->Public(kSaltSize));
  row.pin_kdf = o_.kdf;
  DM_ASSIGN_OR_RETURN(SecretBytes kek, crypto::Scrypt(pin, row.pin_salt, row.pin_kdf));
  DM_ASSIGN_OR_RETURN(Bytes wrapped, crypto::Seal(kek, master.span(),
                                                  AssociatedData(internal::kPurposePinWrap,
                                                                 row.user, row.ngc_key_id),
                                                  *o_.random));
  // Sealed under the device key too: without it nobody can test a PIN guess against the wrap.
  DM_ASSIGN_OR_RETURN(row.pin_wrapped_master, sealer_.Seal(wrapped, PinSealContext(row)));
  row.seal_version = kSealed;
  row.pin_set_at = ToUnixSeconds(o_.clock->Now());
  return Status::Ok();
}

Result<SecretBytes> StoreImpl::Verifier(const SecretBytes& pin, const Row& row,
                                        const crypto::ScryptParams& kdf) {
  return crypto::Scrypt(pin, row.history_salt, kdf, kVerifierSize);
}

Result<Row> StoreImpl::NewContainer(std::string_view user, const SecretBytes& pin,
                                    const AppliedPolicy& policy, SecretBytes& master_out) {
  const TimePoint now = o_.clock->Now();
  Row row;
  row.user = std::string(user);
  DM_ASSIGN_OR_RETURN(row.ngc_key_id, internal::NewKeyId(*o_.random));
  DM_ASSIGN_OR_RETURN(pki::KeyPair keys, pki::GenerateKeyPair(pki::KeyType::kEcP256));
  row.public_key_pem = keys.public_pem;

  // The certificate: from the device's CA when it has one, self-signed otherwise.
  std::string cert;
  const bool ca_issued = o_.issuer != nullptr && o_.issuer->Available();
  if (ca_issued) {
    auto issued = o_.issuer->Issue(keys.public_pem, user, now);
    if (!issued.ok()) return issued.status().WithContext("issue Hello certificate");
    cert = std::move(*issued);
  } else {
    pki::IssueOptions io;
    io.common_name = std::string(user);
    io.not_before = now;
    io.validity = o_.certificate_validity;
    io.client_auth = true;
    auto self = pki::SelfSign(keys.private_pem, io);
    if (!self.ok()) return self.status().WithContext("self-sign Hello certificate");
    cert = std::move(*self);
  }
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(cert));
  if (info.public_key_pem != keys.public_pem) {
    DM_ASSIGN_OR_RETURN(std::string a, KeyFingerprint(info.public_key_pem));
    DM_ASSIGN_OR_RETURN(std::string b, KeyFingerprint(keys.public_pem));
    if (a != b) return Internal("issued certificate does not certify the Hello key");
  }
  row.certificate_pem = cert;
  row.thumbprint = info.thumbprint;
  row.issuer_cn = info.issuer_cn;
  row.self_signed = !ca_issued;
  row.not_before = ToUnixSeconds(info.not_before);
  row.not_after = ToUnixSeconds(info.not_after);
  row.created_at = ToUnixSeconds(now);

  DM_ASSIGN_OR_RETURN(SecretBytes master, o_.random->Secret(kKeySize));
  DM_ASSIGN_OR_RETURN(
      row.sealed_private_key,
      crypto::Seal(master, keys.private_pem.span(),
                   AssociatedData(internal::kPurposePrivateKey, row.user, row.ngc_key_id),
                   *o_.random));
  DM_RETURN_IF_ERROR(WrapUnderPin(row, pin, master));

  DM_ASSIGN_OR_RETURN(row.history_salt, o_.random->Public(kSaltSize));
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  if (rules.history > 0) {
    History h;
    h.kdf = o_.kdf;
    DM_ASSIGN_OR_RETURN(SecretBytes v, Verifier(pin, row, h.kdf));
    h.verifiers.push_back(std::move(v));
    DM_ASSIGN_OR_RETURN(row.sealed_history, SealHistory(h, row, master, *o_.random));
  }
  MaybeArmProtector(row, master, policy, /*force_rotate=*/true);
  master_out = std::move(master);
  return row;
}

void StoreImpl::MaybeArmProtector(Row& row, const SecretBytes& master, const AppliedPolicy& policy,
                                  bool force_rotate) {
  if (!policy.pin_recovery_enabled) return;
  auto key = ServiceKey();
  if (!key.ok()) {
    spdlog::warn("container '{}': cannot read the PIN reset service key: {}", row.user,
                 key.status().ToString());
    return;
  }
  if (!key->has_value()) {
    spdlog::info(
        "container '{}': PIN recovery is on but the PIN reset service key is unknown; "
        "no protector yet",
        row.user);
    return;
  }
  auto fp = KeyFingerprint(**key);
  if (!fp.ok()) return;
  if (!force_rotate && row.encrypted_protector && row.protector_key_sha256 == *fp) return;

  auto arm = [&]() -> Status {
    DM_ASSIGN_OR_RETURN(SecretBytes protector, o_.random->Secret(kKeySize));
    DM_ASSIGN_OR_RETURN(Bytes encrypted, crypto::RsaOaepEncrypt(**key, protector.span(),
                                                                PinResetProtectorLabel(row.user)));
    DM_ASSIGN_OR_RETURN(Bytes wrapped, crypto::Seal(protector, master.span(),
                                                    AssociatedData(internal::kPurposeProtectorWrap,
                                                                   row.user, row.ngc_key_id),
                                                    *o_.random));
    // protector is wiped here by its destructor; only the two ciphertexts leave this scope.
    row.encrypted_protector = std::move(encrypted);
    row.protector_wrapped_master = std::move(wrapped);
    row.protector_key_sha256 = *fp;
    row.protector_created_at = ToUnixSeconds(o_.clock->Now());
    return Status::Ok();
  };
  Status s = arm();
  if (!s.ok()) {
    spdlog::warn("container '{}': could not create the PIN reset protector: {}", row.user,
                 s.ToString());
  } else {
    spdlog::info("container '{}': PIN reset protector created", row.user);
  }
}

Result<StoreImpl::Unlocked> StoreImpl::Unlock(std::string_view user, const SecretBytes& pin) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  const TimePoint now = o_.clock->Now();
  const int64_t now_s = ToUnixSeconds(now);
  // Read, check and count in one write transaction, so concurrent processes cannot both count
  // from the same value.
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(std::optional<Row> loaded, LoadForUse(user));
  if (!loaded) return NoContainer(user);
  Row row = std::move(*loaded);
  // A refusal still commits, so a row sealed just now stays sealed.
  auto refuse = [&tx](Status why) -> Status {
    DM_RETURN_IF_ERROR(tx.Commit());
    return why;
  };
  // Counters this device did not write read as locked, never as reset. Only a PIN reset (which
  // rewrites them) gets the user out; no PIN is tried, so this is no oracle either.
  if (!CountersVerify(sealer_, row)) {
    spdlog::warn("container '{}': the PIN retry counter does not verify; PIN entry locked",
                 row.user);
    return refuse(FailedPrecondition(
        "PIN entry for '" + row.user +
        "' is locked: its retry counter does not verify under this device's key (the database "
        "was edited, or comes from another device); a PIN reset unlocks it"));
  }
  if (row.locked_until && *row.locked_until > now_s) {
    return refuse(FailedPrecondition("PIN entry for '" + row.user + "' is locked until " +
                                     FormatUtc(FromUnixSeconds(*row.locked_until)) +
                                     " after too many incorrect PINs"));
  }
  auto wrapped = sealer_.Open(row.pin_wrapped_master, PinSealContext(row));
  if (!wrapped.ok()) {
    return refuse(Corruption("the Windows Hello container of '" + row.user +
                             "' does not open with this device's key (the database was edited, "
                             "or comes from another device); a PIN reset replaces it"));
  }
  // Count the attempt before checking it, so killing the process mid-check cannot give an
  // attacker free guesses.
  row.failed_attempts += 1;
  DM_RETURN_IF_ERROR(WriteCounters(db_, sealer_, row));
  DM_RETURN_IF_ERROR(tx.Commit());

  DM_ASSIGN_OR_RETURN(SecretBytes kek, crypto::Scrypt(pin, row.pin_salt, row.pin_kdf));
  auto master = crypto::Open(kek, wrapped->span(),
                             AssociatedData(internal::kPurposePinWrap, row.user, row.ngc_key_id));
  if (!master.ok()) {
    if (master.status().code() != Code::kUnauthenticated) return master.status();
    const int max = std::max(1, o_.max_pin_attempts);
    if (row.failed_attempts < max) {
      const int left = max - row.failed_attempts;
      spdlog::info("container '{}': incorrect PIN ({} attempts left)", row.user, left);
      return Unauthenticated("incorrect PIN; " + std::to_string(left) +
                             (left == 1 ? " attempt" : " attempts") + " left");
    }
    // Past the limit every wrong PIN locks again, each time twice as long.
    row.lockouts += 1;
    std::chrono::seconds d = o_.lockout;
    for (int i = 1; i < row.lockouts && d < o_.max_lockout; ++i) d *= 2;
    d = std::min(d, o_.max_lockout);
    const int64_t until = now_s + d.count();
    row.locked_until = until;
    DM_RETURN_IF_ERROR(WriteCounters(db_, sealer_, row));
    spdlog::warn("container '{}': {} incorrect PINs; PIN entry locked for {}", row.user,
                 row.failed_attempts, FormatDuration(d));
    return Unauthenticated("incorrect PIN; PIN entry is locked for " + FormatDuration(d) +
                           " (until " + FormatUtc(FromUnixSeconds(until)) + ")");
  }
  row.failed_attempts = 0;
  row.lockouts = 0;
  row.locked_until.reset();
  DM_RETURN_IF_ERROR(WriteCounters(db_, sealer_, row));

  Unlocked out{std::move(row), std::move(*master), {}};
  DM_ASSIGN_OR_RETURN(AppliedPolicy policy, PolicyOrDefault(user));
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  if (rules.expiration_days > 0) {
    const int64_t expires = out.row.pin_set_at + int64_t{rules.expiration_days} * 86400;
    if (now_s >= expires) {
      out.result.must_change_pin = true;
      out.result.reason = "PIN expired on " + FormatUtc(FromUnixSeconds(expires)) +
                          " (Expiration " + std::to_string(rules.expiration_days) + " days)";
    }
  }
  if (!out.result.must_change_pin) {
    Status fits = CheckPin(pin, rules);
    if (!fits.ok()) {
      out.result.must_change_pin = true;
      out.result.reason = "PIN no longer meets the PIN policy: " + fits.message();
    }
  }
  // The first unlock after recovery was turned on (or after the service key changed) is the
  // first moment the master key is available to arm the protector.
  const auto before = out.row.protector_key_sha256;
  const bool had = out.row.encrypted_protector.has_value();
  MaybeArmProtector(out.row, out.master, policy, /*force_rotate=*/false);
  if (out.row.encrypted_protector.has_value() != had || out.row.protector_key_sha256 != before) {
    DM_RETURN_IF_ERROR(WriteRow(db_, sealer_, out.row));
  }
  return out;
}

Status StoreImpl::RecordReset(std::string_view user, ResetKind kind, const Row& old_row,
                              std::string_view new_thumbprint, TimePoint at) {
  return db_.Run(
      "INSERT INTO container_reset (user, kind, at, old_ngc_key_id, old_thumbprint, "
      "new_thumbprint) VALUES (?, ?, ?, ?, ?, ?)",
      user, KindText(kind), ToUnixSeconds(at), std::string_view(old_row.ngc_key_id),
      std::string_view(old_row.thumbprint), new_thumbprint);
}

Result<ContainerInfo> StoreImpl::Info(std::string_view user) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  ContainerInfo info;
  info.user = std::string(user);
  DM_ASSIGN_OR_RETURN(AppliedPolicy policy, PolicyOrDefault(user));
  DM_ASSIGN_OR_RETURN(std::optional<Row> row, LoadRow(db_, user));

  DM_ASSIGN_OR_RETURN(
      storage::Statement st,
      db_.Prepare("SELECT kind, at, old_thumbprint, new_thumbprint FROM container_reset "
                  "WHERE user = ? ORDER BY id DESC LIMIT 1"));
  st.Bind(1, user);
  DM_ASSIGN_OR_RETURN(bool has_reset, st.Step());
  if (has_reset) {
    ResetRecord rec;
    rec.kind = st.Text(0) == "destructive" ? ResetKind::kDestructive : ResetKind::kNonDestructive;
    rec.at = FromUnixSeconds(st.Int(1));
    rec.old_thumbprint = st.Text(2);
    rec.new_thumbprint = st.Text(3);
    info.last_reset = rec;
  }

  if (!row) {
    info.can_reset = CanReset::kUnknown;
    info.can_reset_reason = "no Windows Hello container";
    return info;
  }
  const int64_t now_s = ToUnixSeconds(o_.clock->Now());
  info.exists = true;
  info.ngc_set = true;
  info.ngc_key_id = row->ngc_key_id;
  info.thumbprint = row->thumbprint;
  info.certificate_pem = row->certificate_pem;
  info.public_key_pem = row->public_key_pem;
  info.issuer_cn = row->issuer_cn;
  info.self_signed = row->self_signed;
  info.created_at = FromUnixSeconds(row->created_at);
  info.not_before = FromUnixSeconds(row->not_before);
  info.not_after = FromUnixSeconds(row->not_after);
  info.protector_present = row->encrypted_protector.has_value();
  info.failed_attempts = row->failed_attempts;
  info.counter_verified = CountersVerify(sealer_, *row);
  info.locked_out = !info.counter_verified || (row->locked_until && *row->locked_until > now_s);
  if (info.counter_verified && info.locked_out) {
    info.locked_until = FromUnixSeconds(*row->locked_until);
  }
  const int max = std::max(1, o_.max_pin_attempts);
  info.retries_left = info.locked_out ? 0 : std::max(1, max - row->failed_attempts);
  info.pin_set_at = FromUnixSeconds(row->pin_set_at);
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  if (rules.expiration_days > 0) {
    const int64_t expires = row->pin_set_at + int64_t{rules.expiration_days} * 86400;
    info.pin_expires_at = FromUnixSeconds(expires);
    info.pin_expired = now_s >= expires;
  }

  DM_ASSIGN_OR_RETURN(std::optional<std::string> service_key, ServiceKey());
  const bool non_destructive = info.protector_present && policy.pin_recovery_enabled;
  // A destructive reset provisions a new container, which policy may forbid.
  const bool destructive = policy.hello_enabled && !policy.require_security_device;
  if (destructive && non_destructive) {
    info.can_reset = CanReset::kDestructiveAndNonDestructive;
    info.can_reset_reason = "PIN reset protector present";
  } else if (non_destructive) {
    info.can_reset = CanReset::kNonDestructiveOnly;
    info.can_reset_reason =
        "PIN reset protector present; destructive reset would need new provisioning, which "
        "policy does not allow";
  } else if (destructive) {
    info.can_reset = CanReset::kDestructiveOnly;
    if (!policy.pin_recovery_enabled) {
      info.can_reset_reason = "PIN recovery (EnablePinRecovery) is off";
    } else if (!service_key.has_value()) {
      info.can_reset_reason = "PIN recovery is on but the PIN reset service key is unknown";
    } else {
      info.can_reset_reason =
          "PIN recovery is on; the protector is created at the next PIN unlock or change";
    }
  } else {
    info.can_reset = CanReset::kUnknown;
    info.can_reset_reason =
        "no reset possible: no protector, and policy does not allow new provisioning";
  }
  return info;
}

// ---------------------------------------------------------------------------------------------
ContainerStore::ContainerStore(storage::Database& db, KeySealer& sealer, StoreOptions options)
    : db_(db), sealer_(sealer), options_(options) {
  if (options_.clock == nullptr) options_.clock = &Clock::System();
  if (options_.random == nullptr) options_.random = &crypto::OsRandom();
}

Result<bool> ContainerStore::ApplyPolicy(std::string_view user, const AppliedPolicy& policy) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  DM_RETURN_IF_ERROR(ResolvePinRules(policy.complexity).status());
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(std::optional<AppliedPolicy> old, impl.LoadPolicy(user));
  const bool changed = !old || *old != policy;
  if (changed) {
    DM_ASSIGN_OR_RETURN(
        storage::Statement st,
        db_.Prepare("INSERT OR REPLACE INTO container_policy (user, hello_enabled, "
                    "pin_recovery_enabled, require_security_device, min_length, max_length, "
                    "uppercase, lowercase, special, digits, history, expiration_days, applied_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    st.Bind(1, user).Bind(2, policy.hello_enabled).Bind(3, policy.pin_recovery_enabled);
    st.Bind(4, policy.require_security_device);
    const std::optional<int>* opts[] = {
        &policy.complexity.minimum_length, &policy.complexity.maximum_length,
        &policy.complexity.uppercase,      &policy.complexity.lowercase,
        &policy.complexity.special,        &policy.complexity.digits,
        &policy.complexity.history,        &policy.complexity.expiration_days};
    int i = 5;
    for (const auto* o : opts) {
      if (*o) {
        st.Bind(i++, **o);
      } else {
        st.BindNull(i++);
      }
    }
    st.Bind(13, ToUnixSeconds(options_.clock->Now()));
    DM_RETURN_IF_ERROR(st.Run());
  }
  // Recovery off: the escrowed wrap of the master key must not linger. The keys stay.
  if (!policy.pin_recovery_enabled) {
    DM_RETURN_IF_ERROR(
        db_.Run("UPDATE container SET encrypted_protector = NULL, protector_wrapped_master = NULL, "
                "protector_key_sha256 = NULL, protector_created_at = NULL "
                "WHERE user = ? AND encrypted_protector IS NOT NULL",
                user));
    if (db_.Changes() > 0) {
      spdlog::info("container '{}': PIN recovery turned off; PIN reset protector removed", user);
    }
  }
  if (changed && old && old->hello_enabled && !policy.hello_enabled) {
    spdlog::info(
        "Windows Hello turned off for '{}': an enrolled container is kept, new "
        "provisioning is refused",
        user);
  }
  DM_RETURN_IF_ERROR(tx.Commit());
  return changed;
}

Result<AppliedPolicy> ContainerStore::GetAppliedPolicy(std::string_view user) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(std::optional<AppliedPolicy> p, impl.LoadPolicy(user));
  if (!p) return NotFound("no container policy applied for user '" + std::string(user) + "'");
  return *p;
}

Status ContainerStore::SetPinResetServiceKey(std::string_view public_key_pem) {
  if (!public_key_pem.empty()) {
    // Accept only a key protectors can actually be encrypted to.
    Status usable = crypto::RsaOaepEncrypt(public_key_pem, Bytes(kKeySize)).status();
    if (!usable.ok()) {
      return InvalidArgument("PIN reset service key is not a usable RSA public key: " +
                             usable.message());
    }
  }
  return SetDeviceSetting(db_, kDeviceServiceKey, public_key_pem);
}

Status ContainerStore::SetWebSignInAllowedUrls(std::string_view value) {
  DM_RETURN_IF_ERROR(ParseWebSignInAllowList(value).status());
  return SetDeviceSetting(db_, kDeviceAllowList, value);
}

Result<std::vector<AllowedHost>> ContainerStore::WebSignInAllowList() {
  DM_ASSIGN_OR_RETURN(std::optional<std::string> v, GetDeviceSetting(db_, kDeviceAllowList));
  if (!v) return std::vector<AllowedHost>();
  return ParseWebSignInAllowList(*v);
}

Status ContainerStore::NavigateWebSignIn(std::string_view url) {
  DM_ASSIGN_OR_RETURN(std::vector<AllowedHost> allowed, WebSignInAllowList());
  auto target = internal::ParseNavigationUrl(url);
  if (target.ok()) {
    for (const auto& h : allowed) {
      if (h.host == target->host && h.port == target->port) return Status::Ok();
    }
    spdlog::warn(
        "web sign-in: blocked navigation to host '{}' port {} (not in "
        "ConfigureWebSignInAllowedUrls)",
        target->host, target->port);
  } else {
    // Log where the page would have gone (the part after any user info), never the whole URL:
    // query strings carry tokens.
    std::string_view rest = url;
    if (size_t s = rest.find("://"); s != std::string_view::npos) rest.remove_prefix(s + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
    spdlog::warn("web sign-in: blocked navigation to host '{}' ({})",
                 internal::SanitizeForLog(rest), target.status().message());
  }
  return PermissionDenied(kWebSignInBlocked);
}

Result<ContainerInfo> ContainerStore::Provision(std::string_view user, const SecretBytes& pin) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(AppliedPolicy policy, impl.PolicyOrDefault(user));
  if (!policy.hello_enabled) {
    return FailedPrecondition(
        "Windows Hello for Business is turned off by policy (UsePassportForWork=false); no new "
        "container can be provisioned for '" +
        std::string(user) + "'");
  }
  if (policy.require_security_device) {
    return FailedPrecondition(
        "policy requires a security device (RequireSecurityDevice=true) and this container is "
        "software-backed; provisioning refused for '" +
        std::string(user) + "'");
  }
  DM_ASSIGN_OR_RETURN(std::optional<Row> existing, LoadRow(db_, user));
  if (existing) {
    return AlreadyExists("user '" + std::string(user) + "' already has a Windows Hello container " +
                         existing->ngc_key_id);
  }
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  DM_RETURN_IF_ERROR(CheckPin(pin, rules));
  SecretBytes master;
  DM_ASSIGN_OR_RETURN(Row row, impl.NewContainer(user, pin, policy, master));
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_RETURN_IF_ERROR(WriteRow(db_, sealer_, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("container '{}': provisioned key {} certificate {}", row.user, row.ngc_key_id,
               row.thumbprint);
  return impl.Info(user);
}

Result<UnlockResult> ContainerStore::Unlock(std::string_view user, const SecretBytes& pin) {
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(StoreImpl::Unlocked u, impl.Unlock(user, pin));
  return u.result;
}

Result<Bytes> ContainerStore::Sign(std::string_view user, const SecretBytes& pin,
                                   std::span<const uint8_t> data) {
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(StoreImpl::Unlocked u, impl.Unlock(user, pin));
  auto key =
      crypto::Open(u.master, u.row.sealed_private_key,
                   AssociatedData(internal::kPurposePrivateKey, u.row.user, u.row.ngc_key_id));
  if (!key.ok()) return Corruption("Hello private key of '" + u.row.user + "' does not decrypt");
  return crypto::EcdsaSign(*key, data);
}

Status ContainerStore::ChangePin(std::string_view user, const SecretBytes& old_pin,
                                 const SecretBytes& new_pin) {
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(StoreImpl::Unlocked u, impl.Unlock(user, old_pin));
  DM_ASSIGN_OR_RETURN(AppliedPolicy policy, impl.PolicyOrDefault(user));
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  DM_RETURN_IF_ERROR(CheckPin(new_pin, rules));

  Row& row = u.row;
  if (rules.history > 0) {
    DM_ASSIGN_OR_RETURN(History h, OpenHistory(row, u.master, options_.kdf));
    // The current PIN counts as part of the history, even if history was turned on after it
    // was set.
    DM_ASSIGN_OR_RETURN(SecretBytes old_v, impl.Verifier(old_pin, row, h.kdf));
    if (h.verifiers.empty() || !(h.verifiers.back() == old_v))
      h.verifiers.push_back(std::move(old_v));
    DM_ASSIGN_OR_RETURN(SecretBytes new_v, impl.Verifier(new_pin, row, h.kdf));
    const size_t window = std::min(h.verifiers.size(), static_cast<size_t>(rules.history));
    for (size_t i = h.verifiers.size() - window; i < h.verifiers.size(); ++i) {
      if (h.verifiers[i] == new_v) {
        return InvalidArgument("PIN must not be one of the last " + std::to_string(rules.history) +
                               " PINs (History)");
      }
    }
    h.verifiers.push_back(std::move(new_v));
    TrimHistory(h, rules.history);
    DM_ASSIGN_OR_RETURN(row.sealed_history, SealHistory(h, row, u.master, *options_.random));
  } else {
    row.sealed_history.reset();
  }
  DM_RETURN_IF_ERROR(impl.WrapUnderPin(row, new_pin, u.master));
  impl.MaybeArmProtector(row, u.master, policy, /*force_rotate=*/false);
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_RETURN_IF_ERROR(WriteRow(db_, sealer_, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("container '{}': PIN changed", row.user);
  return Status::Ok();
}

Status ContainerStore::ResetPinNonDestructive(std::string_view user, PinResetService& service,
                                              const ResetCredentials& credentials,
                                              const SecretBytes& new_pin) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(std::optional<Row> loaded, LoadRow(db_, user));
  if (!loaded) return NoContainer(user);
  Row row = std::move(*loaded);
  if (!row.encrypted_protector || !row.protector_wrapped_master) {
    return FailedPrecondition(
        "non-destructive PIN reset is not available for '" + row.user +
        "': the container has no PIN reset protector (PIN recovery is off, the reset service "
        "key is unknown, or the user has not unlocked with the PIN since recovery was turned "
        "on); only a destructive reset is possible");
  }
  DM_ASSIGN_OR_RETURN(AppliedPolicy policy, impl.PolicyOrDefault(user));
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  DM_RETURN_IF_ERROR(CheckPin(new_pin, rules));

  SecretBytes master;
  {
    DM_ASSIGN_OR_RETURN(SecretBytes protector,
                        service.RecoverProtector(user, *row.encrypted_protector, credentials));
    auto opened =
        crypto::Open(protector, *row.protector_wrapped_master,
                     AssociatedData(internal::kPurposeProtectorWrap, row.user, row.ngc_key_id));
    protector.Wipe();  // used once, gone before anything else happens
    if (!opened.ok()) {
      return Corruption(
          "the PIN reset protector returned by the service does not unlock the "
          "container of '" +
          row.user + "'");
    }
    master = std::move(*opened);
  }
  const std::string thumbprint = row.thumbprint;
  const Row old_row = row;
  // History is not kept through a reset: a new salt and only the new PIN.
  DM_ASSIGN_OR_RETURN(row.history_salt, options_.random->Public(kSaltSize));
  row.sealed_history.reset();
  if (rules.history > 0) {
    History h;
    h.kdf = options_.kdf;
    DM_ASSIGN_OR_RETURN(SecretBytes v, impl.Verifier(new_pin, row, h.kdf));
    h.verifiers.push_back(std::move(v));
    DM_ASSIGN_OR_RETURN(row.sealed_history, SealHistory(h, row, master, *options_.random));
  }
  DM_RETURN_IF_ERROR(impl.WrapUnderPin(row, new_pin, master));
  row.failed_attempts = 0;
  row.lockouts = 0;
  row.locked_until.reset();
  // Rotate: the old protector has been seen by the service and is retired.
  row.encrypted_protector.reset();
  row.protector_wrapped_master.reset();
  row.protector_key_sha256.reset();
  row.protector_created_at.reset();
  impl.MaybeArmProtector(row, master, policy, /*force_rotate=*/true);

  const TimePoint now = options_.clock->Now();
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_RETURN_IF_ERROR(WriteRow(db_, sealer_, row));
  DM_RETURN_IF_ERROR(impl.RecordReset(user, ResetKind::kNonDestructive, old_row, thumbprint, now));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("container '{}': non-destructive PIN reset; key {} kept, protector rotated",
               row.user, row.ngc_key_id);
  return Status::Ok();
}

Result<ContainerInfo> ContainerStore::ResetPinDestructive(std::string_view user,
                                                          UserAuthenticator& authenticator,
                                                          const ResetCredentials& credentials,
                                                          const SecretBytes& new_pin) {
  DM_RETURN_IF_ERROR(internal::ValidateUserName(user));
  StoreImpl impl(db_, sealer_, options_);
  DM_ASSIGN_OR_RETURN(std::optional<Row> loaded, LoadRow(db_, user));
  if (!loaded) return NoContainer(user);
  DM_ASSIGN_OR_RETURN(AppliedPolicy policy, impl.PolicyOrDefault(user));
  // A destructive reset provisions anew; refuse before destroying anything if policy would not
  // allow the new container (decision 7: never destroy credentials without replacing them).
  if (!policy.hello_enabled) {
    return FailedPrecondition(
        "destructive PIN reset refused for '" + std::string(user) +
        "': Windows Hello is turned off by policy (UsePassportForWork=false), so no new "
        "container could be provisioned; the existing container is kept");
  }
  if (policy.require_security_device) {
    return FailedPrecondition("destructive PIN reset refused for '" + std::string(user) +
                              "': RequireSecurityDevice=true and this container is "
                              "software-backed; the existing container is kept");
  }
  DM_ASSIGN_OR_RETURN(PinRules rules, ResolvePinRules(policy.complexity));
  DM_RETURN_IF_ERROR(CheckPin(new_pin, rules));
  DM_RETURN_IF_ERROR(authenticator.Authenticate(user, credentials));

  SecretBytes master;
  DM_ASSIGN_OR_RETURN(Row row, impl.NewContainer(user, new_pin, policy, master));
  const TimePoint now = options_.clock->Now();
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_RETURN_IF_ERROR(WriteRow(db_, sealer_, row));  // replaces the old row: old keys are gone
  DM_RETURN_IF_ERROR(impl.RecordReset(user, ResetKind::kDestructive, *loaded, row.thumbprint, now));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::warn(
      "container '{}': destructive PIN reset; key {} (certificate {}) deleted, new key "
      "{} (certificate {})",
      row.user, loaded->ngc_key_id, loaded->thumbprint, row.ngc_key_id, row.thumbprint);
  return impl.Info(user);
}

Result<ContainerInfo> ContainerStore::Info(std::string_view user) {
  StoreImpl impl(db_, sealer_, options_);
  return impl.Info(user);
}

Result<int> ContainerStore::SealLegacyContainers() {
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(storage::Statement st, db_.Prepare(std::string("SELECT ") + kRowColumns +
                                                         " FROM container WHERE seal_version = ?"));
  st.Bind(1, kUnsealed);
  std::vector<Row> rows;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool has, st.Step());
    if (!has) break;
    rows.push_back(ReadRow(st));
  }
  for (Row& row : rows) {
    DM_RETURN_IF_ERROR(SealLegacyRow(db_, sealer_, row));
    spdlog::info("container '{}': sealed under the device key", row.user);
  }
  DM_RETURN_IF_ERROR(tx.Commit());
  return static_cast<int>(rows.size());
}

Result<std::vector<std::string>> ContainerStore::Users() {
  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db_.Prepare("SELECT user FROM container UNION SELECT user FROM "
                                  "container_policy ORDER BY 1"));
  std::vector<std::string> users;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool has, st.Step());
    if (!has) break;
    users.push_back(st.Text(0));
  }
  return users;
}

}  // namespace dm::container
