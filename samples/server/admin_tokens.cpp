#include "samples/server/admin_tokens.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "base/crypto.h"
#include "base/log.h"

namespace dm::server {
namespace {

constexpr std::string_view kTenantPrefix = "tenant:";

std::string_view KindName(AdminScope::Kind kind) {
  switch (kind) {
    case AdminScope::Kind::kGlobal:
      return "global";
    case AdminScope::Kind::kTenant:
      return "tenant";
    case AdminScope::Kind::kReadOnly:
      break;
  }
  return "read-only";
}

Status CheckName(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  std::all_of(name.begin(), name.end(), [](unsigned char c) {
                    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
                  });
  if (!ok) return InvalidArgument("an admin token name is 1-64 letters, digits, '-', '_' or '.'");
  return Status::Ok();
}

Result<std::string> NewToken(crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(SecretBytes raw, random.Secret(32));
  return crypto::HexEncode(raw.span());
}

AdminScope ScopeFromRow(const std::string& kind, std::optional<std::string> tenant_id) {
  AdminScope s;
  if (kind == "global") s.kind = AdminScope::Kind::kGlobal;
  if (kind == "tenant") {
    s.kind = AdminScope::Kind::kTenant;
    s.tenant_id = tenant_id.value_or("");
  }
  return s;  // anything else reads as read-only, the least a row can grant
}

}  // namespace

Result<AdminScope> ParseAdminScope(std::string_view text) {
  if (text == "global") return AdminScope::Global();
  if (text == "read-only") return AdminScope{};
  if (text.substr(0, kTenantPrefix.size()) == kTenantPrefix && text.size() > kTenantPrefix.size()) {
    AdminScope s;
    s.kind = AdminScope::Kind::kTenant;
    s.tenant_id = std::string(text.substr(kTenantPrefix.size()));
    return s;
  }
  return InvalidArgument("an admin token scope is global, read-only or tenant:<id or name>");
}

std::string AdminScopeName(const AdminScope& scope) {
  if (scope.kind == AdminScope::Kind::kTenant) {
    return std::string(kTenantPrefix) + scope.tenant_id;
  }
  return std::string(KindName(scope.kind));
}

Status AddAdminToken(Store& store, std::string_view name, const AdminScope& scope,
                     std::string_view token) {
  DM_RETURN_IF_ERROR(CheckName(name));
  if (token.empty()) return InvalidArgument("an admin token cannot be empty");
  DM_ASSIGN_OR_RETURN(bool used, AdminTokenNameUsed(store, name));
  if (used) return AlreadyExists("an admin token named '" + std::string(name) + "' exists");
  std::optional<std::string> tenant;
  if (scope.kind == AdminScope::Kind::kTenant) {
    DM_ASSIGN_OR_RETURN(Tenant t, store.TenantById(scope.tenant_id));
    tenant = t.id;
  }
  DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(token));
  DM_RETURN_IF_ERROR(
      store.db().Run("INSERT INTO admin_tokens (name, scope, tenant_id, token_sha256, created_at) "
                     "VALUES (?, ?, ?, ?, ?)",
                     name, KindName(scope.kind), tenant, digest, store.Now()));
  spdlog::info("admin token '{}' ({}) created", name, AdminScopeName(scope));
  return Status::Ok();
}

Result<IssuedAdminToken> CreateAdminToken(Store& store, std::string_view name,
                                          const AdminScope& scope) {
  IssuedAdminToken issued;
  issued.name = std::string(name);
  if (issued.name.empty()) {
    DM_ASSIGN_OR_RETURN(Bytes id, store.random().Public(4));
    issued.name = "token-" + crypto::HexEncode(id);
  }
  DM_ASSIGN_OR_RETURN(issued.token, NewToken(store.random()));
  DM_RETURN_IF_ERROR(AddAdminToken(store, issued.name, scope, issued.token));
  return issued;
}

Result<bool> AdminTokenNameUsed(Store& store, std::string_view name) {
  DM_ASSIGN_OR_RETURN(auto st, store.db().Prepare("SELECT 1 FROM admin_tokens WHERE name = ?"));
  st.Bind(1, name);
  return st.Step();
}

Result<std::string> RotateAdminToken(Store& store, std::string_view name) {
  DM_ASSIGN_OR_RETURN(std::string token, NewToken(store.random()));
  DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(token));
  DM_RETURN_IF_ERROR(store.db().Run(
      "UPDATE admin_tokens SET token_sha256 = ?, rotated_at = ? WHERE name = ? AND revoked_at = 0",
      digest, store.Now(), name));
  if (store.db().Changes() == 0) {
    return NotFound("no admin token '" + std::string(name) + "' in force");
  }
  spdlog::info("admin token '{}' rotated", Printable(name));
  return token;
}

Status RevokeAdminToken(Store& store, std::string_view name) {
  DM_RETURN_IF_ERROR(
      store.db().Run("UPDATE admin_tokens SET revoked_at = ? WHERE name = ? AND revoked_at = 0",
                     store.Now(), name));
  if (store.db().Changes() == 0) {
    return NotFound("no admin token '" + std::string(name) + "' in force");
  }
  spdlog::info("admin token '{}' revoked", Printable(name));
  return Status::Ok();
}

Result<std::vector<AdminTokenInfo>> AdminTokens(Store& store) {
  DM_ASSIGN_OR_RETURN(auto st, store.db().Prepare("SELECT name, scope, tenant_id, created_at, "
                                                  "rotated_at, revoked_at FROM admin_tokens "
                                                  "ORDER BY name"));
  std::vector<AdminTokenInfo> out;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    AdminTokenInfo info;
    info.name = st.Text(0);
    info.scope = ScopeFromRow(st.Text(1), st.OptText(2));
    info.created_at = st.Int(3);
    info.rotated_at = st.Int(4);
    info.revoked_at = st.Int(5);
    out.push_back(std::move(info));
  }
  return out;
}

Result<AdminCaller> AuthenticateAdminToken(Store& store, std::string_view token) {
  DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(token));
  DM_ASSIGN_OR_RETURN(auto st, store.db().Prepare("SELECT name, token_sha256, scope, tenant_id "
                                                  "FROM admin_tokens WHERE revoked_at = 0"));
  // Every digest is compared in constant time rather than the token looked up by index.
  std::optional<AdminCaller> match;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    const std::string stored = st.Text(1);
    if (!token.empty() && stored.size() == digest.size() &&
        CRYPTO_memcmp(stored.data(), digest.data(), digest.size()) == 0) {
      match = AdminCaller{st.Text(0), ScopeFromRow(st.Text(2), st.OptText(3))};
    }
  }
  if (!match) return Unauthenticated("not an admin token in force");
  return *match;
}

}  // namespace dm::server
