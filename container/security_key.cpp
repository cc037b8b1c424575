// SecurityKeyStore: software FIDO2 authenticators in the agent database.
//
// Key hierarchy per security key:
//   device key (32 random bytes, file state_dir/security-keys.key, 0600, never in the database)
//     seals: the authenticator secret (32 random bytes per key), sealed once more under the
//            device's KeySealer (machine.key)                    -> security_key.sealed_secret
//   KeySealer
//     MACs: the PIN state (retries, failures, PIN set, policy)   -> security_key.counter_mac
//   authenticator secret
//     seals: each credential's private key PEM                   -> *_credential.sealed_private_key
//            the PIN verifier record                             -> security_key.sealed_pin
// authenticatorReset draws a new authenticator secret, so anything sealed under the old one that
// survives in free pages or the WAL can no longer be opened.
#include "container/security_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/key_file.h"
#include "base/pki.h"
#include "container/security_key_internal.h"

namespace dm::container {

// ---------------------------------------------------------------------------------------------
// internal helpers

namespace internal {

std::string SecurityKeyAssociatedData(std::string_view purpose, std::string_view user,
                                      std::string_view key_id, std::string_view credential_id_hex) {
  std::string ad(purpose);
  ad += '\n';
  ad += std::to_string(user.size());
  ad += ':';
  ad += user;
  ad += '\n';
  ad += std::to_string(key_id.size());
  ad += ':';
  ad += key_id;
  ad += '\n';
  ad += credential_id_hex;
  return ad;
}

Result<int> CountUtf8CodePoints(std::string_view text) {
  int count = 0;
  size_t i = 0;
  const auto at = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  while (i < text.size()) {
    const uint8_t b = at(i);
    size_t len = 0;
    uint8_t lo = 0x80;  // the allowed range of the second byte (RFC 3629 table 4)
    uint8_t hi = 0xBF;
    if (b <= 0x7F) {
      len = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // no overlong forms
      if (b == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return InvalidArgument("invalid UTF-8 lead byte at offset " + std::to_string(i));
    }
    if (i + len > text.size()) {
      return InvalidArgument("truncated UTF-8 sequence at offset " + std::to_string(i));
    }
    for (size_t k = 1; k < len; ++k) {
      const uint8_t c = at(i + k);
      const uint8_t min = k == 1 ? lo : 0x80;
      const uint8_t max = k == 1 ? hi : 0xBF;
      if (c < min || c > max) {
        return InvalidArgument("invalid UTF-8 sequence at offset " + std::to_string(i));
      }
    }
    i += len;
    ++count;
  }
  return count;
}

Result<SecretBytes> PinHash(const SecretBytes& pin) {
  DM_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256(pin.span()));
  SecretBytes out(digest.data(), 16);
  OPENSSL_cleanse(digest.data(), digest.size());
  return out;
}

Result<SecretBytes> LoadOrCreateDeviceKey(const std::filesystem::path& file,
                                          crypto::Random& random) {
  return LoadOrCreateKeyFile(file, random);
}

Result<Bytes> CoseKeyFromPem(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN PUBLIC KEY-----";
  constexpr std::string_view kEnd = "-----END PUBLIC KEY-----";
  const size_t b = pem.find(kBegin);
  const size_t e = pem.find(kEnd);
  if (b == std::string_view::npos || e == std::string_view::npos || e < b) {
    return InvalidArgument("not a PEM public key");
  }
  std::string body;
  for (char c : pem.substr(b + kBegin.size(), e - b - kBegin.size())) {
    if (c != '\n' && c != '\r' && c != ' ') body += c;
  }
  DM_ASSIGN_OR_RETURN(Bytes der, crypto::Base64Decode(body));
  // SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } BIT STRING 04 || x || y.
  static constexpr uint8_t kP256Spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                          0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                          0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
  if (der.size() != sizeof kP256Spki + 64 ||
      !std::equal(std::begin(kP256Spki), std::end(kP256Spki), der.begin())) {
    return InvalidArgument("not an uncompressed P-256 public key");
  }
  // {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}
  Bytes cose = {0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20};
  cose.insert(cose.end(), der.begin() + sizeof kP256Spki, der.begin() + sizeof kP256Spki + 32);
  cose.insert(cose.end(), {0x22, 0x58, 0x20});
  cose.insert(cose.end(), der.begin() + sizeof kP256Spki + 32, der.end());
  return cose;
}

Result<Bytes> AaguidOf(std::string_view key_id) {
  std::string hex;
  for (char c : key_id) {
    if (c != '-') hex += c;
  }
  if (key_id.size() != 36 || hex.size() != 32) return InvalidArgument("malformed key id");
  return crypto::HexDecode(hex);
}

Result<Bytes> AuthenticatorData(std::string_view rp_id, uint8_t flags, uint32_t sign_count,
                                std::span<const uint8_t> attested_credential_data) {
  DM_ASSIGN_OR_RETURN(Bytes data, crypto::Sha256(crypto::AsBytes(rp_id)));
  data.push_back(flags);
  for (int shift = 24; shift >= 0; shift -= 8) {
    data.push_back(static_cast<uint8_t>(sign_count >> shift));
  }
  data.insert(data.end(), attested_credential_data.begin(), attested_credential_data.end());
  return data;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------

namespace {

using internal::SecurityKeyAssociatedData;

constexpr size_t kSaltSize = 16;
constexpr size_t kVerifierSize = 16;
constexpr size_t kCredentialIdSize = 16;
constexpr uint8_t kPinRecordVersion = 1;
constexpr uint8_t kFlagUserPresent = 0x01;
constexpr uint8_t kFlagUserVerified = 0x04;
constexpr uint8_t kFlagAttestedData = 0x40;
constexpr int kMaxLabelBytes = 64;
constexpr int kMaxRpIdBytes = 253;
constexpr int kMaxUserNameBytes = 256;

struct CtapEntry {
  CtapError error;
  std::string_view name;
};
constexpr CtapEntry kCtapNames[] = {
    {CtapError::kInvalidParameter, "CTAP1_ERR_INVALID_PARAMETER"},
    {CtapError::kInvalidLength, "CTAP1_ERR_INVALID_LENGTH"},
    {CtapError::kOperationDenied, "CTAP2_ERR_OPERATION_DENIED"},
    {CtapError::kNoCredentials, "CTAP2_ERR_NO_CREDENTIALS"},
    {CtapError::kNotAllowed, "CTAP2_ERR_NOT_ALLOWED"},
    {CtapError::kPinInvalid, "CTAP2_ERR_PIN_INVALID"},
    {CtapError::kPinBlocked, "CTAP2_ERR_PIN_BLOCKED"},
    {CtapError::kPinAuthBlocked, "CTAP2_ERR_PIN_AUTH_BLOCKED"},
    {CtapError::kPinNotSet, "CTAP2_ERR_PIN_NOT_SET"},
    {CtapError::kPuatRequired, "CTAP2_ERR_PUAT_REQUIRED"},
    {CtapError::kPinPolicyViolation, "CTAP2_ERR_PIN_POLICY_VIOLATION"},
};

Code DefaultCode(CtapError e) {
  switch (e) {
    case CtapError::kNone:
      return Code::kOk;
    case CtapError::kInvalidParameter:
    case CtapError::kInvalidLength:
    case CtapError::kPinPolicyViolation:
      return Code::kInvalidArgument;
    case CtapError::kOperationDenied:
      return Code::kAborted;
    case CtapError::kNoCredentials:
      return Code::kNotFound;
    case CtapError::kPinInvalid:
    case CtapError::kPuatRequired:
      return Code::kUnauthenticated;
    case CtapError::kNotAllowed:
    case CtapError::kPinBlocked:
    case CtapError::kPinAuthBlocked:
    case CtapError::kPinNotSet:
      return Code::kFailedPrecondition;
  }
  return Code::kInternal;
}

std::string CtapPrefix(CtapError e) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(e));
  return std::string(CtapErrorName(e)) + " (" + hex + ")";
}

Status Ctap(CtapError e, Code code, std::string_view detail) {
  return Status(code, CtapPrefix(e) + ": " + std::string(detail));
}
Status Ctap(CtapError e, std::string_view detail) { return Ctap(e, DefaultCode(e), detail); }

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

Status ValidateUser(std::string_view user) {
  if (user.empty()) return InvalidArgument("user name is empty");
  if (user.size() > 256) return InvalidArgument("user name is longer than 256 bytes");
  if (HasControl(user)) return InvalidArgument("user name has a control character");
  return Status::Ok();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Only hex digits and dashes reach SQL text and messages.
Status ValidateKeyIdText(std::string_view key_id) {
  if (key_id.empty() || key_id.size() > 36) return InvalidArgument("malformed security key id");
  for (char c : key_id) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
    if (!ok) return InvalidArgument("malformed security key id");
  }
  return Status::Ok();
}

Status ValidateRequest(std::string_view rp_id, const Bytes& client_data_hash) {
  if (rp_id.empty() || rp_id.size() > kMaxRpIdBytes) {
    return Ctap(CtapError::kInvalidParameter, "rpId must be 1..253 bytes");
  }
  for (char c : rp_id) {
    if (c <= 0x20 || c >= 0x7f) {
      return Ctap(CtapError::kInvalidParameter, "rpId must be printable ASCII without spaces");
    }
  }
  if (client_data_hash.size() != 32) {
    return Ctap(CtapError::kInvalidLength, "clientDataHash must be 32 bytes (SHA-256), got " +
                                               std::to_string(client_data_hash.size()));
  }
  return Status::Ok();
}

// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower case.
Result<std::string> NewKeyId(crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(Bytes b, random.Public(16));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string hex = crypto::HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

int64_t NowMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

// ---- rows ----

struct KeyRow {
  std::string key_id;
  std::string user;
  std::string label;
  int64_t created_at = 0;
  Bytes sealed_secret;
  std::optional<Bytes> sealed_pin;  // nullopt: no PIN set
  int min_pin_length = kDefaultMinPinLength;
  bool force_pin_change = false;
  int pin_retries = kMaxPinRetries;
  int power_up_failures = 0;
  int64_t powered_up_at_ms = 0;
  std::optional<int64_t> pin_set_at;
  std::optional<Bytes> counter_mac;  // nullopt: written before the KeySealer (legacy)
  // Set on load: false when counter_mac does not verify; the row then reads as blocked.
  bool state_verified = true;
};

constexpr char kKeyColumns[] =
    "k.key_id, k.user, k.label, k.created_at, k.sealed_secret, k.sealed_pin, k.min_pin_length, "
    "k.force_pin_change, k.pin_retries, k.power_up_failures, k.powered_up_at_ms, k.pin_set_at, "
    "k.counter_mac";
constexpr int kKeyColumnCount = 13;

// A sealed authenticator secret from before the KeySealer: nonce, 32-byte secret, GCM tag.
// Sealed again it is longer, and nobody without the sealer can make it this size again.
constexpr size_t kLegacySealedSecretSize = 12 + 32 + 16;

KeyRow ReadKeyRow(const storage::Statement& st) {
  KeyRow r;
  r.key_id = st.Text(0);
  r.user = st.Text(1);
  r.label = st.Text(2);
  r.created_at = st.Int(3);
  r.sealed_secret = st.Blob(4);
  if (!st.IsNull(5)) r.sealed_pin = st.Blob(5);
  r.min_pin_length = static_cast<int>(st.Int(6));
  r.force_pin_change = st.Int(7) != 0;
  r.pin_retries = static_cast<int>(st.Int(8));
  r.power_up_failures = static_cast<int>(st.Int(9));
  r.powered_up_at_ms = st.Int(10);
  if (!st.IsNull(11)) r.pin_set_at = st.Int(11);
  if (!st.IsNull(12)) r.counter_mac = st.Blob(12);
  return r;
}

// What counter_mac authenticates: the PIN state, bound to the user and the key, and to the
// PIN record itself, so neither clearing nor swapping sealed_pin passes.
Result<std::string> PinStateMacData(const KeyRow& r) {
  std::string pin = "-";
  if (r.sealed_pin) {
    DM_ASSIGN_OR_RETURN(Bytes h, crypto::Sha256(*r.sealed_pin));
    pin = crypto::HexEncode(h);
  }
  return SecurityKeyAssociatedData(internal::kPurposePinState, r.user, r.key_id) + "\n" +
         std::to_string(r.pin_retries) + "\n" + std::to_string(r.power_up_failures) + "\n" +
         std::to_string(r.powered_up_at_ms) + "\n" + std::to_string(r.min_pin_length) + "\n" +
         (r.force_pin_change ? "1" : "0") + "\n" + pin;
}

bool IsLegacy(const KeyRow& r) {
  return !r.counter_mac && r.sealed_secret.size() == kLegacySealedSecretSize;
}

std::string SecretSealContext(const KeyRow& r) {
  return SecurityKeyAssociatedData(internal::kPurposeSecretSeal, r.user, r.key_id);
}

// Whether the PIN state is the one this device wrote. A legacy row is taken as it is (its
// upgrade MACs it); anything else without a valid MAC was edited or comes from another machine.
bool PinStateVerifies(KeySealer& sealer, const KeyRow& r) {
  if (IsLegacy(r)) return true;
  if (!r.counter_mac) return false;
  auto data = PinStateMacData(r);
  return data.ok() && sealer.VerifyMac(*data, *r.counter_mac).ok();
}

// A row whose state does not verify is treated as blocked, and keeps reading so: nothing but a
// reset writes a MAC for it again.
void MarkUnverified(KeyRow& r) {
  r.state_verified = false;
  r.pin_retries = 0;
}

Status WriteKeyState(storage::Database& db, KeySealer& sealer, KeyRow& r);

// Loads a key. A legacy row is upgraded in place first: its sealed secret is sealed under the
// KeySealer and its PIN state MACed as it is.
Result<KeyRow> LoadKey(storage::Database& db, KeySealer& sealer, std::string_view user,
                       std::string_view key_id) {
  DM_RETURN_IF_ERROR(ValidateUser(user));
  DM_RETURN_IF_ERROR(ValidateKeyIdText(key_id));
  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db.Prepare(std::string("SELECT ") + kKeyColumns +
                                 " FROM security_key k WHERE k.user = ? AND k.key_id = ?"));
  const std::string id = Lower(key_id);
  st.Bind(1, user).Bind(2, std::string_view(id));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    return NotFound("user '" + std::string(user) + "' has no security key " + id);
  }
  KeyRow r = ReadKeyRow(st);
  if (IsLegacy(r)) {
    DM_ASSIGN_OR_RETURN(r.sealed_secret, sealer.Seal(r.sealed_secret, SecretSealContext(r)));
    DM_RETURN_IF_ERROR(WriteKeyState(db, sealer, r));
    spdlog::info("security key {} of '{}': bound to this device's key sealer", r.key_id, r.user);
  } else if (!PinStateVerifies(sealer, r)) {
    spdlog::warn(
        "security key {} of '{}': PIN state does not verify under this device's key; "
        "treated as blocked",
        r.key_id, r.user);
    MarkUnverified(r);
  }
  return r;
}

// Every operation but a reset refuses a key whose PIN state does not verify.
Status RequireVerified(const KeyRow& r) {
  if (r.state_verified) return Status::Ok();
  return Ctap(CtapError::kPinBlocked,
              "the PIN state of security key " + r.key_id +
                  " does not verify under this device's key (edited in the database, or the "
                  "database came from another device): the key is blocked; only a reset, which "
                  "deletes every credential on it, makes it usable again");
}

// Everything but the identity columns; written after every state change. The MAC is computed
// here, so every write authenticates the state it writes.
Status WriteKeyState(storage::Database& db, KeySealer& sealer, KeyRow& r) {
  if (!r.state_verified) return Internal("security key state written without its verification");
  DM_ASSIGN_OR_RETURN(std::string mac_data, PinStateMacData(r));
  DM_ASSIGN_OR_RETURN(Bytes mac, sealer.Mac(mac_data));
  r.counter_mac = std::move(mac);
  DM_ASSIGN_OR_RETURN(
      storage::Statement st,
      db.Prepare("UPDATE security_key SET sealed_secret = ?, sealed_pin = ?, min_pin_length = ?, "
                 "force_pin_change = ?, pin_retries = ?, power_up_failures = ?, "
                 "powered_up_at_ms = ?, pin_set_at = ?, counter_mac = ? WHERE key_id = ?"));
  st.BindBlob(1, r.sealed_secret);
  if (r.sealed_pin) {
    st.BindBlob(2, *r.sealed_pin);
  } else {
    st.BindNull(2);
  }
  st.Bind(3, r.min_pin_length)
      .Bind(4, r.force_pin_change)
      .Bind(5, r.pin_retries)
      .Bind(6, r.power_up_failures)
      .Bind(7, r.powered_up_at_ms);
  if (r.pin_set_at) {
    st.Bind(8, *r.pin_set_at);
  } else {
    st.BindNull(8);
  }
  st.BindBlob(9, *r.counter_mac).Bind(10, std::string_view(r.key_id));
  return st.Run();
}

// Commits the counters a PIN check changed, then reports the check's verdict.
Status CommitCounters(storage::Database& db, KeySealer& sealer, storage::Transaction& tx,
                      KeyRow& row, Status verdict) {
  DM_RETURN_IF_ERROR(WriteKeyState(db, sealer, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  return verdict;
}

// ---- secrets ----

Result<SecretBytes> OpenAuthenticatorSecret(KeySealer& sealer, const SecretBytes& device_key,
                                            const KeyRow& row) {
  auto inner = sealer.Open(row.sealed_secret, SecretSealContext(row));
  auto secret = inner.ok()
                    ? crypto::Open(device_key, inner->span(),
                                   SecurityKeyAssociatedData(internal::kPurposeAuthenticatorSecret,
                                                             row.user, row.key_id))
                    : Result<SecretBytes>(inner.status());
  if (!secret.ok()) {
    return Corruption("the secret of security key " + row.key_id +
                      " does not open with this device's keys (machine.key or the key file "
                      "replaced, or the database came from another device); only a reset of "
                      "the key recovers it");
  }
  return secret;
}

Result<Bytes> SealAuthenticatorSecret(KeySealer& sealer, const SecretBytes& device_key,
                                      const KeyRow& row, const SecretBytes& secret,
                                      crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(Bytes inner,
                      crypto::Seal(device_key, secret.span(),
                                   SecurityKeyAssociatedData(internal::kPurposeAuthenticatorSecret,
                                                             row.user, row.key_id),
                                   random));
  return sealer.Seal(inner, SecretSealContext(row));
}

Result<SecretBytes> Verifier(std::span<const uint8_t> salt, const SecretBytes& pin_hash) {
  SecretBytes input(salt.data(), salt.size());
  input.resize(salt.size() + pin_hash.size());
  std::memcpy(input.data() + salt.size(), pin_hash.data(), pin_hash.size());
  DM_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256(input.span()));
  SecretBytes out(digest.data(), kVerifierSize);
  OPENSSL_cleanse(digest.data(), digest.size());
  return out;
}

struct PinRecord {
  Bytes salt;
  SecretBytes verifier;
  int code_points = 0;
};

// version(1) || salt(16) || verifier(16) || code points(1), sealed under the authenticator secret.
Result<Bytes> SealPinRecord(const SecretBytes& secret, const KeyRow& row, const SecretBytes& pin,
                            crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(int code_points, internal::CountUtf8CodePoints(pin.view()));
  DM_ASSIGN_OR_RETURN(Bytes salt, random.Public(kSaltSize));
  DM_ASSIGN_OR_RETURN(SecretBytes pin_hash, internal::PinHash(pin));
  DM_ASSIGN_OR_RETURN(SecretBytes verifier, Verifier(salt, pin_hash));
  SecretBytes plain(1 + kSaltSize + kVerifierSize + 1);
  plain.data()[0] = kPinRecordVersion;
  std::memcpy(plain.data() + 1, salt.data(), kSaltSize);
  std::memcpy(plain.data() + 1 + kSaltSize, verifier.data(), kVerifierSize);
  plain.data()[1 + kSaltSize + kVerifierSize] = static_cast<uint8_t>(code_points);
  return crypto::Seal(
      secret, plain.span(),
      SecurityKeyAssociatedData(internal::kPurposePinVerifier, row.user, row.key_id), random);
}

Result<PinRecord> OpenPinRecord(const SecretBytes& secret, const KeyRow& row) {
  auto plain =
      crypto::Open(secret, *row.sealed_pin,
                   SecurityKeyAssociatedData(internal::kPurposePinVerifier, row.user, row.key_id));
  if (!plain.ok()) {
    return Corruption("the PIN record of security key " + row.key_id + " does not open");
  }
  if (plain->size() != 1 + kSaltSize + kVerifierSize + 1 || plain->data()[0] != kPinRecordVersion) {
    return Corruption("the PIN record of security key " + row.key_id + " is malformed");
  }
  PinRecord rec;
  rec.salt.assign(plain->data() + 1, plain->data() + 1 + kSaltSize);
  rec.verifier = SecretBytes(plain->data() + 1 + kSaltSize, kVerifierSize);
  rec.code_points = plain->data()[1 + kSaltSize + kVerifierSize];
  return rec;
}

Result<bool> PinMatches(const PinRecord& rec, const SecretBytes& pin) {
  DM_ASSIGN_OR_RETURN(SecretBytes pin_hash, internal::PinHash(pin));
  DM_ASSIGN_OR_RETURN(SecretBytes candidate, Verifier(rec.salt, pin_hash));
  return candidate == rec.verifier;  // constant time
}

// ---- clientPIN state machine ----

std::string RetriesText(int n) {
  return std::to_string(n) + (n == 1 ? " retry left" : " retries left");
}

Status PinUsable(const KeyRow& row) {
  if (!row.sealed_pin) return Ctap(CtapError::kPinNotSet, "no PIN is set on this security key");
  if (row.pin_retries <= 0) {
    return Ctap(CtapError::kPinBlocked,
                "the PIN is blocked (no retries left); only a reset of the key, which deletes "
                "every credential on it, makes it usable again");
  }
  if (row.power_up_failures >= kMaxPinFailuresPerPowerUp) {
    return Ctap(CtapError::kPinAuthBlocked,
                "3 wrong PINs since the key was inserted; remove and re-insert it (power "
                "cycle) to try again, " +
                    RetriesText(row.pin_retries));
  }
  return Status::Ok();
}

// CTAP order: refuse when blocked, decrement pinRetries, compare; a match restores the counters,
// a mismatch counts against this power-up too. The caller persists `row` whatever the verdict.
Status VerifyPin(KeyRow& row, const SecretBytes& secret, const SecretBytes& pin) {
  DM_RETURN_IF_ERROR(PinUsable(row));
  DM_ASSIGN_OR_RETURN(PinRecord rec, OpenPinRecord(secret, row));
  row.pin_retries -= 1;
  DM_ASSIGN_OR_RETURN(bool match, PinMatches(rec, pin));
  if (match) {
    row.pin_retries = kMaxPinRetries;
    row.power_up_failures = 0;
    return Status::Ok();
  }
  row.power_up_failures += 1;
  spdlog::info("security key {} of '{}': incorrect PIN ({} retries left)", row.key_id, row.user,
               row.pin_retries);
  if (row.pin_retries <= 0) {
    spdlog::warn("security key {} of '{}': PIN blocked", row.key_id, row.user);
    return Ctap(CtapError::kPinBlocked,
                "incorrect PIN and no retries left: the PIN is blocked; only a reset of the key, "
                "which deletes every credential on it, makes it usable again");
  }
  if (row.power_up_failures >= kMaxPinFailuresPerPowerUp) {
    return Ctap(CtapError::kPinAuthBlocked,
                "incorrect PIN, 3 times since the key was inserted; remove and re-insert it "
                "(power cycle) to try again, " +
                    RetriesText(row.pin_retries));
  }
  return Ctap(CtapError::kPinInvalid, "incorrect PIN, " + RetriesText(row.pin_retries));
}

// Refuses a PIN the platform would never send: not a CTAP error, no retry used.
Status CheckCurrentPinShape(const SecretBytes& pin) {
  auto n = internal::CountUtf8CodePoints(pin.view());
  if (!n.ok() || *n < kDefaultMinPinLength || pin.size() > kMaxPinBytes) {
    return InvalidArgument(
        "the PIN entered cannot be this key's PIN (4 to 63 bytes of UTF-8); no retry was used");
  }
  return Status::Ok();
}

struct UvDecision {
  bool pin_setup_required = false;
  std::string reason;
  bool user_verified = false;
};

// The WebAuthn userVerification rules (reference section 5 and KB5073129).
Result<UvDecision> DecideUv(KeyRow& row, const SecretBytes& secret, UserVerification uv,
                            const SecretBytes* pin, bool assertion, bool setup_on_preferred) {
  UvDecision d;
  if (uv == UserVerification::kDiscouraged) return d;  // no PIN asked, UV clear
  if (!row.sealed_pin) {
    // Every software key supports clientPIN, so a request that wants UV can always get it
    // once a PIN exists.
    if (uv == UserVerification::kRequired) {
      d.pin_setup_required = true;
      d.reason = "userVerification \"required\" and the security key has no PIN: create one first";
    } else if (!assertion || setup_on_preferred) {
      d.pin_setup_required = true;
      d.reason =
          "userVerification \"preferred\" and the security key supports a PIN but has none: "
          "create one first";
    }
    return d;
  }
  DM_RETURN_IF_ERROR(PinUsable(row));
  if (pin == nullptr) {
    return Ctap(CtapError::kPuatRequired,
                "the security key has a PIN and the request wants user verification: ask the "
                "user for the PIN");
  }
  DM_RETURN_IF_ERROR(CheckCurrentPinShape(*pin));
  DM_RETURN_IF_ERROR(VerifyPin(row, secret, *pin));
  if (row.force_pin_change) {
    return Ctap(CtapError::kPinPolicyViolation, Code::kFailedPrecondition,
                "the security key requires a PIN change (forcePINChange) before it verifies the "
                "user: change the PIN first");
  }
  d.user_verified = true;
  return d;
}

Result<Bytes> CredentialIdFromHex(std::string_view hex) { return crypto::HexDecode(hex); }

TimePoint FromMs(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

Result<std::vector<SecurityKeyInfo>> QueryInfos(storage::Database& db, KeySealer& sealer,
                                                std::string_view where,
                                                std::optional<std::string_view> user,
                                                std::optional<std::string_view> key_id) {
  DM_ASSIGN_OR_RETURN(
      storage::Statement st,
      db.Prepare(std::string("SELECT ") + kKeyColumns +
                 ", (SELECT COUNT(*) FROM security_key_credential c WHERE c.key_id = k.key_id)"
                 ", (SELECT MAX(r.at) FROM security_key_reset r WHERE r.key_id = k.key_id)"
                 " FROM security_key k " +
                 std::string(where) + " ORDER BY k.user, k.created_at, k.rowid"));
  int i = 0;
  if (user) st.Bind(++i, *user);
  if (key_id) st.Bind(++i, *key_id);
  std::vector<SecurityKeyInfo> out;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    KeyRow r = ReadKeyRow(st);
    if (!PinStateVerifies(sealer, r)) MarkUnverified(r);
    SecurityKeyInfo info;
    info.key_id = r.key_id;
    info.user = r.user;
    info.label = r.label;
    info.created_at = FromUnixSeconds(r.created_at);
    info.pin_set = r.sealed_pin.has_value();
    info.pin_retries = r.pin_retries;
    info.failures_since_power_up = r.power_up_failures;
    info.state_verified = r.state_verified;
    if (!r.state_verified || (info.pin_set && r.pin_retries <= 0)) {
      info.blocked = PinBlockState::kPinBlocked;
    } else if (info.pin_set && r.power_up_failures >= kMaxPinFailuresPerPowerUp) {
      info.blocked = PinBlockState::kPinAuthBlocked;
    }
    info.min_pin_length = r.min_pin_length;
    info.force_pin_change = r.force_pin_change;
    info.credential_count = static_cast<int>(st.Int(kKeyColumnCount));
    if (r.pin_set_at) info.pin_set_at = FromUnixSeconds(*r.pin_set_at);
    info.powered_up_at = FromMs(r.powered_up_at_ms);
    if (!st.IsNull(kKeyColumnCount + 1)) {
      info.last_reset_at = FromUnixSeconds(st.Int(kKeyColumnCount + 1));
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// public free functions

std::string_view CtapErrorName(CtapError e) {
  for (const auto& entry : kCtapNames) {
    if (entry.error == e) return entry.name;
  }
  return "CTAP2_OK";
}

CtapError CtapErrorOf(const Status& status) {
  if (status.ok()) return CtapError::kNone;
  CtapError found = CtapError::kNone;
  size_t first = std::string::npos;
  for (const auto& entry : kCtapNames) {
    const size_t at = status.message().find(CtapPrefix(entry.error) + ":");
    if (at < first) {
      first = at;
      found = entry.error;
    }
  }
  return found;
}

Status CheckSecurityKeyPin(const SecretBytes& pin, int min_pin_length) {
  auto code_points = internal::CountUtf8CodePoints(pin.view());
  if (!code_points.ok()) {
    return Ctap(CtapError::kPinPolicyViolation, "the PIN is not valid UTF-8");
  }
  if (std::find(pin.view().begin(), pin.view().end(), '\0') != pin.view().end()) {
    return Ctap(CtapError::kPinPolicyViolation, "the PIN contains a NUL character");
  }
  if (pin.size() > kMaxPinBytes) {
    return Ctap(CtapError::kPinPolicyViolation,
                "the PIN is " + std::to_string(pin.size()) +
                    " bytes in UTF-8; a security key accepts at most 63");
  }
  if (*code_points < min_pin_length) {
    return Ctap(CtapError::kPinPolicyViolation,
                "the PIN has " + std::to_string(*code_points) +
                    " characters; this security key requires at least " +
                    std::to_string(min_pin_length));
  }
  return Status::Ok();
}

Result<UserVerification> ParseUserVerification(std::string_view text) {
  if (text == "required") return UserVerification::kRequired;
  if (text == "preferred") return UserVerification::kPreferred;
  if (text == "discouraged") return UserVerification::kDiscouraged;
  return InvalidArgument("userVerification must be required, preferred or discouraged");
}

std::string_view UserVerificationName(UserVerification uv) {
  switch (uv) {
    case UserVerification::kRequired:
      return "required";
    case UserVerification::kPreferred:
      return "preferred";
    case UserVerification::kDiscouraged:
      return "discouraged";
  }
  return "preferred";
}

std::string_view PinBlockStateName(PinBlockState s) {
  switch (s) {
    case PinBlockState::kNone:
      return "none";
    case PinBlockState::kPinAuthBlocked:
      return "PIN_AUTH_BLOCKED";
    case PinBlockState::kPinBlocked:
      return "PIN_BLOCKED";
  }
  return "none";
}

Bytes SignedData(const Bytes& authenticator_data, const Bytes& client_data_hash) {
  Bytes out = authenticator_data;
  out.insert(out.end(), client_data_hash.begin(), client_data_hash.end());
  return out;
}

Result<SecretBytes> internal::OpenCredentialPrivateKey(storage::Database& db, KeySealer& sealer,
                                                       const std::filesystem::path& device_key_file,
                                                       std::string_view user,
                                                       std::string_view key_id,
                                                       std::span<const uint8_t> credential_id) {
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db, sealer, user, key_id));
  DM_ASSIGN_OR_RETURN(SecretBytes device_key,
                      LoadOrCreateDeviceKey(device_key_file, crypto::OsRandom()));
  DM_ASSIGN_OR_RETURN(SecretBytes secret, OpenAuthenticatorSecret(sealer, device_key, row));
  const std::string cred_hex = crypto::HexEncode(credential_id);
  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db.Prepare("SELECT sealed_private_key FROM security_key_credential "
                                 "WHERE key_id = ? AND credential_id = ?"));
  st.Bind(1, std::string_view(row.key_id)).Bind(2, std::string_view(cred_hex));
  DM_ASSIGN_OR_RETURN(bool found, st.Step());
  if (!found) return NotFound("no credential " + cred_hex);
  return crypto::Open(
      secret, st.Blob(0),
      SecurityKeyAssociatedData(kPurposeCredentialKey, row.user, row.key_id, cred_hex));
}

// ---------------------------------------------------------------------------------------------
// SecurityKeyStore

SecurityKeyStore::SecurityKeyStore(storage::Database& db, SecurityKeyOptions options)
    : db_(db), options_(std::move(options)) {}

Result<const SecretBytes*> SecurityKeyStore::DeviceKey() {
  if (!device_key_) {
    if (options_.device_key_file.empty()) {
      return FailedPrecondition("no security-key device key file is configured");
    }
    DM_ASSIGN_OR_RETURN(SecretBytes key, internal::LoadOrCreateDeviceKey(options_.device_key_file,
                                                                         *options_.random));
    device_key_ = std::move(key);
  }
  return &*device_key_;
}

Result<KeySealer*> SecurityKeyStore::Sealer() {
  if (options_.sealer == nullptr)
    return FailedPrecondition("the security-key store has no key sealer");
  return options_.sealer;
}

Result<std::string> SecurityKeyStore::Create(std::string_view user, std::string_view label) {
  DM_RETURN_IF_ERROR(ValidateUser(user));
  auto label_points = internal::CountUtf8CodePoints(label);
  if (label.empty() || label.size() > kMaxLabelBytes || !label_points.ok() || HasControl(label)) {
    return InvalidArgument(
        "a security key label is 1..64 bytes of UTF-8 without control "
        "characters");
  }
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  KeyRow row;
  DM_ASSIGN_OR_RETURN(row.key_id, NewKeyId(*options_.random));
  row.user = std::string(user);
  row.label = std::string(label);
  row.created_at = ToUnixSeconds(options_.clock->Now());
  row.powered_up_at_ms = NowMs(*options_.clock);
  DM_ASSIGN_OR_RETURN(SecretBytes secret, options_.random->Secret(crypto::kAesKeySize));
  DM_ASSIGN_OR_RETURN(row.sealed_secret,
                      SealAuthenticatorSecret(*sealer, *device_key, row, secret, *options_.random));
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(
      storage::Statement ins,
      db_.Prepare("INSERT INTO security_key (key_id, user, label, created_at, sealed_secret, "
                  "min_pin_length, force_pin_change, pin_retries, power_up_failures, "
                  "powered_up_at_ms) VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0, ?)"));
  ins.BindAll(std::string_view(row.key_id), user, label, row.created_at);
  ins.BindBlob(5, row.sealed_secret)
      .Bind(6, kDefaultMinPinLength)
      .Bind(7, kMaxPinRetries)
      .Bind(8, row.powered_up_at_ms);
  DM_RETURN_IF_ERROR(ins.Run());
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));  // the first MAC of its PIN state
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("security key {} created for '{}'", row.key_id, row.user);
  return row.key_id;
}

Result<std::vector<SecurityKeyInfo>> SecurityKeyStore::List(std::string_view user) {
  DM_RETURN_IF_ERROR(ValidateUser(user));
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  return QueryInfos(db_, *sealer, "WHERE k.user = ?", user, std::nullopt);
}

Result<std::vector<SecurityKeyInfo>> SecurityKeyStore::ListAll() {
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  return QueryInfos(db_, *sealer, "", std::nullopt, std::nullopt);
}

Result<SecurityKeyInfo> SecurityKeyStore::Get(std::string_view user, std::string_view key_id) {
  DM_RETURN_IF_ERROR(ValidateUser(user));
  DM_RETURN_IF_ERROR(ValidateKeyIdText(key_id));
  const std::string id = Lower(key_id);
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(auto infos,
                      QueryInfos(db_, *sealer, "WHERE k.user = ? AND k.key_id = ?", user, id));
  if (infos.empty()) return NotFound("user '" + std::string(user) + "' has no security key " + id);
  return std::move(infos.front());
}

Result<std::string> SecurityKeyStore::ResolveKey(std::string_view user,
                                                 std::optional<std::string_view> key_id) {
  DM_ASSIGN_OR_RETURN(auto keys, List(user));
  const std::string who = "user '" + std::string(user) + "'";
  auto names = [&keys] {
    std::string s;
    for (const auto& k : keys) s += (s.empty() ? "" : ", ") + k.key_id + " (" + k.label + ")";
    return s;
  };
  if (!key_id) {
    if (keys.empty()) return NotFound(who + " has no security key");
    if (keys.size() > 1) {
      return InvalidArgument(who + " has " + std::to_string(keys.size()) +
                             " security keys; name one: " + names());
    }
    return keys.front().key_id;
  }
  DM_RETURN_IF_ERROR(ValidateKeyIdText(*key_id));
  const std::string want = Lower(*key_id);
  std::vector<std::string> matches;
  for (const auto& k : keys) {
    if (k.key_id == want) return k.key_id;
    if (want.size() >= 4 && k.key_id.compare(0, want.size(), want) == 0) {
      matches.push_back(k.key_id);
    }
  }
  if (matches.size() == 1) return matches.front();
  if (matches.empty()) {
    return NotFound(who + " has no security key " + want +
                    (keys.empty() ? std::string() : "; their keys: " + names()));
  }
  return InvalidArgument("\"" + want + "\" names more than one security key of " + who + ": " +
                         names());
}

Result<std::vector<CredentialInfo>> SecurityKeyStore::Credentials(std::string_view user,
                                                                  std::string_view key_id) {
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db_.Prepare("SELECT credential_id, rp_id, user_name, public_key_pem, "
                                  "sign_count, created_at FROM security_key_credential "
                                  "WHERE key_id = ? ORDER BY created_at, rowid"));
  st.Bind(1, std::string_view(row.key_id));
  std::vector<CredentialInfo> out;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    CredentialInfo c;
    DM_ASSIGN_OR_RETURN(c.credential_id, CredentialIdFromHex(st.Text(0)));
    c.rp_id = st.Text(1);
    c.user_name = st.Text(2);
    c.public_key_pem = st.Text(3);
    c.sign_count = static_cast<uint32_t>(st.Int(4));
    c.created_at = FromUnixSeconds(st.Int(5));
    out.push_back(std::move(c));
  }
  return out;
}

Status SecurityKeyStore::PowerCycle(std::string_view user, std::string_view key_id) {
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_RETURN_IF_ERROR(RequireVerified(row));
  row.powered_up_at_ms = NowMs(*options_.clock);
  row.power_up_failures = 0;
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  return tx.Commit();
}

Status SecurityKeyStore::SetPin(std::string_view user, std::string_view key_id,
                                const SecretBytes& new_pin) {
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_RETURN_IF_ERROR(RequireVerified(row));
  if (row.sealed_pin) {
    return Ctap(CtapError::kNotAllowed,
                "the security key already has a PIN; change it with the current PIN instead");
  }
  DM_RETURN_IF_ERROR(CheckSecurityKeyPin(new_pin, row.min_pin_length));
  DM_ASSIGN_OR_RETURN(SecretBytes secret, OpenAuthenticatorSecret(*sealer, *device_key, row));
  DM_ASSIGN_OR_RETURN(Bytes sealed, SealPinRecord(secret, row, new_pin, *options_.random));
  row.sealed_pin = std::move(sealed);
  row.pin_retries = kMaxPinRetries;
  row.power_up_failures = 0;
  row.pin_set_at = ToUnixSeconds(options_.clock->Now());
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("security key {} of '{}': PIN set", row.key_id, row.user);
  return Status::Ok();
}

Status SecurityKeyStore::ChangePin(std::string_view user, std::string_view key_id,
                                   const SecretBytes& current_pin, const SecretBytes& new_pin) {
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_RETURN_IF_ERROR(RequireVerified(row));
  DM_RETURN_IF_ERROR(PinUsable(row));
  // Platform side first, as browsers do: a new PIN the key would refuse costs no retry. The
  // current PIN is checked against 4, the new one against the key's (maybe raised) minimum.
  DM_RETURN_IF_ERROR(CheckCurrentPinShape(current_pin));
  DM_RETURN_IF_ERROR(CheckSecurityKeyPin(new_pin, row.min_pin_length));
  DM_ASSIGN_OR_RETURN(SecretBytes secret, OpenAuthenticatorSecret(*sealer, *device_key, row));
  const Status verdict = VerifyPin(row, secret, current_pin);
  if (!verdict.ok()) return CommitCounters(db_, *sealer, tx, row, verdict);
  if (row.force_pin_change) {
    DM_ASSIGN_OR_RETURN(PinRecord rec, OpenPinRecord(secret, row));
    DM_ASSIGN_OR_RETURN(bool same, PinMatches(rec, new_pin));
    if (same) {
      return CommitCounters(
          db_, *sealer, tx, row,
          Ctap(CtapError::kPinPolicyViolation,
               "the key requires a new PIN (forcePINChange); the new PIN equals the current one"));
    }
  }
  DM_ASSIGN_OR_RETURN(Bytes sealed, SealPinRecord(secret, row, new_pin, *options_.random));
  row.sealed_pin = std::move(sealed);
  row.force_pin_change = false;
  row.pin_set_at = ToUnixSeconds(options_.clock->Now());
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("security key {} of '{}': PIN changed", row.key_id, row.user);
  return Status::Ok();
}

Status SecurityKeyStore::SetMinPinLength(std::string_view user, std::string_view key_id,
                                         int new_min_length, bool force_change_pin,
                                         const SecretBytes* pin) {
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_RETURN_IF_ERROR(RequireVerified(row));
  if (new_min_length < row.min_pin_length) {
    return Ctap(CtapError::kPinPolicyViolation, "minPINLength can only be raised (it is " +
                                                    std::to_string(row.min_pin_length) +
                                                    "); only a reset of the key lowers it");
  }
  if (new_min_length > kMaxPinBytes) {
    return Ctap(CtapError::kPinPolicyViolation,
                "minPINLength cannot exceed 63 (a PIN is at most 63 bytes)");
  }
  if (force_change_pin && !row.sealed_pin) {
    return Ctap(CtapError::kPinNotSet, "forceChangePin needs a PIN to be set");
  }
  DM_ASSIGN_OR_RETURN(SecretBytes secret, OpenAuthenticatorSecret(*sealer, *device_key, row));
  if (row.sealed_pin) {
    // authenticatorConfig needs a pinUvAuthToken once a PIN exists; the token needs the PIN.
    DM_RETURN_IF_ERROR(PinUsable(row));
    if (pin == nullptr) {
      return Ctap(CtapError::kPuatRequired, "changing minPINLength needs the key's PIN");
    }
    DM_RETURN_IF_ERROR(CheckCurrentPinShape(*pin));
    const Status verdict = VerifyPin(row, secret, *pin);
    if (!verdict.ok()) return CommitCounters(db_, *sealer, tx, row, verdict);
    if (row.force_pin_change) {
      return CommitCounters(db_, *sealer, tx, row,
                            Ctap(CtapError::kPinPolicyViolation, Code::kFailedPrecondition,
                                 "the key requires a PIN change (forcePINChange) first"));
    }
    DM_ASSIGN_OR_RETURN(PinRecord rec, OpenPinRecord(secret, row));
    if (rec.code_points < new_min_length) row.force_pin_change = true;
  }
  row.min_pin_length = new_min_length;
  if (force_change_pin) row.force_pin_change = true;
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("security key {} of '{}': minPINLength {}{}", row.key_id, row.user, new_min_length,
               row.force_pin_change ? ", PIN change required" : "");
  return Status::Ok();
}

Result<int> SecurityKeyStore::Reset(std::string_view user, std::string_view key_id,
                                    ResetConfirmation confirm) {
  // The old authenticator secret is not needed: a key whose secret no longer opens can still be
  // reset, which is the way out of that state.
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  const int64_t since_ms = NowMs(*options_.clock) - row.powered_up_at_ms;
  const int64_t window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(kResetWindow).count();
  if (since_ms < 0 || since_ms > window_ms) {
    return Ctap(CtapError::kNotAllowed,
                "a security key accepts a reset only within 10 s of being inserted (it was " +
                    std::to_string(since_ms / 1000) +
                    " s ago); remove and re-insert the key, then reset at once");
  }
  if (confirm != ResetConfirmation::kDestroyAllCredentials) {
    return Ctap(CtapError::kOperationDenied, "the reset was not confirmed; nothing was changed");
  }
  DM_ASSIGN_OR_RETURN(storage::Statement count,
                      db_.Prepare("SELECT COUNT(*) FROM security_key_credential WHERE key_id = ?"));
  count.Bind(1, std::string_view(row.key_id));
  DM_ASSIGN_OR_RETURN(bool counted, count.Step());
  const int wiped = counted ? static_cast<int>(count.Int(0)) : 0;
  DM_RETURN_IF_ERROR(db_.Run("DELETE FROM security_key_credential WHERE key_id = ?",
                             std::string_view(row.key_id)));
  DM_ASSIGN_OR_RETURN(SecretBytes secret, options_.random->Secret(crypto::kAesKeySize));
  DM_ASSIGN_OR_RETURN(row.sealed_secret,
                      SealAuthenticatorSecret(*sealer, *device_key, row, secret, *options_.random));
  row.sealed_pin.reset();
  row.pin_set_at.reset();
  row.min_pin_length = kDefaultMinPinLength;
  row.force_pin_change = false;
  row.pin_retries = kMaxPinRetries;
  row.power_up_failures = 0;
  row.state_verified = true;  // a reset is the way out of an unverified state
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  DM_RETURN_IF_ERROR(db_.Run(
      "INSERT INTO security_key_reset (key_id, user, at, credentials_deleted) VALUES (?, ?, ?, ?)",
      std::string_view(row.key_id), std::string_view(row.user),
      ToUnixSeconds(options_.clock->Now()), wiped));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::warn("security key {} of '{}' reset: {} credential(s) deleted, PIN cleared", row.key_id,
               row.user, wiped);
  return wiped;
}

Result<MakeCredentialResponse> SecurityKeyStore::MakeCredential(
    std::string_view user, std::string_view key_id, const MakeCredentialRequest& request) {
  DM_RETURN_IF_ERROR(ValidateRequest(request.rp_id, request.client_data_hash));
  if (request.user_name.size() > kMaxUserNameBytes || HasControl(request.user_name) ||
      !internal::CountUtf8CodePoints(request.user_name).ok()) {
    return Ctap(CtapError::kInvalidParameter,
                "user name must be at most 256 bytes of UTF-8 without control characters");
  }
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_RETURN_IF_ERROR(RequireVerified(row));
  DM_ASSIGN_OR_RETURN(SecretBytes secret, OpenAuthenticatorSecret(*sealer, *device_key, row));
  auto decision = DecideUv(row, secret, request.uv, request.pin, /*assertion=*/false,
                           options_.pin_setup_on_preferred_assertion);
  if (!decision.ok()) return CommitCounters(db_, *sealer, tx, row, decision.status());
  MakeCredentialResponse out;
  if (decision->pin_setup_required) {
    out.outcome = Outcome::kPinSetupRequired;
    out.reason = decision->reason;
    return out;  // nothing changed; the transaction rolls back
  }

  DM_ASSIGN_OR_RETURN(pki::KeyPair pair, pki::GenerateKeyPair(pki::KeyType::kEcP256));
  DM_ASSIGN_OR_RETURN(out.credential_id, options_.random->Public(kCredentialIdSize));
  const std::string cred_hex = crypto::HexEncode(out.credential_id);
  DM_ASSIGN_OR_RETURN(Bytes sealed_key,
                      crypto::Seal(secret, pair.private_pem.span(),
                                   SecurityKeyAssociatedData(internal::kPurposeCredentialKey,
                                                             row.user, row.key_id, cred_hex),
                                   *options_.random));
  DM_ASSIGN_OR_RETURN(storage::Statement ins,
                      db_.Prepare("INSERT INTO security_key_credential (credential_id, key_id, "
                                  "rp_id, user_name, public_key_pem, sealed_private_key, "
                                  "sign_count, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)"));
  ins.Bind(1, std::string_view(cred_hex))
      .Bind(2, std::string_view(row.key_id))
      .Bind(3, std::string_view(request.rp_id))
      .Bind(4, std::string_view(request.user_name))
      .Bind(5, std::string_view(pair.public_pem));
  ins.BindBlob(6, sealed_key).Bind(7, ToUnixSeconds(options_.clock->Now()));
  DM_RETURN_IF_ERROR(ins.Run());

  // attestedCredentialData: AAGUID(16) || L(2, big-endian) || credentialId || COSE_Key
  DM_ASSIGN_OR_RETURN(Bytes attested, internal::AaguidOf(row.key_id));
  attested.push_back(static_cast<uint8_t>(out.credential_id.size() >> 8));
  attested.push_back(static_cast<uint8_t>(out.credential_id.size() & 0xff));
  attested.insert(attested.end(), out.credential_id.begin(), out.credential_id.end());
  DM_ASSIGN_OR_RETURN(Bytes cose, internal::CoseKeyFromPem(pair.public_pem));
  attested.insert(attested.end(), cose.begin(), cose.end());
  out.user_verified = decision->user_verified;
  const uint8_t flags = static_cast<uint8_t>(
      kFlagUserPresent | (out.user_verified ? kFlagUserVerified : 0) | kFlagAttestedData);
  DM_ASSIGN_OR_RETURN(out.authenticator_data,
                      internal::AuthenticatorData(request.rp_id, flags, 0, attested));
  DM_ASSIGN_OR_RETURN(out.attestation_signature,
                      crypto::EcdsaSign(pair.private_pem, SignedData(out.authenticator_data,
                                                                     request.client_data_hash)));
  out.public_key_pem = pair.public_pem;
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("security key {} of '{}': credential {} created for {}", row.key_id, row.user,
               cred_hex, request.rp_id);
  return out;
}

Result<AssertionResponse> SecurityKeyStore::GetAssertion(std::string_view user,
                                                         std::string_view key_id,
                                                         const GetAssertionRequest& request) {
  DM_RETURN_IF_ERROR(ValidateRequest(request.rp_id, request.client_data_hash));
  DM_ASSIGN_OR_RETURN(KeySealer * sealer, Sealer());
  DM_ASSIGN_OR_RETURN(const SecretBytes* device_key, DeviceKey());
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(KeyRow row, LoadKey(db_, *sealer, user, key_id));
  DM_RETURN_IF_ERROR(RequireVerified(row));
  DM_ASSIGN_OR_RETURN(SecretBytes secret, OpenAuthenticatorSecret(*sealer, *device_key, row));
  auto decision = DecideUv(row, secret, request.uv, request.pin, /*assertion=*/true,
                           options_.pin_setup_on_preferred_assertion);
  if (!decision.ok()) return CommitCounters(db_, *sealer, tx, row, decision.status());
  AssertionResponse out;
  if (decision->pin_setup_required) {
    out.outcome = Outcome::kPinSetupRequired;
    out.reason = decision->reason;
    return out;
  }

  DM_ASSIGN_OR_RETURN(storage::Statement st,
                      db_.Prepare("SELECT credential_id, sealed_private_key, sign_count FROM "
                                  "security_key_credential WHERE key_id = ? AND rp_id = ? "
                                  "ORDER BY created_at DESC, rowid DESC"));
  st.Bind(1, std::string_view(row.key_id)).Bind(2, std::string_view(request.rp_id));
  std::string cred_hex;
  Bytes sealed_key;
  int64_t count = 0;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    const std::string hex = st.Text(0);
    DM_ASSIGN_OR_RETURN(Bytes id, CredentialIdFromHex(hex));
    const bool allowed =
        request.allow_credentials.empty() ||
        std::find(request.allow_credentials.begin(), request.allow_credentials.end(), id) !=
            request.allow_credentials.end();
    if (allowed) {
      cred_hex = hex;
      out.credential_id = std::move(id);
      sealed_key = st.Blob(1);
      count = st.Int(2);
      break;
    }
  }
  if (cred_hex.empty()) {
    // The PIN check above may have restored the counters; keep that.
    return CommitCounters(
        db_, *sealer, tx, row,
        Ctap(CtapError::kNoCredentials, "the security key has no credential for " + request.rp_id));
  }
  auto private_pem = crypto::Open(
      secret, sealed_key,
      SecurityKeyAssociatedData(internal::kPurposeCredentialKey, row.user, row.key_id, cred_hex));
  if (!private_pem.ok()) {
    return Corruption("credential " + cred_hex + " of security key " + row.key_id +
                      " does not open");
  }
  out.sign_count = static_cast<uint32_t>(count + 1);
  out.user_verified = decision->user_verified;
  const uint8_t flags =
      static_cast<uint8_t>(kFlagUserPresent | (out.user_verified ? kFlagUserVerified : 0));
  DM_ASSIGN_OR_RETURN(out.authenticator_data,
                      internal::AuthenticatorData(request.rp_id, flags, out.sign_count));
  DM_ASSIGN_OR_RETURN(out.signature,
                      crypto::EcdsaSign(*private_pem, SignedData(out.authenticator_data,
                                                                 request.client_data_hash)));
  DM_RETURN_IF_ERROR(
      db_.Run("UPDATE security_key_credential SET sign_count = ? WHERE credential_id = ?",
              static_cast<int64_t>(out.sign_count), std::string_view(cred_hex)));
  DM_RETURN_IF_ERROR(WriteKeyState(db_, *sealer, row));
  DM_RETURN_IF_ERROR(tx.Commit());
  return out;
}

}  // namespace dm::container
