#include "samples/server/admin.h"

#include <map>

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

Result<json> Dispatch(Store& store, std::string_view op, const json& args) {
  if (op == "tenant.add") return TenantAdd(store, args);
  if (op == "tenant.list") {
    DM_ASSIGN_OR_RETURN(auto tenants, store.Tenants());
    json list = json::array();
    for (const Tenant& t : tenants) list.push_back(TenantJson(t));
    return json{{"tenants", list}};
  }
  if (op == "report") return BuildReport(store);
  if (op == "device.report") {
    DM_ASSIGN_OR_RETURN(std::string device, Required(args, "device"));
    DM_ASSIGN_OR_RETURN(std::string xml, LatestDeviceReport(store, device));
    return json{{"device", device}, {"report", xml}};
  }

  // Everything below works inside one tenant.
  DM_ASSIGN_OR_RETURN(Tenant tenant, store.ResolveTenant(Str(args, "tenant")));
  if (op == "user.add") return UserAdd(store, tenant, args);
  if (op == "group.add") {
    DM_ASSIGN_OR_RETURN(std::string name, Required(args, "name"));
    std::string kind = Str(args, "kind");
    if (kind != "user" && kind != "device") {
      return InvalidArgument("group kind must be \"user\" or \"device\"");
    }
    DM_RETURN_IF_ERROR(store.AddGroup(tenant.id, name,
                                      kind == "user" ? GroupKind::kUser : GroupKind::kDevice,
                                      Flag(args, "all")));
    return json{{"name", name}, {"kind", kind}, {"all", Flag(args, "all")}, {"tenant", tenant.id}};
  }
  if (op == "group.member") {
    DM_ASSIGN_OR_RETURN(std::string group, Required(args, "group"));
    DM_ASSIGN_OR_RETURN(std::string member, Required(args, "member"));
    const bool remove = Flag(args, "remove");
    DM_RETURN_IF_ERROR(remove ? store.RemoveMember(tenant.id, group, member)
                              : store.AddMember(tenant.id, group, member));
    return json{{"group", group}, {"member", member}, {"removed", remove}};
  }
  if (op == "profile.add") return ProfileAdd(store, tenant, args);
  if (op == "assign") {
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
  if (op == "consent") return Consent(store, tenant, args);
  if (op == "tenant.token") return TenantToken(store, tenant, args);
  if (op == "user.unlock") {
    DM_ASSIGN_OR_RETURN(std::string upn, Required(args, "upn"));
    DM_RETURN_IF_ERROR(store.UnlockSignIn(upn));
    return json{{"upn", upn}, {"unlocked", true}};
  }
  if (op == "tenant.poll") return TenantPoll(store, tenant, args);
  if (op == "device.retire") {
    DM_ASSIGN_OR_RETURN(std::string device, Required(args, "device"));
    DM_RETURN_IF_ERROR(store.RetireDevice(tenant.id, device));
    return json{{"device", device}, {"retired", true}};
  }
  return NotFound("unknown admin operation '" + std::string(op) + "'");
}

}  // namespace

Result<json> RunAdmin(Store& store, std::string_view op, const json& args) {
  auto lock = store.Lock();
  if (!args.is_object()) return InvalidArgument("arguments must be a JSON object");
  try {
    return Dispatch(store, op, args);
  } catch (const json::exception& e) {
    // Wrong JSON types ("name": 5) land here; the message names the field, never a value.
    return InvalidArgument(std::string("bad arguments: ") + e.what());
  }
}

}  // namespace dm::server
