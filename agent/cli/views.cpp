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
  j["ngc_set"] = info.ngc_set;
  j["ngc_key_id"] = info.ngc_key_id;
  j["can_reset"] = std::string(policy::CanResetName(recovery.can_reset));
  j["can_reset_reason"] = recovery.reason;
  j["protector_present"] = info.protector_present;
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
  dev["azure_ad_joined"] = aad;
  dev["enterprise_joined"] = false;
  dev["domain_joined"] = domain;
  dev["device_id"] = device_id;
  dev["join_type"] = std::string(policy::JoinTypeName(facts.join_type));
  dev["trust_model"] = std::string(policy::TrustModelName(facts.trust_model));
  dev["tpm_protected"] = facts.tpm_present;
  DM_ASSIGN_OR_RETURN(policy::BootRecord boot, device.policy().LastBoot());
  dev["boot_count"] = boot.count;
  dev["last_boot"] = boot.last_boot ? Json(FormatUtc(*boot.last_boot)) : Json(nullptr);
  out["device_state"] = dev;

  Json tenant;
  tenant["enrolled"] = enrollment.enrolled();
  tenant["tenant_id"] = enrollment.tenant_id;
  tenant["mdm_url"] = enrollment.management_url;
  tenant["pin_reset_service_url"] = enrollment.pin_reset_url;
  tenant["pin_reset_service_key"] = !enrollment.pin_reset_public_key_pem.empty();
  tenant["enrollment_kind"] = enrollment.kind.empty() ? "out of band" : enrollment.kind;
  tenant["provider_id"] = enrollment.provider_id;
  tenant["enrollment_type"] = enrollment.enrollment_type;
  tenant["enrolled_at"] = enrollment.enrolled_at > 0
                              ? Json(FormatUtc(FromUnixSeconds(enrollment.enrolled_at)))
                              : Json(nullptr);
  tenant["cert_thumbprint"] = nullptr;
  tenant["cert_expires"] = nullptr;
  if (!enrollment.device_cert_pem.empty()) {
    if (auto info = pki::ParseCertificate(enrollment.device_cert_pem); info.ok()) {
      tenant["cert_thumbprint"] = info->thumbprint;
      tenant["cert_expires"] = FormatUtc(info->not_after);
    }
  }
  out["tenant_details"] = tenant;

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
    j["signed_in"] = (u == signed_in);
    user_states.push_back(std::move(j));
  }
  out["user_state"] = user_states;

  Json pol;
  DM_ASSIGN_OR_RETURN(auto pending, device.policy().PendingReboot());
  Json pending_json = Json::array();
  for (const auto& s : pending) pending_json.push_back(SettingJson(s));
  pol["pending_reboot"] = pending_json;
  DM_ASSIGN_OR_RETURN(auto reboot_requests, csp::PendingRebootRequests(device.db()));
  pol["reboot_requested"] = !reboot_requests.empty();
  DM_ASSIGN_OR_RETURN(
      auto compliance,
      device.policy().Compliance(user ? std::optional<std::string>(*user) : std::nullopt));
  Json settings = Json::array();
  for (const auto& s : compliance) settings.push_back(SettingJson(s));
  pol["settings"] = settings;
  out["policy"] = pol;
  return out;
}

std::string StatusText(const Json& s) {
  std::ostringstream out;
  Banner(out, "Device State");
  const Json& d = s["device_state"];
  Line(out, "AzureAdJoined", YesNo(d["azure_ad_joined"].get<bool>()));
  Line(out, "EnterpriseJoined", YesNo(d["enterprise_joined"].get<bool>()));
  Line(out, "DomainJoined", YesNo(d["domain_joined"].get<bool>()));
  Line(out, "DeviceId", d["device_id"].get<std::string>());
  Line(out, "TpmProtected", YesNo(d["tpm_protected"].get<bool>()));
  Line(out, "TrustModel", d["trust_model"].get<std::string>());
  Line(out, "BootCount", std::to_string(d["boot_count"].get<int64_t>()));
  out << "\n";
  Banner(out, "Tenant Details");
  const Json& t = s["tenant_details"];
  Line(out, "Enrolled", YesNo(t["enrolled"].get<bool>()));
  if (t["enrolled"].get<bool>()) {
    Line(out, "TenantId", t["tenant_id"].get<std::string>());
    Line(out, "MdmUrl", t["mdm_url"].get<std::string>());
    Line(out, "EnrollmentKind", t["enrollment_kind"].get<std::string>());
    if (!t["provider_id"].get<std::string>().empty()) {
      Line(out, "ProviderId", t["provider_id"].get<std::string>());
      Line(out, "EnrollmentType", t["enrollment_type"].get<std::string>());
    }
    if (!t["enrolled_at"].is_null()) Line(out, "EnrolledAt", t["enrolled_at"].get<std::string>());
    if (!t["cert_thumbprint"].is_null()) {
      Line(out, "CertThumbprint", t["cert_thumbprint"].get<std::string>());
      Line(out, "CertExpires", t["cert_expires"].get<std::string>());
    }
    Line(out, "PinResetServiceUrl", t["pin_reset_service_url"].get<std::string>());
  }
  out << "\n";
  Banner(out, "User State");
  if (s["user_state"].empty()) out << "  (no users have signed in)\n";
  for (const Json& u : s["user_state"]) {
    Line(out, "User",
         u["user"].get<std::string>() + (u["signed_in"].get<bool>() ? " (signed in)" : ""));
    Line(out, "NgcSet", YesNo(u["ngc_set"].get<bool>()));
    if (u["ngc_set"].get<bool>()) Line(out, "NgcKeyId", u["ngc_key_id"].get<std::string>());
    Line(out, "CanReset", u["can_reset"].get<std::string>());
    if (!u["can_reset_reason"].get<std::string>().empty()) {
      Line(out, "CanResetReason", u["can_reset_reason"].get<std::string>());
    }
    out << "\n";
  }
  Banner(out, "Policy");
  const Json& p = s["policy"];
  Line(out, "RebootRequested", YesNo(p["reboot_requested"].get<bool>()));
  if (p["pending_reboot"].empty()) {
    Line(out, "PendingReboot", "none");
  } else {
    for (const Json& r : p["pending_reboot"]) {
      std::string who = r.contains("user") ? " (user " + r["user"].get<std::string>() + ")" : "";
      Line(out, "PendingReboot", r["setting"].get<std::string>() + " = " + Str(r["desired"]) + who);
    }
  }
  out << "\n";
  for (const Json& r : p["settings"]) {
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
    j["ngc_key_id"] = info.ngc_key_id;
    j["thumbprint"] = info.thumbprint;
    j["issuer"] = info.issuer_cn;
    j["self_signed"] = info.self_signed;
    j["not_before"] = FormatUtc(info.not_before);
    j["not_after"] = FormatUtc(info.not_after);
    j["created_at"] = FormatUtc(info.created_at);
    j["pin_set_at"] = FormatUtc(info.pin_set_at);
    j["pin_expired"] = info.pin_expired;
    j["protector_present"] = info.protector_present;
    j["locked_out"] = info.locked_out;
    j["retries_left"] = info.retries_left;
    if (info.last_reset) {
      j["last_reset"] = {{"kind", std::string(container::ResetKindName(info.last_reset->kind))},
                         {"at", FormatUtc(info.last_reset->at)},
                         {"old_thumbprint", info.last_reset->old_thumbprint},
                         {"new_thumbprint", info.last_reset->new_thumbprint}};
    }
  }
  j["can_reset"] = std::string(policy::CanResetName(recovery.can_reset));
  j["can_reset_reason"] = recovery.reason;
  return j;
}

std::string ContainerText(const Json& c) {
  std::ostringstream out;
  Line(out, "User", c["user"].get<std::string>());
  if (!c["exists"].get<bool>()) {
    Line(out, "Container", "none (Windows Hello not provisioned)");
  } else {
    Line(out, "NgcKeyId", c["ngc_key_id"].get<std::string>());
    Line(out, "Thumbprint", c["thumbprint"].get<std::string>());
    Line(out, "Issuer",
         c["issuer"].get<std::string>() + (c["self_signed"].get<bool>() ? " (self-signed)" : ""));
    Line(out, "CertificateValidity",
         "[ " + c["not_before"].get<std::string>() + " -- " + c["not_after"].get<std::string>() +
             " ]");
    Line(out, "PinSetAt", c["pin_set_at"].get<std::string>());
    Line(out, "ProtectorPresent", YesNo(c["protector_present"].get<bool>()));
    Line(out, "LockedOut", YesNo(c["locked_out"].get<bool>()));
    if (c.contains("last_reset")) {
      const Json& r = c["last_reset"];
      Line(out, "LastReset", r["kind"].get<std::string>() + " at " + r["at"].get<std::string>());
    }
  }
  Line(out, "CanReset", c["can_reset"].get<std::string>());
  if (!c["can_reset_reason"].get<std::string>().empty()) {
    Line(out, "CanResetReason", c["can_reset_reason"].get<std::string>());
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
