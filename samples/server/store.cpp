#include "samples/server/store.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "base/log.h"
#include "container/local_pin_reset_service.h"
#include "samples/server/command_xml.h"

namespace dm::server {
namespace {

// The server's schema. Timestamps are Unix seconds. A command is queued until the device
// answers it (Fleet's model: no result = pending = re-sent next session).
constexpr storage::Migration kMigrations[] = {
    {1, "dmserver: tenants, directory, groups, profiles, devices, queue, status, reports",
     R"sql(
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  enrollment_token_sha256 TEXT NOT NULL UNIQUE,
  federated INTEGER NOT NULL DEFAULT 0,
  consent_pin_reset_service INTEGER NOT NULL DEFAULT 0,
  consent_pin_reset_client INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE users (
  upn TEXT PRIMARY KEY COLLATE NOCASE,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  password_hash TEXT NOT NULL,
  totp_secret BLOB NOT NULL,
  last_totp_step INTEGER NOT NULL DEFAULT -1,
  created_at INTEGER NOT NULL
);
CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('user', 'device')),
  UNIQUE (tenant_id, name)
);
CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  member TEXT NOT NULL COLLATE NOCASE,
  PRIMARY KEY (group_id, member)
);
CREATE TABLE profiles (
  id INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, name)
);
CREATE TABLE profile_settings (
  profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('setting', 'raw')),
  verb TEXT NOT NULL,
  loc_uri TEXT NOT NULL,
  format TEXT NOT NULL,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (profile_id, idx)
);
CREATE TABLE assignments (
  profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
  group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  mode TEXT NOT NULL CHECK (mode IN ('include', 'exclude')),
  PRIMARY KEY (profile_id, group_id)
);
CREATE TABLE devices (
  dev_id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  cert_serial TEXT NOT NULL,
  cert_thumbprint TEXT NOT NULL,
  enrolled_upn TEXT NOT NULL DEFAULT '',
  enrolled INTEGER NOT NULL DEFAULT 1,
  enrolled_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL DEFAULT 0,
  manufacturer TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  dm_version TEXT NOT NULL DEFAULT '',
  language TEXT NOT NULL DEFAULT '',
  login_status TEXT NOT NULL DEFAULT '',
  signed_in_upn TEXT NOT NULL DEFAULT '',
  session_seq INTEGER NOT NULL DEFAULT 0
);
-- Users seen on a device (enrolling user, LoginStatus): user-targeted profiles are tracked for
-- them and held until they are signed in.
CREATE TABLE device_users (
  dev_id TEXT NOT NULL REFERENCES devices(dev_id) ON DELETE CASCADE,
  upn TEXT NOT NULL COLLATE NOCASE,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (dev_id, upn)
);
CREATE TABLE commands (
  uuid TEXT PRIMARY KEY,
  dev_id TEXT NOT NULL REFERENCES devices(dev_id) ON DELETE CASCADE,
  upn TEXT NOT NULL DEFAULT '',          -- '' = device-targeted
  profile_id INTEGER,                    -- NULL for commands the server adds on its own
  setting_idx INTEGER,
  verb TEXT NOT NULL,
  loc_uri TEXT NOT NULL,
  needs_user INTEGER NOT NULL DEFAULT 0, -- addresses ./User/: only while a user is signed in
  xml TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'acked', 'cancelled')),
  created_at INTEGER NOT NULL,
  sent_count INTEGER NOT NULL DEFAULT 0,
  last_sent_session INTEGER NOT NULL DEFAULT 0,
  status_code INTEGER,
  acked_at INTEGER,
  replaces TEXT                          -- the Add this Replace retries after a 418
);
CREATE INDEX commands_by_device ON commands (dev_id, state, created_at);
-- CmdIDs of commands nested in an Atomic/Sequence, so their Statuses find the parent.
CREATE TABLE command_refs (
  cmd_ref TEXT PRIMARY KEY,
  command_uuid TEXT NOT NULL REFERENCES commands(uuid) ON DELETE CASCADE,
  loc_uri TEXT NOT NULL
);
CREATE TABLE command_results (
  command_uuid TEXT NOT NULL,
  loc_uri TEXT NOT NULL,
  format TEXT NOT NULL,
  data TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (command_uuid, loc_uri)
);
CREATE TABLE setting_status (
  dev_id TEXT NOT NULL REFERENCES devices(dev_id) ON DELETE CASCADE,
  upn TEXT NOT NULL,
  profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
  setting_idx INTEGER NOT NULL,
  loc_uri TEXT NOT NULL,
  content_sha256 TEXT NOT NULL,
  status TEXT NOT NULL,
  code INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  command_uuid TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (dev_id, upn, profile_id, setting_idx)
);
CREATE TABLE device_reports (
  dev_id TEXT NOT NULL REFERENCES devices(dev_id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  format TEXT NOT NULL,
  data TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (dev_id, type)
);
CREATE TABLE user_recovery (
  dev_id TEXT NOT NULL REFERENCES devices(dev_id) ON DELETE CASCADE,
  upn TEXT NOT NULL COLLATE NOCASE,
  can_reset TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (dev_id, upn)
);
)sql"},
    // "All devices" / "All users" groups, as Intune has: every device (user) of the tenant is a
    // member without being listed, so a fleet needs no per-device membership.
    {2, "dmserver: groups holding every member of their kind",
     "ALTER TABLE groups ADD COLUMN all_members INTEGER NOT NULL DEFAULT 0;"},
    // MS-MDE2 enrollment: the bulk token expires; the tenant's poll schedule goes into the
    // provisioning document; devices carry the identities Windows reports; a user token's jti
    // buys one enrollment.
    {3, "dmserver: MS-MDE2 enrollment (token expiry, poll schedule, HWDevID, spent token ids)",
     R"sql(
ALTER TABLE tenants ADD COLUMN enrollment_token_expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET enrollment_token_expires_at = created_at + 30 * 86400;
ALTER TABLE tenants ADD COLUMN poll_first_interval_min INTEGER NOT NULL DEFAULT 3;
ALTER TABLE tenants ADD COLUMN poll_first_count INTEGER NOT NULL DEFAULT 5;
ALTER TABLE tenants ADD COLUMN poll_second_interval_min INTEGER NOT NULL DEFAULT 15;
ALTER TABLE tenants ADD COLUMN poll_second_count INTEGER NOT NULL DEFAULT 12;
ALTER TABLE tenants ADD COLUMN poll_remaining_interval_min INTEGER NOT NULL DEFAULT 480;
ALTER TABLE devices ADD COLUMN hw_dev_id TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN enrollment_type TEXT NOT NULL DEFAULT '';
CREATE TABLE spent_token_ids (
  jti TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
)sql"},
    // Failed sign-ins per user name and per source address: growing delays, then (per user) a
    // lock an admin lifts.
    {4, "dmserver: sign-in throttling",
     R"sql(
CREATE TABLE sign_in_failures (
  key TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  last_failure INTEGER NOT NULL,
  locked INTEGER NOT NULL DEFAULT 0
);
)sql"},
    // Scoped admin API tokens (admin_tokens.h), only their SHA-256. The admin-token file of an
    // older state directory is imported as the global token "initial" by InitState.
    {5, "dmserver: scoped admin tokens",
     R"sql(
CREATE TABLE admin_tokens (
  name TEXT PRIMARY KEY,
  scope TEXT NOT NULL CHECK (scope IN ('global', 'tenant', 'read-only')),
  tenant_id TEXT REFERENCES tenants(id),
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  rotated_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0,
  CHECK ((scope = 'tenant') = (tenant_id IS NOT NULL))
);
)sql"},
    // Users' sign-ins on a device (store_identity.cpp): the refresh tokens that renew their
    // user tokens, and the Hello certificates that let a PIN sign-in prove the user.
    {6, "dmserver: device-bound refresh tokens and Hello certificates",
     R"sql(
CREATE TABLE refresh_tokens (
  token_sha256 TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  upn TEXT NOT NULL,
  dev_id TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (dev_id, upn);
CREATE TABLE hello_certificates (
  serial TEXT PRIMARY KEY,
  dev_id TEXT NOT NULL,
  upn TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX hello_certificates_by_device ON hello_certificates (dev_id);
)sql"},
    // Device certificates that stopped being the device's: the CRL the TLS server checks.
    // Rows are only added, so max(rowid) tells whether the list changed.
    {7, "dmserver: revoked device certificates",
     R"sql(
CREATE TABLE revoked_certs (
  serial TEXT PRIMARY KEY,
  dev_id TEXT NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('retired', 'superseded')),
  revoked_at INTEGER NOT NULL
);
)sql"},
    {8, "dmserver: the tally of each device's current OMA-DM session (session_log.h)",
     R"sql(
ALTER TABLE devices ADD COLUMN session_started_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN session_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN session_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN session_acked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN session_failed INTEGER NOT NULL DEFAULT 0;
)sql"},
};

bool IsGuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// A bulk enrollment token (shown once) and the digest the database keeps instead.
struct NewToken {
  std::string token;
  std::string sha256;
};
Result<NewToken> NewEnrollmentToken(crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(Bytes raw, random.Public(24));
  NewToken t;
  t.token = crypto::HexEncode(raw);
  DM_ASSIGN_OR_RETURN(t.sha256, Sha256Hex(t.token));
  return t;
}

Tenant TenantFromRow(const storage::Statement& st) {
  auto i = [&](int col) { return static_cast<int>(st.Int(col)); };
  return Tenant{.id = st.Text(0),
                .name = st.Text(1),
                .federated = st.Int(2) != 0,
                .consent_pin_reset_service = st.Int(3) != 0,
                .consent_pin_reset_client = st.Int(4) != 0,
                .poll = PollSchedule{.first_interval_min = i(5),
                                     .first_count = i(6),
                                     .second_interval_min = i(7),
                                     .second_count = i(8),
                                     .remaining_interval_min = i(9)},
                .enrollment_token_expires_at = st.Int(10)};
}
constexpr char kTenantColumns[] =
    "SELECT id, name, federated, consent_pin_reset_service, consent_pin_reset_client, "
    "poll_first_interval_min, poll_first_count, poll_second_interval_min, poll_second_count, "
    "poll_remaining_interval_min, enrollment_token_expires_at FROM tenants";

std::string EncodeVerifier(const crypto::ScryptParams& params, std::span<const uint8_t> salt,
                           std::span<const uint8_t> hash) {
  return "scrypt$" + std::to_string(params.n) + "$" + std::to_string(params.r) + "$" +
         std::to_string(params.p) + "$" + crypto::Base64Encode(salt) + "$" +
         crypto::Base64Encode(hash);
}

Result<std::string> HashPassword(const SecretBytes& password, const crypto::ScryptParams& params,
                                 crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(Bytes salt, random.Public(16));
  DM_ASSIGN_OR_RETURN(SecretBytes hash, crypto::Scrypt(password, salt, params));
  return EncodeVerifier(params, salt, hash.span());
}

Status CheckPassword(const SecretBytes& password, std::string_view encoded) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = encoded.find('$', start);
    parts.emplace_back(encoded.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  if (parts.size() != 6 || parts[0] != "scrypt") {
    return Corruption("stored password verifier has an unknown form");
  }
  crypto::ScryptParams params;
  try {
    params.n = std::stoull(parts[1]);
    params.r = static_cast<uint32_t>(std::stoul(parts[2]));
    params.p = static_cast<uint32_t>(std::stoul(parts[3]));
  } catch (const std::exception&) {
    return Corruption("stored password verifier has bad scrypt parameters");
  }
  DM_ASSIGN_OR_RETURN(Bytes salt, crypto::Base64Decode(parts[4]));
  DM_ASSIGN_OR_RETURN(Bytes expected, crypto::Base64Decode(parts[5]));
  DM_ASSIGN_OR_RETURN(SecretBytes actual, crypto::Scrypt(password, salt, params, expected.size()));
  if (actual.size() != expected.size() ||
      CRYPTO_memcmp(actual.data(), expected.data(), expected.size()) != 0) {
    return Unauthenticated("wrong password");
  }
  return Status::Ok();
}

}  // namespace

std::span<const storage::Migration> ServerSchema() { return kMigrations; }

std::string_view GroupKindName(GroupKind k) { return k == GroupKind::kUser ? "user" : "device"; }

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& db_path, Options options) {
  DM_ASSIGN_OR_RETURN(
      auto db, storage::Database::Open(db_path, {.migrations = kMigrations,
                                                 // Power loss may cost the last commits: mostly
                                                 // statuses and reports devices send again (an
                                                 // unanswered command stays queued and is
                                                 // re-sent); an enrollment or admin change from
                                                 // that instant must be redone. One sync per
                                                 // commit would cap the whole fleet's rate.
                                                 .durable_commits = false}));
  DM_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON;"));
  return std::unique_ptr<Store>(new Store(std::move(db), options));
}

// ---- tenants ----

Result<CreatedTenant> Store::AddTenant(std::string_view name, std::string_view id, bool federated) {
  if (name.empty()) return InvalidArgument("a tenant needs a name");
  std::string tenant_id;
  if (id.empty()) {
    DM_ASSIGN_OR_RETURN(tenant_id, NewUuid(*options_.random));
  } else {
    std::string_view bare = id;
    if (bare.size() == 38 && bare.front() == '{' && bare.back() == '}') {
      bare = bare.substr(1, 36);
    }
    if (!IsGuid(bare))
      return InvalidArgument("tenant id must be a GUID, got '" + std::string(id) + "'");
    tenant_id = AsciiLower(bare);
  }
  DM_ASSIGN_OR_RETURN(NewToken token, NewEnrollmentToken(*options_.random));
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT 1 FROM tenants WHERE id = ? OR name = ?"));
  st.BindAll(tenant_id, name);
  DM_ASSIGN_OR_RETURN(bool exists, st.Step());
  if (exists) return AlreadyExists("tenant '" + std::string(name) + "' (or its id) exists");
  DM_RETURN_IF_ERROR(
      db_->Run("INSERT INTO tenants (id, name, enrollment_token_sha256, federated, created_at, "
               "enrollment_token_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
               tenant_id, name, token.sha256, federated, Now(),
               Now() + kDefaultEnrollmentTokenLifetime.count()));
  DM_ASSIGN_OR_RETURN(Tenant tenant, TenantById(tenant_id));
  return CreatedTenant{.tenant = std::move(tenant), .enrollment_token = std::move(token.token)};
}

Result<std::vector<Tenant>> Store::Tenants() {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare(std::string(kTenantColumns) + " ORDER BY name"));
  std::vector<Tenant> out;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(TenantFromRow(st));
  }
  return out;
}

Result<Tenant> Store::TenantById(std::string_view id) {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare(std::string(kTenantColumns) + " WHERE id = ?"));
  st.Bind(1, AsciiLower(id));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no tenant with id " + std::string(id));
  return TenantFromRow(st);
}

Result<Tenant> Store::ResolveTenant(std::string_view id_or_name) {
  if (id_or_name.empty()) {
    DM_ASSIGN_OR_RETURN(auto all, Tenants());
    if (all.size() == 1) return all.front();
    if (all.empty()) return NotFound("no tenant yet: run `dmserver tenant add NAME` first");
    return InvalidArgument("several tenants exist: say which with --tenant");
  }
  DM_ASSIGN_OR_RETURN(auto st,
                      db_->Prepare(std::string(kTenantColumns) + " WHERE id = ? OR name = ?"));
  st.BindAll(AsciiLower(id_or_name), id_or_name);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no tenant '" + std::string(id_or_name) + "'");
  return TenantFromRow(st);
}

Result<Tenant> Store::TenantByEnrollmentToken(std::string_view token) {
  DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(token));
  DM_ASSIGN_OR_RETURN(auto st,
                      db_->Prepare("SELECT id, enrollment_token_sha256 FROM tenants ORDER BY id"));
  // Compare every digest in constant time rather than looking the token up by index.
  std::string match;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    std::string stored = st.Text(1);
    if (stored.size() == digest.size() &&
        CRYPTO_memcmp(stored.data(), digest.data(), digest.size()) == 0) {
      match = st.Text(0);
    }
  }
  if (match.empty()) return Unauthenticated("the enrollment token is not valid for any tenant");
  DM_ASSIGN_OR_RETURN(Tenant tenant, TenantById(match));
  if (tenant.enrollment_token_expires_at <= Now()) {
    return Unauthenticated("the enrollment token of tenant " + tenant.name +
                           " has expired: rotate it");
  }
  return tenant;
}

Result<std::string> Store::RotateEnrollmentToken(std::string_view tenant_id,
                                                 std::chrono::seconds valid_for) {
  if (valid_for <= std::chrono::seconds(0) || valid_for > std::chrono::hours(24 * 366)) {
    return InvalidArgument("an enrollment token is valid for 1 second to 366 days");
  }
  DM_ASSIGN_OR_RETURN(NewToken token, NewEnrollmentToken(*options_.random));
  DM_RETURN_IF_ERROR(
      db_->Run("UPDATE tenants SET enrollment_token_sha256 = ?, enrollment_token_expires_at = ? "
               "WHERE id = ?",
               token.sha256, Now() + valid_for.count(), AsciiLower(tenant_id)));
  if (db_->Changes() == 0) return NotFound("no tenant with id " + std::string(tenant_id));
  return std::move(token.token);
}

Status Store::RevokeEnrollmentToken(std::string_view tenant_id) {
  // The digest column is unique and never empty: a digest of fresh randomness nobody holds.
  DM_ASSIGN_OR_RETURN(Bytes raw, options_.random->Public(32));
  DM_ASSIGN_OR_RETURN(std::string unusable, Sha256Hex(crypto::HexEncode(raw)));
  DM_RETURN_IF_ERROR(
      db_->Run("UPDATE tenants SET enrollment_token_sha256 = ?, enrollment_token_expires_at = 0 "
               "WHERE id = ?",
               "revoked:" + unusable, AsciiLower(tenant_id)));
  if (db_->Changes() == 0) return NotFound("no tenant with id " + std::string(tenant_id));
  return Status::Ok();
}

Status Store::SetPollSchedule(std::string_view tenant_id, const PollSchedule& poll) {
  for (int v : {poll.first_interval_min, poll.first_count, poll.second_interval_min,
                poll.second_count, poll.remaining_interval_min}) {
    if (v < 0 || v > 100000) return InvalidArgument("poll values are 0..100000");
  }
  DM_RETURN_IF_ERROR(db_->Run(
      "UPDATE tenants SET poll_first_interval_min = ?, poll_first_count = ?, "
      "poll_second_interval_min = ?, poll_second_count = ?, poll_remaining_interval_min = ? "
      "WHERE id = ?",
      poll.first_interval_min, poll.first_count, poll.second_interval_min, poll.second_count,
      poll.remaining_interval_min, AsciiLower(tenant_id)));
  if (db_->Changes() == 0) return NotFound("no tenant with id " + std::string(tenant_id));
  return Status::Ok();
}

Status Store::SpendTokenId(std::string_view jti, int64_t expires_at) {
  DM_RETURN_IF_ERROR(db_->Run("DELETE FROM spent_token_ids WHERE expires_at < ?", Now() - 3600));
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT 1 FROM spent_token_ids WHERE jti = ?"));
  st.Bind(1, jti);
  DM_ASSIGN_OR_RETURN(bool used, st.Step());
  if (used) return Unauthenticated("the user token was used before");
  return db_->Run("INSERT INTO spent_token_ids (jti, expires_at) VALUES (?, ?)", jti, expires_at);
}

Status Store::SetConsent(std::string_view tenant_id, std::string_view app_id, bool granted) {
  const char* column = nullptr;
  if (AsciiLower(app_id) == container::kPinResetServiceAppId) {
    column = "consent_pin_reset_service";
  } else if (AsciiLower(app_id) == container::kPinResetClientAppId) {
    column = "consent_pin_reset_client";
  } else {
    return InvalidArgument(
        "unknown app id '" + std::string(app_id) + "': expected " +
        container::kPinResetServiceAppId + " (" + container::kPinResetServiceAppName + ") or " +
        container::kPinResetClientAppId + " (" + container::kPinResetClientAppName + ")");
  }
  DM_RETURN_IF_ERROR(db_->Run("UPDATE tenants SET " + std::string(column) + " = ? WHERE id = ?",
                              granted, tenant_id));
  if (db_->Changes() == 0) return NotFound("no tenant with id " + std::string(tenant_id));
  return Status::Ok();
}

// ---- users ----

Status Store::AddUser(std::string_view tenant_id, std::string_view upn, const SecretBytes& password,
                      const SecretBytes& totp_secret) {
  if (upn.find('@') == std::string_view::npos || upn.front() == '@' || upn.back() == '@') {
    return InvalidArgument("a UPN looks like user@domain, got '" + std::string(upn) + "'");
  }
  if (password.empty()) return InvalidArgument("the password is empty");
  if (totp_secret.size() < 10) {
    return InvalidArgument("the TOTP secret must be at least 80 bits (RFC 4226)");
  }
  DM_RETURN_IF_ERROR(TenantById(tenant_id).status());
  DM_ASSIGN_OR_RETURN(auto existing, db_->Prepare("SELECT 1 FROM users WHERE upn = ?"));
  existing.Bind(1, upn);
  DM_ASSIGN_OR_RETURN(bool exists, existing.Step());
  if (exists) return AlreadyExists("user " + std::string(upn) + " exists");
  DM_ASSIGN_OR_RETURN(std::string hash,
                      HashPassword(password, options_.password_kdf, *options_.random));
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("INSERT INTO users (upn, tenant_id, password_hash, "
                                            "totp_secret, created_at) VALUES (?, ?, ?, ?, ?)"));
  st.BindAll(upn, tenant_id, hash);
  st.BindBlob(4, totp_secret.span());
  st.Bind(5, Now());
  return st.Run();
}

Result<User> Store::FindUser(std::string_view upn) {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT tenant_id, upn, password_hash, totp_secret, "
                                            "last_totp_step FROM users WHERE upn = ?"));
  st.Bind(1, upn);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no user " + std::string(upn));
  Bytes secret = st.Blob(3);
  User u{.tenant_id = st.Text(0),
         .upn = st.Text(1),
         .password_hash = st.Text(2),
         .totp_secret = SecretBytes(secret.data(), secret.size()),
         .last_totp_step = st.Int(4)};
  OPENSSL_cleanse(secret.data(), secret.size());
  return u;
}

Result<bool> Store::DomainIsFederated(std::string_view domain) {
  DM_ASSIGN_OR_RETURN(
      auto st,
      db_->Prepare(
          "SELECT 1 FROM users u JOIN tenants t ON t.id = u.tenant_id "
          "WHERE t.federated = 1 AND substr(u.upn, instr(u.upn, '@') + 1) = ? COLLATE NOCASE "
          "LIMIT 1"));
  st.Bind(1, domain);
  return st.Step();
}

namespace {
std::string UserKey(std::string_view upn) { return "user:" + AsciiLower(upn); }
std::string AddressKey(std::string_view address) { return "addr:" + std::string(address); }
}  // namespace

Status Store::CheckSignInAllowed(const SignInAttempt& a) {
  const Status refused = ResourceExhausted("too many failed sign-ins: try again later");
  for (const std::string& key : {UserKey(a.upn), AddressKey(a.address)}) {
    DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT failures, last_failure, locked FROM "
                                              "sign_in_failures WHERE key = ?"));
    st.Bind(1, key);
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) continue;
    if (st.Int(2) != 0) {
      spdlog::warn("sign-in refused: {} is locked", Printable(key));
      return ResourceExhausted(
          "this account is locked after too many failed sign-ins; an "
          "administrator can unlock it");
    }
    if (Now() < st.Int(1) + SignInDelaySeconds(static_cast<int>(st.Int(0)))) {
      spdlog::info("sign-in refused: {} must wait", Printable(key));
      return refused;
    }
  }
  return Status::Ok();
}

Status Store::NoteSignIn(const SignInAttempt& a, bool succeeded) {
  if (succeeded) {
    return db_->Run("DELETE FROM sign_in_failures WHERE key IN (?, ?)", UserKey(a.upn),
                    AddressKey(a.address));
  }
  for (const std::string& key : {UserKey(a.upn), AddressKey(a.address)}) {
    const bool lockable = key.rfind("user:", 0) == 0;  // an address is shared (NAT): no lock
    DM_RETURN_IF_ERROR(db_->Run(
        "INSERT INTO sign_in_failures (key, failures, last_failure, locked) VALUES (?, 1, ?, 0) "
        "ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_failure = "
        "excluded.last_failure, "
        "locked = locked OR (? AND failures + 1 >= ?)",
        key, Now(), lockable, kSignInLockAfter));
  }
  return Status::Ok();
}

Status Store::UnlockSignIn(std::string_view upn) {
  DM_RETURN_IF_ERROR(db_->Run("DELETE FROM sign_in_failures WHERE key = ?", UserKey(upn)));
  spdlog::info("sign-in of {} unlocked by the admin", Printable(upn));
  return Status::Ok();
}

int64_t SignInDelaySeconds(int failures) {
  if (failures < kSignInFreeFailures) return 0;
  const int doublings = std::min(failures - kSignInFreeFailures, 10);
  return std::min<int64_t>(int64_t{1} << doublings, 900);
}

// The sign-ins below take the lock themselves and drop it while scrypt runs (tens of
// milliseconds by design), so one guessing client cannot stall every device's session.
// Two racing attempts may both pass the throttle check; each is still noted.
Result<User> Store::CheckPasswordOutsideLock(std::string_view upn, const SecretBytes& password,
                                             const SignInAttempt& attempt) {
  std::optional<User> user;
  std::string verifier;
  {
    auto lock = Lock();
    DM_RETURN_IF_ERROR(CheckSignInAllowed(attempt));
    auto found = FindUser(upn);
    if (found.ok()) {
      user = std::move(*found);
      verifier = user->password_hash;
    } else if (found.error().code() != Code::kNotFound) {
      return found.error();
    } else {
      // Same scrypt work as for a real user so timing does not reveal who exists: a verifier
      // nothing matches.
      DM_ASSIGN_OR_RETURN(Bytes salt, options_.random->Public(16));
      verifier = EncodeVerifier(options_.password_kdf, salt, Bytes(32, 0));
    }
  }
  const auto& check = options_.password_check ? options_.password_check : CheckPassword;
  Status checked = check(password, verifier);
  if (!user) {
    spdlog::info("sign-in refused: unknown user");
    return Unauthenticated("sign-in failed: wrong user name or password");
  }
  if (!checked.ok()) {
    if (checked.code() != Code::kUnauthenticated) return checked;
    spdlog::info("sign-in refused for {}: password", Printable(user->upn));
    return Unauthenticated("sign-in failed: wrong user name or password");
  }
  return std::move(*user);
}

Result<User> Store::VerifyPassword(std::string_view upn, const SecretBytes& password,
                                   const SignInAttempt& attempt) {
  auto user = CheckPasswordOutsideLock(upn, password, attempt);
  auto lock = Lock();
  if (user.ok() || user.error().code() == Code::kUnauthenticated) {
    DM_RETURN_IF_ERROR(NoteSignIn(attempt, user.ok()));
  }
  return user;
}

Status Store::VerifyUser(std::string_view upn, const SecretBytes& password,
                         std::string_view totp_code, const SignInAttempt& attempt) {
  // One answer for every failure, as the local PIN reset service gives: which factor failed
  // goes to the log only, so the endpoint cannot be used to probe passwords or user names.
  const Status failed =
      Unauthenticated("sign-in failed: wrong user name, password or verification code");
  auto user = CheckPasswordOutsideLock(upn, password, attempt);
  auto lock = Lock();
  Status s = user.ok() ? CheckTotpLocked(upn, totp_code) : user.error();
  if (s.ok() || s.code() == Code::kUnauthenticated) DM_RETURN_IF_ERROR(NoteSignIn(attempt, s.ok()));
  return s.code() == Code::kUnauthenticated ? failed : s;
}

Status Store::CheckTotpLocked(std::string_view upn, std::string_view totp_code) {
  // Re-read: another sign-in may have spent a step while scrypt ran.
  DM_ASSIGN_OR_RETURN(User user, FindUser(upn));
  constexpr int64_t kStep = 30;
  const int64_t now_step = Now() / kStep;
  int64_t accepted = -1;
  for (int64_t step = now_step - 1; step <= now_step + 1; ++step) {
    DM_ASSIGN_OR_RETURN(std::string code,
                        crypto::Totp(user.totp_secret, FromUnixSeconds(step * kStep)));
    if (code.size() == totp_code.size() &&
        CRYPTO_memcmp(code.data(), totp_code.data(), code.size()) == 0 &&
        step > user.last_totp_step) {  // a code is accepted once
      accepted = step;
    }
  }
  if (accepted < 0) {
    spdlog::info("sign-in refused for {}: verification code", Printable(user.upn));
    return Unauthenticated("wrong verification code");
  }
  return db_->Run("UPDATE users SET last_totp_step = ? WHERE upn = ?", accepted, upn);
}

// ---- groups ----

Result<int64_t> Store::GroupId(std::string_view tenant_id, std::string_view name, GroupKind* kind) {
  DM_ASSIGN_OR_RETURN(auto st,
                      db_->Prepare("SELECT id, kind FROM groups WHERE tenant_id = ? AND name = ?"));
  st.BindAll(tenant_id, name);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no group '" + std::string(name) + "' in this tenant");
  if (kind) *kind = st.Text(1) == "user" ? GroupKind::kUser : GroupKind::kDevice;
  return st.Int(0);
}

Status Store::AddGroup(std::string_view tenant_id, std::string_view name, GroupKind kind,
                       bool all_members) {
  if (name.empty()) return InvalidArgument("a group needs a name");
  DM_RETURN_IF_ERROR(TenantById(tenant_id).status());
  if (GroupId(tenant_id, name, nullptr).ok()) {
    return AlreadyExists("group '" + std::string(name) + "' exists");
  }
  return db_->Run("INSERT INTO groups (tenant_id, name, kind, all_members) VALUES (?, ?, ?, ?)",
                  tenant_id, name, GroupKindName(kind), all_members);
}

Status Store::AddMember(std::string_view tenant_id, std::string_view group,
                        std::string_view member) {
  GroupKind kind;
  DM_ASSIGN_OR_RETURN(int64_t id, GroupId(tenant_id, group, &kind));
  DM_ASSIGN_OR_RETURN(auto all, db_->Prepare("SELECT all_members FROM groups WHERE id = ?"));
  all.Bind(1, id);
  DM_ASSIGN_OR_RETURN(bool found, all.Step());
  if (found && all.Int(0) != 0) {
    return FailedPrecondition("'" + std::string(group) + "' holds every " +
                              std::string(GroupKindName(kind)) +
                              " of the tenant; members are not added one by one");
  }
  if (kind == GroupKind::kUser) {
    // Users must exist in the tenant; devices may be added before they enroll.
    DM_ASSIGN_OR_RETURN(User u, FindUser(member));
    if (u.tenant_id != tenant_id) {
      return InvalidArgument("user " + std::string(member) + " belongs to another tenant");
    }
  } else if (member.find('@') != std::string_view::npos) {
    return InvalidArgument("'" + std::string(group) +
                           "' is a device group: members are DevIds, not UPNs");
  }
  return db_->Run("INSERT OR IGNORE INTO group_members (group_id, member) VALUES (?, ?)", id,
                  member);
}

Status Store::RemoveMember(std::string_view tenant_id, std::string_view group,
                           std::string_view member) {
  DM_ASSIGN_OR_RETURN(int64_t id, GroupId(tenant_id, group, nullptr));
  DM_RETURN_IF_ERROR(
      db_->Run("DELETE FROM group_members WHERE group_id = ? AND member = ?", id, member));
  if (db_->Changes() == 0) {
    return NotFound(std::string(member) + " is not a member of '" + std::string(group) + "'");
  }
  return Status::Ok();
}

// ---- profiles ----

Status Store::AddProfile(const Profile& profile, bool replace) {
  if (profile.name.empty()) return InvalidArgument("a profile needs a name");
  if (profile.settings.empty()) return InvalidArgument("a profile needs at least one setting");
  DM_RETURN_IF_ERROR(TenantById(profile.tenant_id).status());
  std::vector<ProfileSetting> settings = profile.settings;
  for (ProfileSetting& s : settings) {
    if (s.kind == ProfileSetting::Kind::kSetting) {
      if (s.verb != "Replace" && s.verb != "Add") {
        return InvalidArgument("setting verb must be Replace or Add, got '" + s.verb + "'");
      }
      if (s.loc_uri.empty() || s.loc_uri.front() == '/') {
        return InvalidArgument("setting LocURI must be relative like ./Device/..., got '" +
                               s.loc_uri + "'");
      }
      continue;
    }
    auto decoded = DecodeOneCommand(s.value);
    if (!decoded.ok()) return InvalidArgument("raw command: " + decoded.error().message());
    const syncml::Command& c = *decoded;
    using syncml::CommandType;
    if (c.type == CommandType::kAlert || c.type == CommandType::kStatus ||
        c.type == CommandType::kResults || c.type == CommandType::kUnsupported ||
        c.type == CommandType::kUnknown) {
      return InvalidArgument(
          "a raw entry must be Add, Replace, Delete, Get, Exec, Atomic or "
          "Sequence");
    }
    s.verb = syncml::CommandName(c.type);
    const syncml::Command* first = &c;
    while (!first->children.empty()) first = &first->children.front();
    if (!first->items.empty() && first->items.front().target) {
      s.loc_uri = first->items.front().target->loc_uri;
    }
  }
  DM_ASSIGN_OR_RETURN(auto tx, db_->Begin());
  DM_ASSIGN_OR_RETURN(auto find,
                      db_->Prepare("SELECT id FROM profiles WHERE tenant_id = ? AND name = ?"));
  find.BindAll(profile.tenant_id, profile.name);
  DM_ASSIGN_OR_RETURN(bool exists, find.Step());
  int64_t id;
  if (exists) {
    if (!replace) {
      return AlreadyExists("profile '" + profile.name + "' exists (use --replace to update it)");
    }
    id = find.Int(0);
    DM_RETURN_IF_ERROR(db_->Run("DELETE FROM profile_settings WHERE profile_id = ?", id));
  } else {
    DM_RETURN_IF_ERROR(
        db_->Run("INSERT INTO profiles (tenant_id, name, created_at) VALUES (?, ?, ?)",
                 profile.tenant_id, profile.name, Now()));
    id = db_->LastInsertRowId();
  }
  int idx = 0;
  for (const ProfileSetting& s : settings) {
    DM_RETURN_IF_ERROR(db_->Run(
        "INSERT INTO profile_settings (profile_id, idx, kind, verb, loc_uri, format, type, value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        id, idx++, s.kind == ProfileSetting::Kind::kRaw ? "raw" : "setting", s.verb, s.loc_uri,
        s.format, s.type, s.value));
  }
  return tx.Commit();
}

Status Store::Assign(std::string_view tenant_id, std::string_view profile, std::string_view group,
                     AssignMode mode) {
  DM_ASSIGN_OR_RETURN(auto st,
                      db_->Prepare("SELECT id FROM profiles WHERE tenant_id = ? AND name = ?"));
  st.BindAll(tenant_id, profile);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("no profile '" + std::string(profile) + "' in this tenant");
  int64_t profile_id = st.Int(0);
  DM_ASSIGN_OR_RETURN(int64_t group_id, GroupId(tenant_id, group, nullptr));
  return db_->Run(
      "INSERT INTO assignments (profile_id, group_id, mode) VALUES (?, ?, ?) "
      "ON CONFLICT (profile_id, group_id) DO UPDATE SET mode = excluded.mode",
      profile_id, group_id, mode == AssignMode::kInclude ? "include" : "exclude");
}

Status Store::Unassign(std::string_view tenant_id, std::string_view profile,
                       std::string_view group) {
  DM_RETURN_IF_ERROR(GroupId(tenant_id, group, nullptr).status());
  DM_RETURN_IF_ERROR(db_->Run(
      "DELETE FROM assignments WHERE profile_id = (SELECT id FROM profiles WHERE tenant_id = ? "
      "AND name = ?) AND group_id = (SELECT id FROM groups WHERE tenant_id = ? AND name = ?)",
      tenant_id, profile, tenant_id, group));
  if (db_->Changes() == 0) return NotFound("no such assignment");
  return Status::Ok();
}

// ---- devices ----

namespace {
constexpr char kDeviceColumns[] =
    "SELECT dev_id, tenant_id, cert_serial, cert_thumbprint, enrolled_upn, enrolled, "
    "login_status, signed_in_upn, manufacturer, model, dm_version, language, last_seen, "
    "hw_dev_id, enrollment_type FROM devices";
Device DeviceFromRow(const storage::Statement& st) {
  return Device{.dev_id = st.Text(0),
                .tenant_id = st.Text(1),
                .cert_serial = st.Text(2),
                .cert_thumbprint = st.Text(3),
                .enrolled_upn = st.Text(4),
                .enrolled = st.Int(5) != 0,
                .login_status = st.Text(6),
                .signed_in_upn = st.Text(7),
                .manufacturer = st.Text(8),
                .model = st.Text(9),
                .dm_version = st.Text(10),
                .language = st.Text(11),
                .last_seen = st.Int(12),
                .hw_dev_id = st.Text(13),
                .enrollment_type = st.Text(14)};
}
}  // namespace

Result<std::optional<Device>> Store::FindDevice(std::string_view dev_id) {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare(std::string(kDeviceColumns) + " WHERE dev_id = ?"));
  st.Bind(1, dev_id);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<Device>();
  return std::optional<Device>(DeviceFromRow(st));
}

Status Store::RetireDevice(std::string_view tenant_id, std::string_view dev_id) {
  DM_ASSIGN_OR_RETURN(auto tx, db_->Begin());
  DM_ASSIGN_OR_RETURN(std::optional<Device> device, FindDevice(dev_id));
  if (!device || device->tenant_id != AsciiLower(tenant_id)) {
    return NotFound("no device " + std::string(dev_id) + " in the tenant");
  }
  DM_RETURN_IF_ERROR(RevokeCertificateOf(dev_id, "retired"));
  DM_RETURN_IF_ERROR(
      db_->Run("UPDATE devices SET enrolled = 0, cert_serial = '' WHERE dev_id = ?", dev_id));
  DM_RETURN_IF_ERROR(ForgetDeviceSignIns(dev_id));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("device {} retired by the admin", dev_id);
  return Status::Ok();
}

Status Store::RevokeCertificateOf(std::string_view dev_id, std::string_view reason) {
  return db_->Run(
      "INSERT OR IGNORE INTO revoked_certs (serial, dev_id, reason, revoked_at) "
      "SELECT cert_serial, dev_id, ?, ? FROM devices WHERE dev_id = ? AND cert_serial != ''",
      reason, Now(), dev_id);
}

Result<RevokedCertificates> Store::RevokedSerials() {
  RevokedCertificates out;
  DM_ASSIGN_OR_RETURN(out.generation, RevocationGeneration());
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT serial FROM revoked_certs ORDER BY serial"));
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.serials_hex.push_back(st.Text(0));
  }
  return out;
}

Result<int64_t> Store::RevocationGeneration() {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT coalesce(max(rowid), 0) FROM revoked_certs"));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Int(0) : 0;
}

Result<std::vector<Device>> Store::Devices() {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare(std::string(kDeviceColumns) + " ORDER BY dev_id"));
  std::vector<Device> out;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back(DeviceFromRow(st));
  }
  return out;
}

// ---- helpers ----

Result<std::string> Sha256Hex(std::string_view text) {
  DM_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256(crypto::AsBytes(text)));
  return crypto::HexEncode(digest);
}

Result<std::string> NewUuid(crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(Bytes b, random.Public(16));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  std::string hex = crypto::HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

}  // namespace dm::server
