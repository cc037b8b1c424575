#include "agent/cli/views.h"

#include <cstdio>
#include <sstream>

#include "agent/runtime/enrollment.h"
#include "base/log.h"
#include "base/pki.h"
#include "csp/device_facts.h"
#include "csp/reboot.h"

namespace dm::agent::cli {
namespace {

using Json = nlohmann::ordered_json;

const char* YesNo(bool b) { return b ? "YES" : "NO"; }

Json SettingJson(const policy::SettingStatus& s) {
  Json j;
  j["setting"] = s.setting;
  j["scope"] = s.scope == policy::Scope::kDevice ? "device" : "user";
  if (!s.user.empty()) j["user"] = s.user;
  j["state"] = std::string(policy::ComplianceStateName(s.state));
  j["desired"] = s.desired ? Json(*s.desired) : Json(nullptr);
  j["effective"] = s.effective ? Json(*s.effective) : Json(nullptr);
  j["source"] = s.source;
  j["takes_effect"] = std::string(policy::TakesEffectName(s.takes_effect));
  j["corrective"] = s.corrective;
  j["reason"] = s.reason;
  return j;
}

Result<Json> UserJson(Device& device, const std::string& user) {
  DM_ASSIGN_OR_RETURN(container::ContainerInfo info, device.containers().Info(user));
  DM_ASSIGN_OR_RETURN(policy::RecoveryState recovery, device.policy().Recovery(user));
  Json j;
  j["user"] = user;
  j["NgcSet"] = info.ngc_set;
  j["NgcKeyId"] = info.ngc_key_id;
  j["CanReset"] = std::string(policy::CanResetName(recovery.can_reset));
  j["CanResetReason"] = recovery.reason;
  j["ProtectorPresent"] = info.protector_present;
  return j;
}

void Line(std::ostringstream& out, std::string_view key, std::string_view value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%26.*s : ", static_cast<int>(key.size()), key.data());
  out << buf << Printable(value) << "\n";  // values can come from a server or a device
}

void Banner(std::ostringstream& out, std::string_view title) {
  out << "+" << std::string(78, '-') << "+\n| " << title << std::string(77 - title.size(), ' ')
      << "|\n+" << std::string(78, '-') << "+\n\n";
}

std::string Str(const Json& j) {
  if (j.is_null()) return "(not configured)";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "YES" : "NO";
  return j.dump();
}

}  // namespace

// Read-only: it shows what the last evaluation stored (every command that changes desired
// state evaluates), and changes nothing.
Result<Json> StatusJson(Device& device, const std::optional<std::string>& user) {
  Json out;
  DM_ASSIGN_OR_RETURN(policy::DeviceFacts facts, device.policy().Facts());
  DM_ASSIGN_OR_RETURN(std::string device_id, csp::DeviceId(device.db()));
  DM_ASSIGN_OR_RETURN(EnrollmentState enrollment, LoadEnrollment(device.db()));
  Json dev;
  // Joined to Entra ID means enrolled through it: a device that never enrolled claims no join,
  // whatever join type it was told to play.
  bool aad = enrollment.enrolled() && (facts.join_type == policy::JoinType::kAzureAdJoined ||
                                       facts.join_type == policy::JoinType::kHybridAzureAdJoined);
  bool domain = facts.join_type == policy::JoinType::kHybridAzureAdJoined ||
                facts.join_type == policy::JoinType::kDomainJoined;
  dev["AzureAdJoined"] = aad;
  dev["EnterpriseJoined"] = false;
  dev["DomainJoined"] = domain;
  dev["DeviceId"] = device_id;
  dev["JoinType"] = std::string(policy::JoinTypeName(facts.join_type));
  dev["TrustModel"] = std::string(policy::TrustModelName(facts.trust_model));
  dev["TpmProtected"] = facts.tpm_present;
  DM_ASSIGN_OR_RETURN(policy::BootRecord boot, device.policy().LastBoot());
  dev["BootCount"] = boot.count;
  dev["LastBoot"] = boot.last_boot ? Json(FormatUtc(*boot.last_boot)) : Json(nullptr);
  out["DeviceState"] = dev;

  Json tenant;
  tenant["Enrolled"] = enrollment.enrolled();
  tenant["TenantId"] = enrollment.tenant_id;
  tenant["MdmUrl"] = enrollment.management_url;
  tenant["PinResetServiceUrl"] = enrollment.pin_reset_url;
  tenant["PinResetServiceKey"] = !enrollment.pin_reset_public_key_pem.empty();
  tenant["EnrollmentKind"] = enrollment.kind.empty() ? "out of band" : enrollment.kind;
  tenant["ProviderId"] = enrollment.provider_id;
  tenant["EnrollmentType"] = enrollment.enrollment_type;
  tenant["EnrolledAt"] = enrollment.enrolled_at > 0
                             ? Json(FormatUtc(FromUnixSeconds(enrollment.enrolled_at)))
                             : Json(nullptr);
  tenant["CertThumbprint"] = nullptr;
  tenant["CertExpires"] = nullptr;
  if (!enrollment.device_cert_pem.empty()) {
    if (auto info = pki::ParseCertificate(enrollment.device_cert_pem); info.ok()) {
      tenant["CertThumbprint"] = info->thumbprint;
      tenant["CertExpires"] = FormatUtc(info->not_after);
    }
  }
  out["TenantDetails"] = tenant;

  DM_ASSIGN_OR_RETURN(std::string signed_in, device.SignedInUser());
  std::vector<std::string> users;
  if (user) {
    users.push_back(*user);
  } else {
    DM_ASSIGN_OR_RETURN(users, device.policy().Users());
  }
  Json user_states = Json::array();
  for (const std::string& u : users) {
    DM_ASSIGN_OR_RETURN(Json j, UserJson(device, u));
    j["SignedIn"] = (u == signed_in);
    user_states.push_back(std::move(j));
  }
  out["UserState"] = user_states;

  Json pol;
  DM_ASSIGN_OR_RETURN(auto pending, device.policy().PendingReboot());
  Json pending_json = Json::array();
  for (const auto& s : pending) pending_json.push_back(SettingJson(s));
  pol["PendingReboot"] = pending_json;
  DM_ASSIGN_OR_RETURN(auto reboot_requests, csp::PendingRebootRequests(device.db()));
  pol["RebootRequested"] = !reboot_requests.empty();
  DM_ASSIGN_OR_RETURN(
      auto compliance,
      device.policy().Compliance(user ? std::optional<std::string>(*user) : std::nullopt));
  Json settings = Json::array();
  for (const auto& s : compliance) settings.push_back(SettingJson(s));
  pol["Settings"] = settings;
  out["Policy"] = pol;
  return out;
}

std::string StatusText(const Json& s) {
  std::ostringstream out;
  Banner(out, "Device State");
  const Json& d = s["DeviceState"];
  Line(out, "AzureAdJoined", YesNo(d["AzureAdJoined"].get<bool>()));
  Line(out, "EnterpriseJoined", YesNo(d["EnterpriseJoined"].get<bool>()));
  Line(out, "DomainJoined", YesNo(d["DomainJoined"].get<bool>()));
  Line(out, "DeviceId", d["DeviceId"].get<std::string>());
  Line(out, "TpmProtected", YesNo(d["TpmProtected"].get<bool>()));
  Line(out, "TrustModel", d["TrustModel"].get<std::string>());
  Line(out, "BootCount", std::to_string(d["BootCount"].get<int64_t>()));
  out << "\n";
  Banner(out, "Tenant Details");
  const Json& t = s["TenantDetails"];
  Line(out, "Enrolled", YesNo(t["Enrolled"].get<bool>()));
  if (t["Enrolled"].get<bool>()) {
    Line(out, "TenantId", t["TenantId"].get<std::string>());
    Line(out, "MdmUrl", t["MdmUrl"].get<std::string>());
    Line(out, "EnrollmentKind", t["EnrollmentKind"].get<std::string>());
    if (!t["ProviderId"].get<std::string>().empty()) {
      Line(out, "ProviderId", t["ProviderId"].get<std::string>());
      Line(out, "EnrollmentType", t["EnrollmentType"].get<std::string>());
    }
    if (!t["EnrolledAt"].is_null()) Line(out, "EnrolledAt", t["EnrolledAt"].get<std::string>());
    if (!t["CertThumbprint"].is_null()) {
      Line(out, "CertThumbprint", t["CertThumbprint"].get<std::string>());
      Line(out, "CertExpires", t["CertExpires"].get<std::string>());
    }
    Line(out, "PinResetServiceUrl", t["PinResetServiceUrl"].get<std::string>());
  }
  out << "\n";
  Banner(out, "User State");
  if (s["UserState"].empty()) out << "  (no users have signed in)\n";
  for (const Json& u : s["UserState"]) {
    Line(out, "User",
         u["user"].get<std::string>() + (u["SignedIn"].get<bool>() ? " (signed in)" : ""));
    Line(out, "NgcSet", YesNo(u["NgcSet"].get<bool>()));
    if (u["NgcSet"].get<bool>()) Line(out, "NgcKeyId", u["NgcKeyId"].get<std::string>());
    Line(out, "CanReset", u["CanReset"].get<std::string>());
    if (!u["CanResetReason"].get<std::string>().empty()) {
      Line(out, "CanResetReason", u["CanResetReason"].get<std::string>());
    }
    out << "\n";
  }
  Banner(out, "Policy");
  const Json& p = s["Policy"];
  Line(out, "RebootRequested", YesNo(p["RebootRequested"].get<bool>()));
  if (p["PendingReboot"].empty()) {
    Line(out, "PendingReboot", "none");
  } else {
    for (const Json& r : p["PendingReboot"]) {
      std::string who = r.contains("user") ? " (user " + r["user"].get<std::string>() + ")" : "";
      Line(out, "PendingReboot", r["setting"].get<std::string>() + " = " + Str(r["desired"]) + who);
    }
  }
  out << "\n";
  for (const Json& r : p["Settings"]) {
    std::string who = r.contains("user") ? "[" + r["user"].get<std::string>() + "] " : "";
    out << "  " << who << r["setting"].get<std::string>() << ": " << r["state"].get<std::string>()
        << " (effective " << Str(r["effective"]) << ", source " << r["source"].get<std::string>()
        << (r["corrective"].get<bool>() ? ", corrected drift" : "") << ")";
    if (!r["reason"].get<std::string>().empty()) out << " — " << r["reason"].get<std::string>();
    out << "\n";
  }
  return out.str();
}

Result<Json> ContainerJson(Device& device, const std::string& user) {
  DM_ASSIGN_OR_RETURN(container::ContainerInfo info, device.containers().Info(user));
  DM_ASSIGN_OR_RETURN(policy::RecoveryState recovery, device.policy().Recovery(user));
  Json j;
  j["user"] = user;
  j["exists"] = info.exists;
  if (info.exists) {
    j["NgcKeyId"] = info.ngc_key_id;
    j["Thumbprint"] = info.thumbprint;
    j["Issuer"] = info.issuer_cn;
    j["SelfSigned"] = info.self_signed;
    j["NotBefore"] = FormatUtc(info.not_before);
    j["NotAfter"] = FormatUtc(info.not_after);
    j["CreatedAt"] = FormatUtc(info.created_at);
    j["PinSetAt"] = FormatUtc(info.pin_set_at);
    j["PinExpired"] = info.pin_expired;
    j["ProtectorPresent"] = info.protector_present;
    j["LockedOut"] = info.locked_out;
    j["RetriesLeft"] = info.retries_left;
    if (info.last_reset) {
      j["LastReset"] = {{"kind", std::string(container::ResetKindName(info.last_reset->kind))},
                        {"at", FormatUtc(info.last_reset->at)},
                        {"old_thumbprint", info.last_reset->old_thumbprint},
                        {"new_thumbprint", info.last_reset->new_thumbprint}};
    }
  }
  j["CanReset"] = std::string(policy::CanResetName(recovery.can_reset));
  j["CanResetReason"] = recovery.reason;
  return j;
}

std::string ContainerText(const Json& c) {
  std::ostringstream out;
  Line(out, "User", c["user"].get<std::string>());
  if (!c["exists"].get<bool>()) {
    Line(out, "Container", "none (Windows Hello not provisioned)");
  } else {
    Line(out, "NgcKeyId", c["NgcKeyId"].get<std::string>());
    Line(out, "Thumbprint", c["Thumbprint"].get<std::string>());
    Line(out, "Issuer",
         c["Issuer"].get<std::string>() + (c["SelfSigned"].get<bool>() ? " (self-signed)" : ""));
    Line(out, "CertificateValidity",
         "[ " + c["NotBefore"].get<std::string>() + " -- " + c["NotAfter"].get<std::string>() +
             " ]");
    Line(out, "PinSetAt", c["PinSetAt"].get<std::string>());
    Line(out, "ProtectorPresent", YesNo(c["ProtectorPresent"].get<bool>()));
    Line(out, "LockedOut", YesNo(c["LockedOut"].get<bool>()));
    if (c.contains("LastReset")) {
      const Json& r = c["LastReset"];
      Line(out, "LastReset", r["kind"].get<std::string>() + " at " + r["at"].get<std::string>());
    }
  }
  Line(out, "CanReset", c["CanReset"].get<std::string>());
  if (!c["CanResetReason"].get<std::string>().empty()) {
    Line(out, "CanResetReason", c["CanResetReason"].get<std::string>());
  }
  return out.str();
}

Json SimulationJson(const SimulationReport& r) {
  Json errors = Json::array();
  for (const auto& [message, count] : r.errors) {
    errors.push_back(Json{{"message", message}, {"count", count}});
  }
  return Json{
      {"devices", r.devices},
      {"enrollment",
       {{"enrolled", r.enrolled}, {"errors", r.enroll_errors}, {"seconds", r.enroll_seconds}}},
      {"sessions",
       {{"completed", r.sessions},
        {"errors", r.session_errors},
        {"seconds", r.run_seconds},
        {"per_second", r.sessions_per_second},
        {"offered_per_second", r.offered_per_second},
        {"missed_checkins", r.missed_checkins},
        {"tls_resumed", r.tls_resumed}}},
      {"latency_ms",
       {{"p50", r.latency.p50_ms},
        {"p90", r.latency.p90_ms},
        {"p99", r.latency.p99_ms},
        {"max", r.latency.max_ms}}},
      {"commands", {{"executed", r.commands}, {"failed", r.commands_failed}}},
      {"reports_delivered", r.reports_delivered},
      {"memory",
       {{"rss_before_bytes", r.rss_before_bytes},
        {"rss_peak_bytes", r.rss_peak_bytes},
        {"agent_bytes_per_device", r.agent_bytes_per_device}}},
      {"fleet_image_bytes", r.fleet_file_bytes},
      {"errors", errors}};
}

std::string SimulationTable(const SimulationReport& r) {
  std::ostringstream out;
  char line[160];
  auto row = [&](const char* name, const std::string& value) {
    std::snprintf(line, sizeof line, "  %-26s %s\n", name, value.c_str());
    out << line;
  };
  auto fmt = [](const char* f, auto... v) {
    char b[96];
    std::snprintf(b, sizeof b, f, v...);
    return std::string(b);
  };
  out << "Simulation\n";
  row("devices", fmt("%d (%d enrolled now in %.1f s, %d enrollment error(s))", r.devices,
                     r.enrolled, r.enroll_seconds, r.enroll_errors));
  row("sessions", fmt("%lld completed, %lld failed in %.1f s", static_cast<long long>(r.sessions),
                      static_cast<long long>(r.session_errors), r.run_seconds));
  row("session rate",
      fmt("%.0f/s (offered %.0f/s, %lld check-in(s) not started in time)", r.sessions_per_second,
          r.offered_per_second, static_cast<long long>(r.missed_checkins)));
  row("latency p50 / p90 / p99", fmt("%.1f / %.1f / %.1f ms (max %.1f ms)", r.latency.p50_ms,
                                     r.latency.p90_ms, r.latency.p99_ms, r.latency.max_ms));
  row("TLS sessions resumed", fmt("%lld", static_cast<long long>(r.tls_resumed)));
  row("commands", fmt("%lld executed, %lld failed", static_cast<long long>(r.commands),
                      static_cast<long long>(r.commands_failed)));
  row("reports delivered", fmt("%lld", static_cast<long long>(r.reports_delivered)));
  row("agent memory",
      fmt("%.1f KB per device (RSS %.1f MB before, %.1f MB peak)", r.agent_bytes_per_device / 1024,
          r.rss_before_bytes / 1048576.0, r.rss_peak_bytes / 1048576.0));
  row("fleet images", fmt("%.1f MB (%.1f KB per device)", r.fleet_file_bytes / 1048576.0,
                          r.devices > 0 ? r.fleet_file_bytes / 1024.0 / r.devices : 0.0));
  for (const auto& [message, count] : r.errors) {
    out << "  error x" << count << ": " << message << "\n";
  }
  return out.str();
}

}  // namespace dm::agent::cli
