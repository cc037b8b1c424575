#include "samples/server/report.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "base/log.h"
#include "samples/server/management.h"
#include "samples/server/targeting.h"

namespace dm::server {
namespace {

using nlohmann::json;

// Why a setting is still Pending, in words an admin can act on.
std::string PendingReason(const Device& device, const std::string& upn, bool queued,
                          bool needs_user, int64_t sent_count) {
  if (!device.enrolled) return "device unenrolled";
  if (queued && !upn.empty() && device.signed_in_upn != upn) {
    return "waiting for " + upn + " to sign in on the device";
  }
  if (queued && needs_user && device.signed_in_upn.empty()) {
    return "waiting for a user to sign in (./User/ setting)";
  }
  if (sent_count > 0) return "sent " + std::to_string(sent_count) + "x, no answer yet";
  return "not delivered yet: waiting for the device to check in";
}

}  // namespace

Result<json> BuildReport(Store& store) {
  DM_RETURN_IF_ERROR(ReconcileAll(store));
  DM_ASSIGN_OR_RETURN(std::vector<Device> devices, store.Devices());
  json rows = json::array();
  json device_list = json::array();
  DM_ASSIGN_OR_RETURN(
      auto settings,
      store.db().Prepare("SELECT s.upn, p.name, s.loc_uri, s.status, s.code, s.reason, "
                         "c.state = 'queued', c.needs_user, c.sent_count "
                         "FROM setting_status s JOIN profiles p ON p.id = s.profile_id "
                         "LEFT JOIN commands c ON c.uuid = s.command_uuid "
                         "WHERE s.dev_id = ? ORDER BY s.upn, p.name, s.setting_idx"));
  DM_ASSIGN_OR_RETURN(auto recovery,
                      store.db().Prepare("SELECT upn, can_reset, reason FROM user_recovery "
                                         "WHERE dev_id = ? ORDER BY upn"));
  DM_ASSIGN_OR_RETURN(auto reports,
                      store.db().Prepare("SELECT COUNT(*) FROM device_reports WHERE dev_id = ?"));
  for (const Device& d : devices) {
    // The device's recovery report, by the user name it used.
    std::vector<std::array<std::string, 3>> can_reset;  // user, CanReset, reason
    DM_RETURN_IF_ERROR(recovery.Reset());
    recovery.Bind(1, d.dev_id);
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, recovery.Step());
      if (!row) break;
      can_reset.push_back({recovery.Text(0), recovery.Text(1), recovery.Text(2)});
    }
    // null for device rows and for users the device has not reported on.
    auto can_reset_of = [&](const std::string& upn) -> json {
      for (const auto& r : can_reset) {
        if (!upn.empty() && SameUser(r[0], upn)) return r[1];
      }
      return nullptr;
    };
    std::set<std::string> users_with_rows;
    DM_RETURN_IF_ERROR(settings.Reset());
    settings.Bind(1, d.dev_id);
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, settings.Step());
      if (!row) break;
      std::string upn = settings.Text(0);
      std::string status = settings.Text(3);
      std::string reason = settings.Text(5);
      if (status == "Pending" && reason.empty()) {
        reason = PendingReason(d, upn, settings.Int(6) != 0, settings.Int(7) != 0, settings.Int(8));
      }
      if (!upn.empty()) users_with_rows.insert(upn);
      rows.push_back(json{{"device", d.dev_id},
                          {"tenant", d.tenant_id},
                          {"user", upn},
                          {"profile", settings.Text(1)},
                          {"setting", settings.Text(2)},
                          {"status", status},
                          {"code", settings.IsNull(4) ? json(nullptr) : json(settings.Int(4))},
                          {"reason", reason},
                          {"can_reset", can_reset_of(upn)}});
    }
    for (const auto& r : can_reset) {
      if (std::any_of(users_with_rows.begin(), users_with_rows.end(),
                      [&](const std::string& upn) { return SameUser(r[0], upn); })) {
        continue;
      }
      rows.push_back(json{{"device", d.dev_id},
                          {"tenant", d.tenant_id},
                          {"user", r[0]},
                          {"profile", ""},
                          {"setting", ""},
                          {"status", ""},
                          {"code", nullptr},
                          {"reason", r[2]},
                          {"can_reset", r[1]}});
    }
    DM_RETURN_IF_ERROR(reports.Reset());
    reports.Bind(1, d.dev_id);
    DM_ASSIGN_OR_RETURN(bool has, reports.Step());
    device_list.push_back(
        json{{"device", d.dev_id},
             {"tenant", d.tenant_id},
             {"enrolled", d.enrolled},
             {"enrolled_user", d.enrolled_upn},
             {"signed_in_user", d.signed_in_upn},
             {"login_status", d.login_status},
             {"last_seen", d.last_seen ? FormatUtc(FromUnixSeconds(d.last_seen)) : std::string()},
             {"manufacturer", d.manufacturer},
             {"model", d.model},
             {"has_report", has && reports.Int(0) > 0}});
  }
  return json{{"rows", rows}, {"devices", device_list}};
}

std::string FormatReportTable(const json& report) {
  const std::vector<std::pair<std::string, std::string>> columns = {
      {"device", "DEVICE"},     {"user", "USER"},     {"profile", "PROFILE"},
      {"setting", "SETTING"},   {"status", "STATUS"}, {"code", "CODE/REASON"},
      {"can_reset", "CANRESET"}};
  std::vector<std::vector<std::string>> cells;
  for (const json& row : report.at("rows")) {
    std::vector<std::string> line;
    for (const auto& [key, title] : columns) {
      std::string v;
      if (key == "code") {
        const json& code = row.at("code");
        std::string reason = row.at("reason").get<std::string>();
        v = code.is_null() ? reason : std::to_string(code.get<int64_t>());
        if (!code.is_null() && !reason.empty()) v += " " + reason;
      } else if (key == "user") {
        v = row.at("user").get<std::string>();
        if (v.empty()) v = "(device)";
      } else if (!row.at(key).is_null()) {
        v = row.at(key).get<std::string>();
      }
      if (v.empty()) v = "-";
      line.push_back(Printable(v));  // users, reasons and ids come from devices
    }
    cells.push_back(std::move(line));
  }
  std::vector<size_t> width;
  for (const auto& [key, title] : columns) width.push_back(title.size());
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  }
  auto emit = [&](const std::vector<std::string>& line, std::string* out) {
    for (size_t i = 0; i < line.size(); ++i) {
      out->append(line[i]);
      if (i + 1 < line.size()) out->append(width[i] - line[i].size() + 2, ' ');
    }
    out->push_back('\n');
  };
  std::string out;
  std::vector<std::string> header;
  for (const auto& [key, title] : columns) header.push_back(title);
  emit(header, &out);
  for (const auto& line : cells) emit(line, &out);
  if (cells.empty()) out += "(no devices with assigned settings yet)\n";
  return out;
}

Result<std::string> LatestDeviceReport(Store& store, std::string_view dev_id) {
  // The newest XML report, whatever alert type the agent filed it under.
  DM_ASSIGN_OR_RETURN(auto st,
                      store.db().Prepare("SELECT data FROM device_reports WHERE dev_id = ? AND "
                                         "ltrim(data) LIKE '<%' ORDER BY received_at DESC, "
                                         "(type = ?) DESC LIMIT 1"));
  st.BindAll(dev_id, kReportAlertType);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return NotFound("device " + std::string(dev_id) + " has sent no compliance report");
  return st.Text(0);
}

}  // namespace dm::server
