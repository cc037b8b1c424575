// Admin operations, one code path for the `dmserver` CLI and the HTTPS admin API
// (POST /admin/v1/<op> with the same JSON). Secrets (password, TOTP secret) only travel in the
// JSON body or on the CLI's stdin, never in argv or logs.
//
// Operations, their arguments (JSON object) -> result:
//   tenant.add     name, id?, federated? -> id, name, federated, enrollment_token (a bulk token
//                  valid 30 days)
//   tenant.list    - -> tenants[]
//   user.add       tenant?, upn, password, totp_secret? (base32; generated when absent)
//                  -> upn, tenant, totp_secret (only when generated)
//   user.unlock    upn -> upn, unlocked: lifts the lock of too many failed sign-ins
//   group.add      tenant?, name, kind ("user" | "device"), all? (every device or user of the
//                  tenant is a member) -> name, kind, all, tenant
//   group.member   tenant?, group, member (UPN or DevId), remove? -> group, member, removed
//   profile.add    tenant?, name, replace?, settings[]: {uri, value?, format? ("chr"),
//                  type? ("text/plain"), verb? ("Replace" | "Add")} or
//                  {raw: "<Replace>...</Replace>"} -> name, tenant, settings
//   assign         tenant?, profile, group, mode? ("include" | "exclude"), remove?
//                  -> profile, group, mode, removed
//   consent        tenant?, app ("service" | "client" | app id), granted? (true)
//                  -> the tenant: id, name, federated, consent {service, client}
//   tenant.token   tenant?, valid_days? (30), revoke? -> a new bulk enrollment token (shown
//                  once, the old one stops working) and expires_at; or revoked
//   tenant.poll    tenant?, first_interval?, first_count?, second_interval?, second_count?,
//                  remaining_interval? (minutes) -> the tenant
//   device.retire  tenant?, device -> device, retired: its certificate stops working and the
//                  DeviceID may enroll again
//   report         - -> see report.h
//   device.report  device -> device, report (XML)
//   admin_token.create  scope ("global" | "tenant:<id or name>" | "read-only"), name?
//                  -> name, scope, token (shown once)
//   admin_token.list    - -> tokens[]: name, scope, created_at, rotated_at, revoked_at, revoked
//   admin_token.rotate  name -> name, token (the old one stops working)
//   admin_token.revoke  name -> name, revoked
// `tenant` is an id or name; omitted, the only tenant (for a tenant admin: its own).
//
// Who may run what (the table in admin.cpp, checked before anything runs; 403 otherwise):
// tenant.list, report and device.report need any token, and a tenant admin sees only its
// tenant's tenants, rows, devices and reports; tenant.add and admin_token.* need a global
// token; everything else works in one tenant and needs a global token or that tenant's admin.
// A read-only token runs nothing that writes.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "base/status.h"
#include "samples/server/admin_tokens.h"
#include "samples/server/store.h"

namespace dm::server {

// Takes the store lock for the operation (every caller needs exactly that). `scope` is the
// caller's: the admin API passes its bearer token's; the CLI, which works on the state
// directory itself, and in-process tests are the global operator.
Result<nlohmann::json> RunAdmin(Store& store, std::string_view op, const nlohmann::json& args,
                                const AdminScope& scope = AdminScope::Global());

}  // namespace dm::server
