#include "samples/server/admin.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>

#include "container/local_pin_reset_service.h"
#include "samples/server/report.h"
#include "samples/server/targeting.h"

namespace dm::server {
namespace {

using nlohmann::json;

std::string Str(const json& args, const char* key, std::string fallback = "") {
  if (!args.contains(key) || args.at(key).is_null()) return fallback;
  return args.at(key).get<std::string>();
}
bool Flag(const json& args, const char* key, bool fallback = false) {
  if (!args.contains(key) || args.at(key).is_null()) return fallback;
  return args.at(key).get<bool>();
}
Result<std::string> Required(const json& args, const char* key) {
  std::string v = Str(args, key);
  if (v.empty()) return InvalidArgument(std::string("missing \"") + key + "\"");
  return v;
}

json TenantJson(const Tenant& t) {
  return json{{"id", t.id},
              {"name", t.name},
              {"federated", t.federated},
              {"consent",
               {{"service", t.consent_pin_reset_service}, {"client", t.consent_pin_reset_client}}},
              {"enrollment_token_expires_at", t.enrollment_token_expires_at},
              {"poll",
               {{"first_interval", t.poll.first_interval_min},
                {"first_count", t.poll.first_count},
                {"second_interval", t.poll.second_interval_min},
                {"second_count", t.poll.second_count},
                {"remaining_interval", t.poll.remaining_interval_min}}}};
}

int IntArg(const json& args, const char* key, int fallback) {
  if (!args.contains(key) || args.at(key).is_null()) return fallback;
  return args.at(key).get<int>();
}

Result<json> TenantToken(Store& store, const Tenant& tenant, const json& args) {
  if (Flag(args, "revoke")) {
    DM_RETURN_IF_ERROR(store.RevokeEnrollmentToken(tenant.id));
    return json{{"tenant", tenant.id}, {"revoked", true}};
  }
  const int days = IntArg(args, "valid_days", 30);
  DM_ASSIGN_OR_RETURN(std::string token,
                      store.RotateEnrollmentToken(tenant.id, std::chrono::hours(24) * days));
  DM_ASSIGN_OR_RETURN(Tenant updated, store.TenantById(tenant.id));
  return json{{"tenant", tenant.id},
              {"enrollment_token", token},
              {"expires_at", updated.enrollment_token_expires_at}};
}

Result<json> TenantPoll(Store& store, const Tenant& tenant, const json& args) {
  PollSchedule p = tenant.poll;
  p.first_interval_min = IntArg(args, "first_interval", p.first_interval_min);
  p.first_count = IntArg(args, "first_count", p.first_count);
  p.second_interval_min = IntArg(args, "second_interval", p.second_interval_min);
  p.second_count = IntArg(args, "second_count", p.second_count);
  p.remaining_interval_min = IntArg(args, "remaining_interval", p.remaining_interval_min);
  DM_RETURN_IF_ERROR(store.SetPollSchedule(tenant.id, p));
  DM_ASSIGN_OR_RETURN(Tenant updated, store.TenantById(tenant.id));
  return TenantJson(updated);
}

Result<json> TenantAdd(Store& store, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string name, Required(args, "name"));
  DM_ASSIGN_OR_RETURN(CreatedTenant t,
                      store.AddTenant(name, Str(args, "id"), Flag(args, "federated")));
  json out = TenantJson(t.tenant);
  out["enrollment_token"] = t.enrollment_token;
  return out;
}

Result<json> UserAdd(Store& store, const Tenant& tenant, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string upn, Required(args, "upn"));
  SecretBytes password(Str(args, "password"));
  json out{{"upn", upn}, {"tenant", tenant.id}};
  SecretBytes totp;
  std::string totp_b32 = Str(args, "totp_secret");
  if (totp_b32.empty()) {
    DM_ASSIGN_OR_RETURN(totp, store.random().Secret(20));
    // Generated here, so shown once for the user's authenticator app.
    out["totp_secret"] = crypto::Base32Encode(totp.span());
  } else {
    DM_ASSIGN_OR_RETURN(totp, crypto::Base32Decode(totp_b32));
  }
  DM_RETURN_IF_ERROR(store.AddUser(tenant.id, upn, password, totp));
  return out;
}

Result<json> ProfileAdd(Store& store, const Tenant& tenant, const json& args) {
  Profile p;
  p.tenant_id = tenant.id;
  DM_ASSIGN_OR_RETURN(p.name, Required(args, "name"));
  if (!args.contains("settings") || !args.at("settings").is_array()) {
    return InvalidArgument("missing \"settings\" (an array)");
  }
  for (const json& s : args.at("settings")) {
    ProfileSetting setting;
    if (s.contains("raw")) {
      setting.kind = ProfileSetting::Kind::kRaw;
      setting.value = s.at("raw").get<std::string>();
    } else {
      DM_ASSIGN_OR_RETURN(setting.loc_uri, Required(s, "uri"));
      setting.value = Str(s, "value");
      setting.format = Str(s, "format", "chr");
      setting.type = Str(s, "type", "text/plain");
      setting.verb = Str(s, "verb", "Replace");
    }
    p.settings.push_back(std::move(setting));
  }
  DM_RETURN_IF_ERROR(store.AddProfile(p, Flag(args, "replace")));
  return json{{"name", p.name}, {"tenant", tenant.id}, {"settings", p.settings.size()}};
}

Result<json> Consent(Store& store, const Tenant& tenant, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string app, Required(args, "app"));
  if (app == "service") app = container::kPinResetServiceAppId;
  if (app == "client") app = container::kPinResetClientAppId;
  DM_RETURN_IF_ERROR(store.SetConsent(tenant.id, app, Flag(args, "granted", true)));
  DM_ASSIGN_OR_RETURN(Tenant updated, store.TenantById(tenant.id));
  return TenantJson(updated);
}

// ---- operations across tenants: each gets the caller's scope and shows or touches only what
// that scope covers ----

bool Covers(const AdminScope& scope, std::string_view tenant_id) {
  return scope.kind != AdminScope::Kind::kTenant || scope.tenant_id == tenant_id;
}
Status CheckCovers(const AdminScope& scope, std::string_view tenant_id, std::string_view what) {
  if (Covers(scope, tenant_id)) return Status::Ok();
  // The same answer whether the object exists elsewhere or not at all.
  return PermissionDenied(std::string(what) + " is not in tenant " + scope.tenant_id +
                          ", the only one this token administers");
}

Result<json> TenantList(Store& store, const AdminScope& scope, const json&) {
  DM_ASSIGN_OR_RETURN(auto tenants, store.Tenants());
  json list = json::array();
  for (const Tenant& t : tenants) {
    if (Covers(scope, t.id)) list.push_back(TenantJson(t));
  }
  return json{{"tenants", list}};
}

Result<json> Report(Store& store, const AdminScope& scope, const json&) {
  DM_ASSIGN_OR_RETURN(json report, BuildReport(store));
  if (scope.kind != AdminScope::Kind::kTenant) return report;
  for (const char* key : {"rows", "devices"}) {
    json kept = json::array();
    for (json& row : report.at(key)) {
      if (row.at("tenant") == scope.tenant_id) kept.push_back(std::move(row));
    }
    report[key] = std::move(kept);
  }
  return report;
}

Result<json> DeviceReport(Store& store, const AdminScope& scope, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string device, Required(args, "device"));
  if (scope.kind == AdminScope::Kind::kTenant) {
    DM_ASSIGN_OR_RETURN(std::optional<Device> d, store.FindDevice(device));
    DM_RETURN_IF_ERROR(CheckCovers(scope, d ? d->tenant_id : "", "device " + device));
  }
  DM_ASSIGN_OR_RETURN(std::string xml, LatestDeviceReport(store, device));
  return json{{"device", device}, {"report", xml}};
}

Result<json> UserUnlock(Store& store, const AdminScope& scope, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string upn, Required(args, "upn"));
  if (scope.kind == AdminScope::Kind::kTenant) {
    auto user = store.FindUser(upn);
    DM_RETURN_IF_ERROR(CheckCovers(scope, user.ok() ? user->tenant_id : "", "user " + upn));
  }
  // Sign-in failures count per name, known or not, so any name can be unlocked.
  DM_RETURN_IF_ERROR(store.UnlockSignIn(upn));
  return json{{"upn", upn}, {"unlocked", true}};
}

json TokenJson(const AdminTokenInfo& t) {
  return json{{"name", t.name},
              {"scope", AdminScopeName(t.scope)},
              {"created_at", t.created_at},
              {"rotated_at", t.rotated_at},
              {"revoked_at", t.revoked_at},
              {"revoked", t.revoked_at != 0}};
}

Result<json> TokenCreate(Store& store, const AdminScope&, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string scope_text, Required(args, "scope"));
  DM_ASSIGN_OR_RETURN(AdminScope scope, ParseAdminScope(scope_text));
  if (scope.kind == AdminScope::Kind::kTenant) {
    DM_ASSIGN_OR_RETURN(Tenant t, store.ResolveTenant(scope.tenant_id));
    scope.tenant_id = t.id;
  }
  DM_ASSIGN_OR_RETURN(IssuedAdminToken issued, CreateAdminToken(store, Str(args, "name"), scope));
  return json{{"name", issued.name}, {"scope", AdminScopeName(scope)}, {"token", issued.token}};
}

Result<json> TokenList(Store& store, const AdminScope&, const json&) {
  DM_ASSIGN_OR_RETURN(auto tokens, AdminTokens(store));
  json list = json::array();
  for (const AdminTokenInfo& t : tokens) list.push_back(TokenJson(t));
  return json{{"tokens", list}};
}

Result<json> TokenRotate(Store& store, const AdminScope&, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string name, Required(args, "name"));
  DM_ASSIGN_OR_RETURN(std::string token, RotateAdminToken(store, name));
  return json{{"name", name}, {"token", token}};
}

Result<json> TokenRevoke(Store& store, const AdminScope&, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string name, Required(args, "name"));
  DM_RETURN_IF_ERROR(RevokeAdminToken(store, name));
  return json{{"name", name}, {"revoked", true}};
}

// ---- operations inside one tenant (RunAdmin resolves it for the caller) ----

Result<json> GroupAdd(Store& store, const Tenant& tenant, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string name, Required(args, "name"));
  std::string kind = Str(args, "kind");
  if (kind != "user" && kind != "device") {
    return InvalidArgument("group kind must be \"user\" or \"device\"");
  }
  DM_RETURN_IF_ERROR(store.AddGroup(
      tenant.id, name, kind == "user" ? GroupKind::kUser : GroupKind::kDevice, Flag(args, "all")));
  return json{{"name", name}, {"kind", kind}, {"all", Flag(args, "all")}, {"tenant", tenant.id}};
}

Result<json> GroupMember(Store& store, const Tenant& tenant, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string group, Required(args, "group"));
  DM_ASSIGN_OR_RETURN(std::string member, Required(args, "member"));
  const bool remove = Flag(args, "remove");
  DM_RETURN_IF_ERROR(remove ? store.RemoveMember(tenant.id, group, member)
                            : store.AddMember(tenant.id, group, member));
  return json{{"group", group}, {"member", member}, {"removed", remove}};
}

Result<json> Assign(Store& store, const Tenant& tenant, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string profile, Required(args, "profile"));
  DM_ASSIGN_OR_RETURN(std::string group, Required(args, "group"));
  std::string mode = Str(args, "mode", "include");
  if (mode != "include" && mode != "exclude") {
    return InvalidArgument("mode must be \"include\" or \"exclude\"");
  }
  if (Flag(args, "remove")) {
    DM_RETURN_IF_ERROR(store.Unassign(tenant.id, profile, group));
  } else {
    DM_RETURN_IF_ERROR(
        store.Assign(tenant.id, profile, group,
                     mode == "include" ? AssignMode::kInclude : AssignMode::kExclude));
  }
  return json{
      {"profile", profile}, {"group", group}, {"mode", mode}, {"removed", Flag(args, "remove")}};
}

Result<json> DeviceRetire(Store& store, const Tenant& tenant, const json& args) {
  DM_ASSIGN_OR_RETURN(std::string device, Required(args, "device"));
  DM_RETURN_IF_ERROR(store.RetireDevice(tenant.id, device));
  return json{{"device", device}, {"retired", true}};
}

// ---- the table: every operation, the scope it needs, its handler ----

enum class Access {
  kRead,    // any token; a tenant admin sees its own tenant only
  kTenant,  // a global token, or the admin of the tenant the operation works in
  kGlobal,  // a global token only
};

struct Op {
  std::string_view name;
  Access access;
  // One of the two: across tenants (gets the scope), or inside the tenant RunAdmin resolved.
  Result<json> (*across)(Store&, const AdminScope&, const json&);
  Result<json> (*in_tenant)(Store&, const Tenant&, const json&);
};

const Op kOps[] = {
    {"tenant.add", Access::kGlobal,
     [](Store& s, const AdminScope&, const json& a) { return TenantAdd(s, a); }, nullptr},
    {"tenant.list", Access::kRead, TenantList, nullptr},
    {"report", Access::kRead, Report, nullptr},
    {"device.report", Access::kRead, DeviceReport, nullptr},
    {"user.unlock", Access::kTenant, UserUnlock, nullptr},
    {"admin_token.create", Access::kGlobal, TokenCreate, nullptr},
    {"admin_token.list", Access::kGlobal, TokenList, nullptr},
    {"admin_token.rotate", Access::kGlobal, TokenRotate, nullptr},
    {"admin_token.revoke", Access::kGlobal, TokenRevoke, nullptr},
    {"user.add", Access::kTenant, nullptr, UserAdd},
    {"group.add", Access::kTenant, nullptr, GroupAdd},
    {"group.member", Access::kTenant, nullptr, GroupMember},
    {"profile.add", Access::kTenant, nullptr, ProfileAdd},
    {"assign", Access::kTenant, nullptr, Assign},
    {"consent", Access::kTenant, nullptr, Consent},
    {"tenant.token", Access::kTenant, nullptr, TenantToken},
    {"tenant.poll", Access::kTenant, nullptr, TenantPoll},
    {"device.retire", Access::kTenant, nullptr, DeviceRetire},
};

Status Authorize(const AdminScope& scope, Access access, std::string_view op) {
  const bool allowed = scope.kind == AdminScope::Kind::kGlobal || access == Access::kRead ||
                       (access == Access::kTenant && scope.kind == AdminScope::Kind::kTenant);
  if (allowed) return Status::Ok();
  return PermissionDenied("this token (" + AdminScopeName(scope) + ") may not run " +
                          std::string(op));
}

// The tenant an operation works in: a tenant admin's own (naming another is PermissionDenied,
// whether it exists or not), else the one named or the only one.
Result<Tenant> TenantFor(Store& store, const AdminScope& scope, const json& args) {
  const std::string named = Str(args, "tenant");
  if (scope.kind != AdminScope::Kind::kTenant) return store.ResolveTenant(named);
  if (!named.empty()) {
    auto t = store.ResolveTenant(named);
    DM_RETURN_IF_ERROR(CheckCovers(scope, t.ok() ? t->id : "", "tenant '" + named + "'"));
  }
  return store.TenantById(scope.tenant_id);
}

Result<json> Dispatch(Store& store, std::string_view name, const json& args,
                      const AdminScope& scope) {
  const Op* op =
      std::find_if(std::begin(kOps), std::end(kOps), [&](const Op& o) { return o.name == name; });
  if (op == std::end(kOps)) return NotFound("unknown admin operation '" + std::string(name) + "'");
  DM_RETURN_IF_ERROR(Authorize(scope, op->access, name));
  if (op->across) return op->across(store, scope, args);
  DM_ASSIGN_OR_RETURN(Tenant tenant, TenantFor(store, scope, args));
  return op->in_tenant(store, tenant, args);
}

}  // namespace

Result<json> RunAdmin(Store& store, std::string_view op, const json& args,
                      const AdminScope& scope) {
  auto lock = store.Lock();
  if (!args.is_object()) return InvalidArgument("arguments must be a JSON object");
  try {
    return Dispatch(store, op, args, scope);
  } catch (const json::exception& e) {
    // Wrong JSON types ("name": 5) land here; the message names the field, never a value.
    return InvalidArgument(std::string("bad arguments: ") + e.what());
  }
}

}  // namespace dm::server
