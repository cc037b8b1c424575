// The admin API's bearer tokens. Each has a name and a scope: global (everything), one tenant
// (that tenant's operations and report rows), or read-only (reports and lists). A token is 256
// random bits, shown once when created or rotated; the database keeps only its SHA-256 (a fast
// hash is enough for that much entropy) and checks it in constant time. Revoked tokens stay
// listed, so a name is never reused for another token.
//
// Every function here works on the store's database: the caller holds Store::Lock().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

struct AdminScope {
  enum class Kind { kGlobal, kTenant, kReadOnly };
  Kind kind = Kind::kReadOnly;
  std::string tenant_id;  // kTenant only: the tenant's id (or, just parsed, what was typed)

  static AdminScope Global() {
    AdminScope s;
    s.kind = Kind::kGlobal;
    return s;
  }
};
// "global", "read-only" or "tenant:<id or name>" (the tenant is left as typed).
Result<AdminScope> ParseAdminScope(std::string_view text);
std::string AdminScopeName(const AdminScope& scope);  // the same forms, with the tenant id

// The token InitState makes (and writes to the state directory's admin-token file).
inline constexpr char kInitialAdminTokenName[] = "initial";

struct AdminTokenInfo {
  std::string name;
  AdminScope scope;
  int64_t created_at = 0;  // Unix seconds
  int64_t rotated_at = 0;  // 0: never
  int64_t revoked_at = 0;  // 0: in force
};

struct IssuedAdminToken {
  std::string name;
  std::string token;  // shown once
};

// `name` empty: one is made up. A kTenant scope must carry an existing tenant's id.
Result<IssuedAdminToken> CreateAdminToken(Store& store, std::string_view name,
                                          const AdminScope& scope);
// Stores a token the caller made (the initial one); AlreadyExists when the name was used.
Status AddAdminToken(Store& store, std::string_view name, const AdminScope& scope,
                     std::string_view token);
// Whether a token of that name exists or existed (revoked).
Result<bool> AdminTokenNameUsed(Store& store, std::string_view name);
// A new token for the name, same scope; the old one stops working at once.
Result<std::string> RotateAdminToken(Store& store, std::string_view name);
Status RevokeAdminToken(Store& store, std::string_view name);
Result<std::vector<AdminTokenInfo>> AdminTokens(Store& store);

struct AdminCaller {
  std::string name;  // the token's
  AdminScope scope;
};
// Unauthenticated for an unknown, rotated-away or revoked token.
Result<AdminCaller> AuthenticateAdminToken(Store& store, std::string_view token);

}  // namespace dm::server
