#include "storage/schema.h"

namespace dm::storage {
namespace {

// Version 1: the first release's tables, one section per owning module. Later changes are new
// Migration entries appended below; never edit a released version.
constexpr char kVersion1[] = R"sql(
-- ---- storage: agent-wide key/value settings (device identity, counters) ----
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- ---- container ----
-- Device-wide container settings ('pin_reset_service_key', 'web_signin_allowed_urls').
CREATE TABLE container_device (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- One Hello container per user. Nothing here is a secret in clear: sealed_private_key and
-- sealed_history are AES-GCM under the container master key, pin_wrapped_master under
-- scrypt(PIN), protector_wrapped_master under the PIN reset protector, and
-- encrypted_protector is RSA-OAEP to the PIN reset service key.
CREATE TABLE container (
  user                     TEXT PRIMARY KEY,
  ngc_key_id               TEXT NOT NULL UNIQUE,
  public_key_pem           TEXT NOT NULL,
  sealed_private_key       BLOB NOT NULL,
  certificate_pem          TEXT NOT NULL,
  thumbprint               TEXT NOT NULL,
  issuer_cn                TEXT NOT NULL,
  self_signed              INTEGER NOT NULL,
  not_before               INTEGER NOT NULL,
  not_after                INTEGER NOT NULL,
  created_at               INTEGER NOT NULL,
  pin_salt                 BLOB NOT NULL,
  pin_kdf_n                INTEGER NOT NULL,
  pin_kdf_r                INTEGER NOT NULL,
  pin_kdf_p                INTEGER NOT NULL,
  pin_wrapped_master       BLOB NOT NULL,
  pin_set_at               INTEGER NOT NULL,
  history_salt             BLOB NOT NULL,
  sealed_history           BLOB,
  failed_attempts          INTEGER NOT NULL DEFAULT 0,
  lockouts                 INTEGER NOT NULL DEFAULT 0,
  locked_until             INTEGER,
  encrypted_protector      BLOB,
  protector_wrapped_master BLOB,
  protector_key_sha256     TEXT,
  protector_created_at     INTEGER
);
-- What the policy engine last applied to each user's container (NULL = not configured).
CREATE TABLE container_policy (
  user                    TEXT PRIMARY KEY,
  hello_enabled           INTEGER NOT NULL,
  pin_recovery_enabled    INTEGER NOT NULL,
  require_security_device INTEGER NOT NULL,
  min_length              INTEGER,
  max_length              INTEGER,
  uppercase               INTEGER,
  lowercase               INTEGER,
  special                 INTEGER,
  digits                  INTEGER,
  history                 INTEGER,
  expiration_days         INTEGER,
  applied_at              INTEGER NOT NULL
);
-- Every PIN reset, kept after the container it concerned is gone.
CREATE TABLE container_reset (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  user           TEXT NOT NULL,
  kind           TEXT NOT NULL CHECK (kind IN ('destructive', 'non-destructive')),
  at             INTEGER NOT NULL,
  old_ngc_key_id TEXT NOT NULL,
  old_thumbprint TEXT NOT NULL,
  new_thumbprint TEXT NOT NULL
);
CREATE INDEX container_reset_by_user ON container_reset (user, id);
-- security keys (FIDO2)
-- Software CTAP2 authenticators (container/security_key.h). Nothing here is a secret in clear:
-- sealed_secret is the key's random authenticator secret, AES-GCM under the device key file
-- (state dir, security-keys.key, not in this database); sealed_pin (NULL = no PIN) is a salted
-- PIN verifier, never the PIN, and sealed_private_key a credential key, both under that
-- authenticator secret. pin_retries, power_up_failures and powered_up_at_ms are the
-- authenticator's counters, persisted because the simulated key outlives one process.
CREATE TABLE security_key (
  key_id            TEXT PRIMARY KEY,
  user              TEXT NOT NULL,
  label             TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  sealed_secret     BLOB NOT NULL,
  sealed_pin        BLOB,
  min_pin_length    INTEGER NOT NULL DEFAULT 4,
  force_pin_change  INTEGER NOT NULL DEFAULT 0,
  pin_retries       INTEGER NOT NULL DEFAULT 8,
  power_up_failures INTEGER NOT NULL DEFAULT 0,
  powered_up_at_ms  INTEGER NOT NULL,
  pin_set_at        INTEGER
);
CREATE INDEX security_key_by_user ON security_key (user, created_at);
CREATE TABLE security_key_credential (
  credential_id      TEXT PRIMARY KEY,
  key_id             TEXT NOT NULL REFERENCES security_key (key_id),
  rp_id              TEXT NOT NULL,
  user_name          TEXT NOT NULL,
  public_key_pem     TEXT NOT NULL,
  sealed_private_key BLOB NOT NULL,
  sign_count         INTEGER NOT NULL DEFAULT 0,
  created_at         INTEGER NOT NULL
);
CREATE INDEX security_key_credential_by_rp ON security_key_credential (key_id, rp_id);
-- Every authenticatorReset (it deletes the key's credentials), kept for the record.
CREATE TABLE security_key_reset (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  key_id              TEXT NOT NULL,
  user                TEXT NOT NULL,
  at                  INTEGER NOT NULL,
  credentials_deleted INTEGER NOT NULL
);
CREATE INDEX security_key_reset_by_key ON security_key_reset (key_id, id);

-- ---- policy ----
-- Desired values per source ('MDM', 'LocalAdmin') and scope ('device', 'user' + user name),
-- stored in the catalog's canonical form.
CREATE TABLE policy_desired (
  source     TEXT NOT NULL,
  scope      TEXT NOT NULL,
  user       TEXT NOT NULL DEFAULT '',
  setting    TEXT NOT NULL,
  value      TEXT NOT NULL,
  origin     TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (source, scope, user, setting)
);
-- The value in force per device (user = '') and per user; no row = not configured.
CREATE TABLE policy_effective (
  user    TEXT NOT NULL,
  setting TEXT NOT NULL,
  value   TEXT NOT NULL,
  source  TEXT NOT NULL,
  since   INTEGER NOT NULL,
  PRIMARY KEY (user, setting)
);
-- Values waiting for their moment ('NextSignIn', 'AfterReboot'); value NULL = revert to
-- not configured.
CREATE TABLE policy_pending (
  user         TEXT NOT NULL,
  setting      TEXT NOT NULL,
  value        TEXT,
  source       TEXT NOT NULL,
  takes_effect TEXT NOT NULL,
  queued_at    INTEGER NOT NULL,
  PRIMARY KEY (user, setting)
);
-- Compliance per setting and per user as of the last evaluation.
CREATE TABLE policy_status (
  user       TEXT NOT NULL,
  setting    TEXT NOT NULL,
  state      TEXT NOT NULL,
  desired    TEXT,
  effective  TEXT,
  source     TEXT NOT NULL,
  reason     TEXT NOT NULL,
  corrective INTEGER NOT NULL DEFAULT 0,
  since      INTEGER NOT NULL,
  PRIMARY KEY (user, setting)
);
-- What the engine last wrote to the container subsystem, to tell drift from change.
CREATE TABLE policy_applied (
  user  TEXT NOT NULL,
  item  TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user, item)
);
-- Users the engine evaluates for (seen in a sign-in, a user-scope value or a container).
CREATE TABLE policy_user (
  name         TEXT PRIMARY KEY,
  first_seen   INTEGER NOT NULL,
  last_sign_in INTEGER
);

-- ---- csp ----
-- The DM tree's own nodes (csp/node_store.h): interior nodes a server Added, leaf values that
-- live in the tree (DMClient Poll, Reboot schedules), and markers (external = 1, value NULL)
-- for leaves whose value the policy engine holds, so a subtree Delete finds them.
-- path = percent-encoded segments after the scope prefix, joined by '/'.
CREATE TABLE csp_nodes (
  scope      TEXT NOT NULL CHECK (scope IN ('device', 'user')),
  user       TEXT NOT NULL DEFAULT '',
  path       TEXT NOT NULL,
  parent     TEXT NOT NULL,
  format     TEXT NOT NULL,
  value      TEXT,
  external   INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (scope, user, path)
) WITHOUT ROWID;
CREATE INDEX csp_nodes_by_parent ON csp_nodes (scope, user, parent);
-- Reboot CSP: RebootNow requests (performed_at NULL while pending) and performed reboots.
CREATE TABLE csp_reboot (
  id           INTEGER PRIMARY KEY,
  requested_at INTEGER NOT NULL,
  origin       TEXT NOT NULL,
  performed_at INTEGER
);

-- ---- agent ----
-- agent/session: the OMA-DM SessionID counter, the last SessionID used (one row, id 1).
CREATE TABLE agent_session (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  last_session_id INTEGER NOT NULL
);
-- Generic alerts (1226) not yet acknowledged by the server.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY,
  type       TEXT NOT NULL,
  format     TEXT NOT NULL,
  mark       TEXT NOT NULL DEFAULT '',
  source_uri TEXT NOT NULL DEFAULT '',
  data       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0
);

)sql";

// Version 2: containers bound to the device (container/key_sealer.h). seal_version 0 marks a
// row written before: pin_wrapped_master under scrypt(PIN) only and no counter MAC; the store
// seals such rows on its next open. 1: pin_wrapped_master sealed once more under the device's
// key sealer, and counter_mac authenticates failed_attempts, lockouts and locked_until.
constexpr char kVersion2[] = R"sql(
ALTER TABLE container ADD COLUMN seal_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE container ADD COLUMN counter_mac BLOB;
)sql";

// Version 3: software security keys bound to the device (container/security_key.h).
// counter_mac authenticates each key's PIN state under the device's key sealer; a row without
// it and with a sealed_secret of the old size is upgraded on its next load.
constexpr char kVersion3[] = R"sql(
ALTER TABLE security_key ADD COLUMN counter_mac BLOB;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kVersion1},
    {2, "containers bound to the device key", kVersion2},
    {3, "security keys bound to the device key", kVersion3},
};

}  // namespace

std::span<const Migration> AgentSchema() { return kMigrations; }

}  // namespace dm::storage
