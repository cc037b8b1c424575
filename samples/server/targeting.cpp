#include "samples/server/targeting.h"

#include <map>
#include <optional>
#include <set>
#include <utility>

#include "agent/syncml/codec.h"
#include "samples/server/command_xml.h"
#include "samples/server/queue.h"

namespace dm::server {
namespace {

// Profiles named by include/exclude assignments of the groups holding `member`.
Status CollectAssignments(Store& store, std::string_view tenant_id, std::string_view kind,
                          std::string_view member, std::set<int64_t>* include,
                          std::set<int64_t>* exclude) {
  DM_ASSIGN_OR_RETURN(auto st, store.db().Prepare("SELECT a.profile_id, a.mode FROM assignments a "
                                                  "JOIN groups g ON g.id = a.group_id "
                                                  "WHERE g.tenant_id = ? AND g.kind = ? AND "
                                                  "(g.all_members = 1 OR EXISTS (SELECT 1 FROM "
                                                  "group_members m WHERE m.group_id = g.id AND "
                                                  "m.member = ?))"));
  st.BindAll(tenant_id, kind, member);
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    (st.Text(1) == "include" ? include : exclude)->insert(st.Int(0));
  }
  return Status::Ok();
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

struct DesiredSetting {
  int64_t profile_id;
  int idx;
  ProfileSetting setting;
  std::string content_sha256;
};

Result<std::vector<DesiredSetting>> SettingsOf(Store& store, const std::vector<int64_t>& profiles,
                                               std::string_view tenant_id) {
  std::vector<DesiredSetting> out;
  DM_ASSIGN_OR_RETURN(
      auto st, store.db().Prepare("SELECT idx, kind, verb, loc_uri, format, type, value FROM "
                                  "profile_settings WHERE profile_id = ? ORDER BY idx"));
  for (int64_t profile : profiles) {
    DM_RETURN_IF_ERROR(st.Reset());
    st.Bind(1, profile);
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      ProfileSetting s{
          .kind = st.Text(1) == "raw" ? ProfileSetting::Kind::kRaw : ProfileSetting::Kind::kSetting,
          .verb = st.Text(2),
          .loc_uri = ReplaceAll(st.Text(3), "{TenantId}", tenant_id),
          .format = st.Text(4),
          .type = st.Text(5),
          .value = ReplaceAll(st.Text(6), "{TenantId}", tenant_id)};
      std::string content = st.Text(1) + '\n' + s.verb + '\n' + s.loc_uri + '\n' + s.format + '\n' +
                            s.type + '\n' + s.value;
      DM_ASSIGN_OR_RETURN(std::string digest, Sha256Hex(content));
      out.push_back(DesiredSetting{.profile_id = profile,
                                   .idx = static_cast<int>(st.Int(0)),
                                   .setting = std::move(s),
                                   .content_sha256 = std::move(digest)});
    }
  }
  return out;
}

// The SyncML command for one profile setting, CmdIDs not yet assigned.
Result<syncml::Command> BuildCommand(const ProfileSetting& s) {
  if (s.kind == ProfileSetting::Kind::kRaw) return DecodeOneCommand(s.value);
  syncml::Item item;
  item.target = syncml::Location{.loc_uri = s.loc_uri, .loc_name = std::nullopt};
  syncml::Meta meta;
  if (!s.format.empty()) meta.format = s.format;
  if (!s.type.empty()) meta.type = s.type;
  if (!meta.empty()) item.meta = meta;
  // An interior node (Format node) is added without Data.
  if (s.format != "node") item.data = syncml::Data(s.value);
  return syncml::MakeCommand(
      s.verb == "Add" ? syncml::CommandType::kAdd : syncml::CommandType::kReplace, "",
      {std::move(item)});
}

}  // namespace

std::string NormalizeLocUri(std::string_view uri) {
  constexpr std::string_view kDevicePrefix = "./Device/";
  if (uri.substr(0, kDevicePrefix.size()) == kDevicePrefix) {
    return "./" + std::string(uri.substr(kDevicePrefix.size()));
  }
  return std::string(uri);
}

Result<std::vector<int64_t>> ApplicableProfiles(Store& store, const Device& device,
                                                std::string_view upn) {
  std::set<int64_t> include, exclude;
  if (upn.empty()) {
    DM_RETURN_IF_ERROR(
        CollectAssignments(store, device.tenant_id, "device", device.dev_id, &include, &exclude));
  } else {
    std::set<int64_t> device_include;  // device-group includes are the device scope's business
    DM_RETURN_IF_ERROR(
        CollectAssignments(store, device.tenant_id, "user", upn, &include, &exclude));
    DM_RETURN_IF_ERROR(CollectAssignments(store, device.tenant_id, "device", device.dev_id,
                                          &device_include, &exclude));
  }
  std::vector<int64_t> out;
  for (int64_t p : include) {
    if (!exclude.count(p)) out.push_back(p);
  }
  return out;
}

Status NoteDeviceUser(Store& store, std::string_view dev_id, std::string_view upn) {
  if (upn.empty()) return Status::Ok();
  return store.db().Run(
      "INSERT INTO device_users (dev_id, upn, first_seen, last_seen) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (dev_id, upn) DO UPDATE SET last_seen = excluded.last_seen",
      dev_id, upn, store.Now(), store.Now());
}

Result<std::string> EnqueueCommand(Store& store, const QueuedCommandSpec& spec,
                                   syncml::Command command) {
  DM_ASSIGN_OR_RETURN(std::string uuid, NewUuid(store.random()));
  command.cmd_id = uuid;
  bool needs_user = false;
  std::vector<std::pair<std::string, std::string>> child_refs;  // cmd_ref, loc_uri
  // Every nested command gets its own UUID so its Status finds the parent.
  auto visit = [&](auto& self, syncml::Command& c, bool top) -> Status {
    if (!top) {
      DM_ASSIGN_OR_RETURN(c.cmd_id, NewUuid(store.random()));
      std::string loc = (!c.items.empty() && c.items.front().target)
                            ? c.items.front().target->loc_uri
                            : std::string();
      child_refs.emplace_back(c.cmd_id, loc);
    }
    for (const syncml::Item& item : c.items) {
      if (item.target && item.target->loc_uri.rfind("./User/", 0) == 0) needs_user = true;
    }
    for (syncml::Command& child : c.children) DM_RETURN_IF_ERROR(self(self, child, false));
    return Status::Ok();
  };
  DM_RETURN_IF_ERROR(visit(visit, command, true));
  std::string xml;
  syncml::EncodeCommand(command, &xml);
  DM_ASSIGN_OR_RETURN(auto st,
                      store.db().Prepare("INSERT INTO commands (uuid, dev_id, upn, profile_id, "
                                         "setting_idx, verb, loc_uri, needs_user, xml, state, "
                                         "created_at, replaces) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                         "'queued', ?, ?)"));
  st.BindAll(uuid, spec.dev_id, spec.upn);
  if (spec.profile_id) {
    st.Bind(4, *spec.profile_id);
    st.Bind(5, spec.setting_idx);
  } else {
    st.BindNull(4);
    st.BindNull(5);
  }
  st.Bind(6, syncml::CommandName(command.type));
  st.Bind(7, spec.loc_uri);
  st.Bind(8, needs_user);
  st.Bind(9, xml);
  st.Bind(10, store.Now());
  if (spec.replaces.empty()) {
    st.BindNull(11);
  } else {
    st.Bind(11, spec.replaces);
  }
  DM_RETURN_IF_ERROR(st.Run());
  for (const auto& [ref, loc] : child_refs) {
    DM_RETURN_IF_ERROR(
        store.db().Run("INSERT INTO command_refs (cmd_ref, command_uuid, loc_uri) VALUES (?, ?, ?)",
                       ref, uuid, loc));
  }
  return uuid;
}

Status ReconcileDevice(Store& store, std::string_view dev_id) {
  DM_ASSIGN_OR_RETURN(std::optional<Device> device, store.FindDevice(dev_id));
  if (!device) return NotFound("no device " + std::string(dev_id));
  DM_ASSIGN_OR_RETURN(auto tx, store.db().Begin());
  if (!device->enrolled) {
    DM_RETURN_IF_ERROR(store.db().Run(
        "UPDATE commands SET state = 'cancelled' WHERE dev_id = ? AND state = 'queued'", dev_id));
    return tx.Commit();
  }
  std::vector<std::string> scopes = {""};
  {
    DM_ASSIGN_OR_RETURN(auto st,
                        store.db().Prepare("SELECT d.upn FROM device_users d JOIN users u ON "
                                           "u.upn = d.upn WHERE d.dev_id = ? AND u.tenant_id = ? "
                                           "ORDER BY d.upn"));
    st.BindAll(dev_id, device->tenant_id);
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      scopes.push_back(st.Text(0));
    }
  }
  for (const std::string& upn : scopes) {
    DM_ASSIGN_OR_RETURN(std::vector<int64_t> profiles, ApplicableProfiles(store, *device, upn));
    DM_ASSIGN_OR_RETURN(std::vector<DesiredSetting> desired,
                        SettingsOf(store, profiles, device->tenant_id));
    // What is tracked now: (profile, idx) -> (content, command).
    std::map<std::pair<int64_t, int>, std::pair<std::string, std::string>> tracked;
    {
      DM_ASSIGN_OR_RETURN(
          auto st, store.db().Prepare("SELECT profile_id, setting_idx, content_sha256, "
                                      "command_uuid FROM setting_status WHERE dev_id = ? AND "
                                      "upn = ?"));
      st.BindAll(dev_id, upn);
      while (true) {
        DM_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        tracked[{st.Int(0), static_cast<int>(st.Int(1))}] = {st.Text(2), st.Text(3)};
      }
    }
    for (const DesiredSetting& d : desired) {
      auto it = tracked.find({d.profile_id, d.idx});
      if (it != tracked.end()) {
        bool same = it->second.first == d.content_sha256;
        std::string old_command = it->second.second;
        tracked.erase(it);
        if (same) continue;
        DM_RETURN_IF_ERROR(store.db().Run(
            "UPDATE commands SET state = 'cancelled' WHERE uuid = ? AND state = 'queued'",
            old_command));
      }
      DM_ASSIGN_OR_RETURN(syncml::Command command, BuildCommand(d.setting));
      DM_ASSIGN_OR_RETURN(std::string uuid,
                          EnqueueCommand(store,
                                         QueuedCommandSpec{.dev_id = std::string(dev_id),
                                                           .upn = upn,
                                                           .profile_id = d.profile_id,
                                                           .setting_idx = d.idx,
                                                           .loc_uri = d.setting.loc_uri,
                                                           .replaces = {}},
                                         std::move(command)));
      DM_RETURN_IF_ERROR(store.db().Run(
          "INSERT INTO setting_status (dev_id, upn, profile_id, setting_idx, loc_uri, "
          "content_sha256, status, code, reason, command_uuid, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, 'Pending', NULL, '', ?, ?) "
          "ON CONFLICT (dev_id, upn, profile_id, setting_idx) DO UPDATE SET "
          "loc_uri = excluded.loc_uri, content_sha256 = excluded.content_sha256, "
          "status = 'Pending', code = NULL, reason = '', command_uuid = excluded.command_uuid, "
          "updated_at = excluded.updated_at",
          dev_id, upn, d.profile_id, d.idx, d.setting.loc_uri, d.content_sha256, uuid,
          store.Now()));
    }
    // No longer assigned: stop delivering, forget the status (Intune shows assigned ones only).
    for (const auto& [key, value] : tracked) {
      DM_RETURN_IF_ERROR(store.db().Run(
          "UPDATE commands SET state = 'cancelled' WHERE uuid = ? AND state = 'queued'",
          value.second));
      DM_RETURN_IF_ERROR(store.db().Run(
          "DELETE FROM setting_status WHERE dev_id = ? AND upn = ? AND profile_id = ? AND "
          "setting_idx = ?",
          dev_id, upn, key.first, key.second));
    }
  }
  return tx.Commit();
}

Status ReconcileAll(Store& store) {
  DM_ASSIGN_OR_RETURN(std::vector<Device> devices, store.Devices());
  for (const Device& d : devices) DM_RETURN_IF_ERROR(ReconcileDevice(store, d.dev_id));
  return Status::Ok();
}

}  // namespace dm::server
