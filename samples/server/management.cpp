#include "samples/server/management.h"

#include <spdlog/spdlog.h>
#include <tinyxml2.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <vector>

#include "agent/syncml/codec.h"
#include "base/crypto.h"
#include "base/log.h"
#include "base/log_fields.h"
#include "samples/server/command_xml.h"
#include "samples/server/queue.h"
#include "samples/server/session_log.h"
#include "samples/server/targeting.h"

namespace dm::server {
namespace {

constexpr char kUnenrollAlertType[] = "com.microsoft:mdm.unenrollment.userrequest";

bool IsSuccess(int code) { return code >= 200 && code < 300; }

int ParseCode(std::string_view text) {
  int code = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    code = code * 10 + (c - '0');
    if (code > 9999) return 0;
  }
  return code;
}

std::string CodeReason(int code) {
  switch (code) {
    case 216:
      return "216 rolled back (the Atomic failed)";
    case 400:
      return "400 bad request";
    case 401:
      return "401 invalid credentials";
    case 403:
      return "403 forbidden";
    case 404:
      return "404 node not found";
    case 405:
      return "405 command not allowed on this node";
    case 406:
      return "406 optional feature not supported";
    case 415:
      return "415 unsupported type or format";
    case 418:
      return "418 already exists";
    case 425:
      return "425 permission denied";
    case 500:
      return "500 command failed";
    case 507:
      return "507 Atomic failed";
    default:
      return std::to_string(code);
  }
}

syncml::SyncHdr ReplyHeader(const syncml::SyncHdr& in) {
  syncml::SyncHdr h;
  h.session_id = in.session_id;
  h.msg_id = in.msg_id;
  h.target.loc_uri = in.source.loc_uri;
  h.source.loc_uri = in.target.loc_uri;
  syncml::Meta meta;
  meta.max_msg_size = kServerMaxMsgSize;
  h.meta = meta;
  return h;
}

// A reply that holds only the SyncHdr Status (refusals and errors).
ManagementReply HeaderOnlyReply(int http_status, const syncml::SyncHdr& in, int code) {
  syncml::Message out;
  out.header = ReplyHeader(in);
  out.commands.push_back(syncml::MakeStatus("1", in.msg_id, "0", "SyncHdr", code));
  out.final = true;
  return {http_status, syncml::Encode(out)};
}

// The first item's Meta Type (Alerts put it there).
std::string ItemType(const syncml::Item& item) {
  return item.meta && item.meta->type ? *item.meta->type : std::string();
}
std::string ItemData(const syncml::Item& item) { return item.data ? item.data->text : ""; }

// ---- the device's compliance/recovery report ----

std::optional<std::string> Field(const tinyxml2::XMLElement* e,
                                 std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (const char* a = e->Attribute(n)) return std::string(a);
  }
  for (const char* n : names) {
    const tinyxml2::XMLElement* c = e->FirstChildElement(n);
    if (c && c->GetText()) return std::string(c->GetText());
  }
  return std::nullopt;
}

std::optional<std::string> MapDeviceState(std::string_view state) {
  const std::string s = AsciiLower(state);
  if (s == "succeeded" || s == "success" || s == "compliant") return "Succeeded";
  if (s == "pendingreboot") return "PendingReboot";
  if (s == "conflict") return "Conflict";
  if (s == "error" || s == "failed") return "Failed";
  if (s == "notapplicable") return "NotApplicable";
  if (s == "pending") return "Pending";
  return std::nullopt;
}

// A report entry names its setting by URI, or by its catalog name
// ("PassportForWork/PINComplexity/MinimumPINLength"): the URI then has the first segment as a
// path component and ends with the rest.
bool SettingMatches(const std::string& row_uri, const std::optional<std::string>& uri,
                    const std::optional<std::string>& name) {
  if (uri) return NormalizeLocUri(row_uri) == NormalizeLocUri(*uri);
  if (!name) return false;
  size_t slash = name->find('/');
  if (slash == std::string::npos) return false;
  std::string head = "/" + name->substr(0, slash) + "/";
  std::string tail = name->substr(slash);
  return row_uri.find(head) != std::string::npos && row_uri.size() >= tail.size() &&
         row_uri.compare(row_uri.size() - tail.size(), tail.size(), tail) == 0;
}

struct StatusRow {
  std::string upn;
  int64_t profile_id;
  int64_t idx;
  std::string loc_uri;
  bool delivered;  // the command was acked with 2xx
};

}  // namespace

bool SameUser(std::string_view reported, std::string_view upn) {
  const std::string r = AsciiLower(reported), u = AsciiLower(upn);
  return r == u || (r.find('@') == std::string::npos && u.substr(0, u.find('@')) == r);
}

Status IngestReport(Store& store, std::string_view dev_id, std::string_view type,
                    std::string_view format, std::string_view xml) {
  storage::Database& db = store.db();
  DM_RETURN_IF_ERROR(db.Run(
      "INSERT INTO device_reports (dev_id, type, format, data, received_at) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT (dev_id, type) DO UPDATE SET format = excluded.format, data = excluded.data, "
      "received_at = excluded.received_at",
      dev_id, type, format, xml, store.Now()));
  DM_RETURN_IF_ERROR(
      db.Run("DELETE FROM device_reports WHERE dev_id = ? AND type NOT IN (SELECT type FROM "
             "device_reports WHERE dev_id = ? ORDER BY received_at DESC, rowid DESC LIMIT ?) "
             "AND type <> ?",
             dev_id, dev_id, kMaxReportTypesPerDevice - 1, kReportAlertType));
  tinyxml2::XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS || !doc.RootElement()) {
    spdlog::warn("device {}: report of type {} is not XML; stored as received", dev_id, type);
    return Status::Ok();
  }
  std::vector<StatusRow> rows;
  {
    DM_ASSIGN_OR_RETURN(auto st,
                        db.Prepare("SELECT s.upn, s.profile_id, s.setting_idx, s.loc_uri, "
                                   "c.state = 'acked' AND c.status_code BETWEEN 200 AND 299 "
                                   "FROM setting_status s JOIN commands c ON "
                                   "c.uuid = s.command_uuid WHERE s.dev_id = ?"));
    st.Bind(1, dev_id);
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      rows.push_back({st.Text(0), st.Int(1), st.Int(2), st.Text(3), st.Int(4) != 0});
    }
  }
  Status result;
  // The agent's format (policy::PolicyEngine::ReportXml): <Device> holds device-scope
  // <Setting name= state= reason=/>, <User name=U> holds U's settings and <Recovery CanReset=/>.
  // Entries may also carry uri= and user= themselves.
  std::function<void(const tinyxml2::XMLElement*, const std::string&)> visit =
      [&](const tinyxml2::XMLElement* e, const std::string& inherited_user) {
        if (!result.ok()) return;
        const std::string element = AsciiLower(e->Name());
        std::string user = Field(e, {"user", "upn", "User", "UPN"}).value_or(inherited_user);
        if (element == "user") {
          user = Field(e, {"name", "upn", "Name", "UPN"}).value_or(user);
        } else {
          auto uri = Field(e, {"uri", "locUri", "LocURI", "Uri", "URI"});
          auto name = Field(e, {"name", "setting", "Name"});
          auto state = Field(e, {"state", "State", "status", "Status"});
          auto reason = Field(e, {"reason", "Reason"}).value_or("");
          auto can_reset = Field(e, {"CanReset", "canReset", "can_reset"});
          if (state && (uri || name)) {
            auto mapped = MapDeviceState(*state);
            for (const StatusRow& r : rows) {
              // Only what the device acknowledged: a report cannot hide a pending command.
              if (!mapped || !r.delivered || !SettingMatches(r.loc_uri, uri, name)) continue;
              // A user's entry speaks for ./User/ settings of that user, a device entry for
              // device settings.
              const bool user_uri = r.loc_uri.rfind("./User/", 0) == 0;
              if (user.empty() ? user_uri
                               : (!user_uri || (!r.upn.empty() && !SameUser(user, r.upn)))) {
                continue;
              }
              result = db.Run(
                  "UPDATE setting_status SET status = ?, reason = ?, updated_at = ? WHERE "
                  "dev_id = ? AND upn = ? AND profile_id = ? AND setting_idx = ?",
                  *mapped, reason, store.Now(), dev_id, r.upn, r.profile_id, r.idx);
              if (!result.ok()) return;
            }
          } else if (can_reset && !user.empty()) {
            result = db.Run(
                "INSERT INTO user_recovery (dev_id, upn, can_reset, reason, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (dev_id, upn) DO UPDATE SET "
                "can_reset = excluded.can_reset, reason = excluded.reason, "
                "updated_at = excluded.updated_at",
                dev_id, user, *can_reset, reason, store.Now());
            if (!result.ok()) return;
          }
        }
        for (const tinyxml2::XMLElement* c = e->FirstChildElement(); c;
             c = c->NextSiblingElement()) {
          visit(c, user);
        }
      };
  visit(doc.RootElement(), "");
  return result;
}

namespace {

// One client message, processed inside the session's transaction.
class Session {
 public:
  Session(Store& store, Device device, const syncml::Message& in, const AgentServices* services,
          const UserTokenSigner* user_tokens)
      : store_(store),
        db_(store.db()),
        device_(std::move(device)),
        in_(in),
        services_(services),
        user_tokens_(user_tokens) {}

  Result<syncml::Message> Run();
  // The reply carries no command: the device has nothing to answer, the session is over.
  bool ended() const { return ended_; }
  const std::string& user() const { return device_.signed_in_upn; }

 private:
  Status ProcessAlert(const syncml::Command& c);
  Result<std::string> VerifiedUser();
  Status ProcessDevInfo(const syncml::Command& c);
  Status ProcessStatuses();
  Status ProcessResults(const syncml::Command& c);
  Status AckCommand(const std::string& uuid, int code, const std::vector<std::string>& detail);
  Result<std::vector<syncml::Command>> PendingCommands(size_t budget);

  Store& store_;
  storage::Database& db_;
  Device device_;
  const syncml::Message& in_;
  const AgentServices* services_;       // null: none configured
  const UserTokenSigner* user_tokens_;  // null: no user is ever signed in
  int64_t session_seq_ = 0;
  std::string login_status_;
  std::string user_token_;  // the AADUserToken item's Data
  bool aborted_ = false;
  std::vector<std::pair<std::string, int>> statuses_;  // cmd_ref, code (document order)
  SessionTally tally_;
  bool ended_ = false;
};

// The user whose token the session carries, or "" (logged) when it proves nobody of the
// device's tenant: a bare UPN or a forged, expired or foreign token gets no user settings.
Result<std::string> Session::VerifiedUser() {
  if (!crypto::LooksLikeJwt(user_token_)) {
    spdlog::warn("device {}: user refused: the session names a user ({}) without a user token",
                 Printable(device_.dev_id), Printable(user_token_.substr(0, 256)));
    return std::string();
  }
  if (!user_tokens_) return std::string();
  auto claims = user_tokens_->Verify(user_token_, store_.Now());
  if (!claims.ok()) {
    spdlog::warn("device {}: user refused: {}", Printable(device_.dev_id),
                 claims.error().message());
    return std::string();
  }
  auto user = store_.FindUser(claims->upn);
  if (!user.ok() && user.error().code() != Code::kNotFound) return user.error();
  if (!user.ok() || user->tenant_id != device_.tenant_id ||
      AsciiLower(claims->tenant_id) != AsciiLower(device_.tenant_id)) {
    spdlog::warn("device {}: user refused: {} is not a user of its tenant",
                 Printable(device_.dev_id), Printable(claims->upn));
    return std::string();
  }
  return user->upn;
}

Status Session::ProcessAlert(const syncml::Command& c) {
  const int code = ParseCode(c.data);
  if (code == syncml::alert::kSessionAbort) aborted_ = true;
  if (code == syncml::alert::kClientEvent) {
    for (const syncml::Item& item : c.items) {
      std::string type = AsciiLower(ItemType(item));
      if (type == AsciiLower(kLoginStatusType)) {
        login_status_ = AsciiLower(ItemData(item));
      } else if (type == AsciiLower(kUserAlertType)) {
        user_token_ = ItemData(item);
      }
    }
  } else if (code == syncml::alert::kGenericAlert) {
    for (const syncml::Item& item : c.items) {
      std::string type = ItemType(item);
      std::string format = item.meta && item.meta->format ? *item.meta->format : "chr";
      if (type == kUnenrollAlertType) {
        spdlog::info("device {} asked to unenroll", device_.dev_id);
        DM_RETURN_IF_ERROR(
            db_.Run("UPDATE devices SET enrolled = 0 WHERE dev_id = ?", device_.dev_id));
        device_.enrolled = false;
      }
      DM_RETURN_IF_ERROR(IngestReport(store_, device_.dev_id, type.empty() ? "generic" : type,
                                      format, ItemData(item)));
    }
  }
  return Status::Ok();
}

Status Session::ProcessDevInfo(const syncml::Command& c) {
  static const std::map<std::string, std::string> kColumns = {{"./DevInfo/Man", "manufacturer"},
                                                              {"./DevInfo/Mod", "model"},
                                                              {"./DevInfo/DmV", "dm_version"},
                                                              {"./DevInfo/Lang", "language"}};
  for (const syncml::Item& item : c.items) {
    const syncml::Location* loc = item.source   ? &*item.source
                                  : item.target ? &*item.target
                                                : nullptr;
    if (!loc) continue;
    auto it = kColumns.find(loc->loc_uri);
    if (it == kColumns.end()) continue;
    DM_RETURN_IF_ERROR(db_.Run("UPDATE devices SET " + it->second + " = ? WHERE dev_id = ?",
                               ItemData(item), device_.dev_id));
  }
  return Status::Ok();
}

Status Session::AckCommand(const std::string& uuid, int code,
                           const std::vector<std::string>& detail) {
  DM_ASSIGN_OR_RETURN(auto st,
                      db_.Prepare("SELECT verb, state, upn, profile_id, setting_idx, loc_uri, "
                                  "xml FROM commands WHERE uuid = ? AND dev_id = ?"));
  st.BindAll(uuid, device_.dev_id);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    spdlog::warn("device {} sent a Status for unknown command {}", device_.dev_id, uuid);
    return Status::Ok();
  }
  const std::string state = st.Text(1);
  if (state == "acked") return Status::Ok();  // a repeated Status changes nothing
  ++(IsSuccess(code) ? tally_.acknowledged : tally_.failed);
  const std::string verb = st.Text(0);
  DM_RETURN_IF_ERROR(
      db_.Run("UPDATE commands SET state = 'acked', status_code = ?, acked_at = ? WHERE uuid = ?",
              code, store_.Now(), uuid));
  // A command superseded since it was sent (profile changed) no longer speaks for its setting.
  if (state == "cancelled") return Status::Ok();
  if (code == 418 && verb == "Add") {
    // The node exists already (e.g. a re-sent Add): retry as Replace with a new CmdID, as
    // Fleet does, instead of reporting the setting failed.
    DM_ASSIGN_OR_RETURN(syncml::Command command, DecodeOneCommand(st.Text(6)));
    command.type = syncml::CommandType::kReplace;
    command.name = syncml::CommandName(command.type);
    QueuedCommandSpec spec{
        .dev_id = device_.dev_id,
        .upn = st.Text(2),
        .profile_id = st.IsNull(3) ? std::nullopt : std::optional<int64_t>(st.Int(3)),
        .setting_idx = static_cast<int>(st.Int(4)),
        .loc_uri = st.Text(5),
        .replaces = uuid};
    DM_ASSIGN_OR_RETURN(std::string retry, EnqueueCommand(store_, spec, std::move(command)));
    return db_.Run(
        "UPDATE setting_status SET command_uuid = ?, status = 'Pending', code = 418, reason = ?, "
        "updated_at = ? WHERE command_uuid = ?",
        retry, "418 already exists on Add: re-sent as Replace", store_.Now(), uuid);
  }
  std::string reason;
  if (!IsSuccess(code)) {
    reason = CodeReason(code);
    for (const std::string& d : detail) reason += (reason.empty() ? "" : "; ") + d;
  }
  return db_.Run(
      "UPDATE setting_status SET status = ?, code = ?, reason = ?, updated_at = ? "
      "WHERE command_uuid = ?",
      IsSuccess(code) ? "Succeeded" : "Failed", code, reason, store_.Now(), uuid);
}

Status Session::ProcessStatuses() {
  // Nested commands' Statuses follow their Atomic's: collect them first, as the detail of a
  // failed parent ("./Vendor/...: 500").
  std::map<std::string, std::vector<std::string>> detail;
  std::vector<std::pair<std::string, int>> top;
  DM_ASSIGN_OR_RETURN(auto child,
                      db_.Prepare("SELECT r.command_uuid, r.loc_uri FROM command_refs r JOIN "
                                  "commands c ON c.uuid = r.command_uuid WHERE r.cmd_ref = ? AND "
                                  "c.dev_id = ?"));
  for (const auto& [ref, code] : statuses_) {
    DM_RETURN_IF_ERROR(child.Reset());
    child.BindAll(ref, device_.dev_id);
    DM_ASSIGN_OR_RETURN(bool is_child, child.Step());
    if (is_child) {
      if (!IsSuccess(code))
        detail[child.Text(0)].push_back(child.Text(1) + ": " + CodeReason(code));
      continue;
    }
    // Several Statuses for one command (one per Item): the worst one counts.
    // (ref is named through an init-capture: clang before 16 cannot capture a structured
    // binding, and the fuzz build uses clang.)
    auto it =
        std::find_if(top.begin(), top.end(), [&r = ref](const auto& p) { return p.first == r; });
    if (it == top.end()) {
      top.emplace_back(ref, code);
    } else if (IsSuccess(it->second) && !IsSuccess(code)) {
      it->second = code;
    }
  }
  for (const auto& [ref, code] : top) DM_RETURN_IF_ERROR(AckCommand(ref, code, detail[ref]));
  return Status::Ok();
}

Status Session::ProcessResults(const syncml::Command& c) {
  DM_ASSIGN_OR_RETURN(auto st,
                      db_.Prepare("SELECT uuid, loc_uri FROM commands WHERE uuid = ? AND "
                                  "dev_id = ? UNION ALL SELECT r.command_uuid, r.loc_uri FROM "
                                  "command_refs r JOIN commands c ON c.uuid = r.command_uuid "
                                  "WHERE r.cmd_ref = ? AND c.dev_id = ?"));
  st.BindAll(c.cmd_ref, device_.dev_id, c.cmd_ref, device_.dev_id);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) {
    spdlog::warn("device {} sent Results for unknown command {}", device_.dev_id, c.cmd_ref);
    return Status::Ok();
  }
  const std::string uuid = st.Text(0);
  const std::string command_uri = st.Text(1);
  for (const syncml::Item& item : c.items) {
    std::string loc = item.source ? item.source->loc_uri : command_uri;
    std::string format = item.meta && item.meta->format ? *item.meta->format
                         : c.meta && c.meta->format     ? *c.meta->format
                                                        : "chr";
    DM_RETURN_IF_ERROR(db_.Run(
        "INSERT INTO command_results (command_uuid, loc_uri, format, data, received_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (command_uuid, loc_uri) DO UPDATE SET "
        "format = excluded.format, data = excluded.data, received_at = excluded.received_at",
        uuid, loc, format, ItemData(item), store_.Now()));
    if (NormalizeLocUri(loc) == kReportUri) {
      DM_RETURN_IF_ERROR(
          IngestReport(store_, device_.dev_id, kReportAlertType, format, ItemData(item)));
    }
  }
  return Status::Ok();
}

Result<std::vector<syncml::Command>> Session::PendingCommands(size_t budget) {
  std::vector<syncml::Command> out;
  if (aborted_ || !device_.enrolled) return out;
  const std::string user = device_.signed_in_upn;
  DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT uuid, xml FROM commands WHERE dev_id = ? AND "
                                           "state = 'queued' AND last_sent_session != ? AND "
                                           "(upn = '' OR upn = ?) AND (needs_user = 0 OR ? != '') "
                                           "ORDER BY created_at, rowid"));
  st.BindAll(device_.dev_id, session_seq_, user, user);
  std::vector<std::string> sent;
  size_t used = 0;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    auto command = DecodeOneCommand(st.Text(1));
    if (!command.ok()) return command.error().WithContext("stored command " + st.Text(0));
    size_t size = syncml::EncodedSize(*command);
    // What does not fit waits for the next message of this session.
    if (!out.empty() && used + size > budget) break;
    if (size > budget) {
      spdlog::warn("device {}: command {} is larger than the message size limit", device_.dev_id,
                   st.Text(0));
    }
    used += size;
    sent.push_back(st.Text(0));
    out.push_back(std::move(command).value());
  }
  for (const std::string& uuid : sent) {
    DM_RETURN_IF_ERROR(db_.Run(
        "UPDATE commands SET sent_count = sent_count + 1, last_sent_session = ? WHERE uuid = ?",
        session_seq_, uuid));
  }
  return out;
}

Result<syncml::Message> Session::Run() {
  DM_ASSIGN_OR_RETURN(auto tx, db_.Begin());
  const bool new_session = in_.header.msg_id == "1";
  {
    // A new session starts with MsgID 1; LoginStatus is only sent in its first package.
    if (new_session) {
      DM_RETURN_IF_ERROR(
          db_.Run("UPDATE devices SET session_seq = session_seq + 1, login_status = '', "
                  "signed_in_upn = '' WHERE dev_id = ?",
                  device_.dev_id));
    }
    DM_ASSIGN_OR_RETURN(auto st,
                        db_.Prepare("SELECT session_seq, login_status, signed_in_upn FROM devices "
                                    "WHERE dev_id = ?"));
    st.Bind(1, device_.dev_id);
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return NotFound("device vanished");
    session_seq_ = st.Int(0);
    login_status_ = st.Text(1);
    device_.signed_in_upn = st.Text(2);
  }

  syncml::Message out;
  out.header = ReplyHeader(in_.header);
  out.commands.push_back(syncml::MakeStatus("1", in_.header.msg_id, "0", "SyncHdr", 200));
  int next_id = 2;
  // Alerts and Results are applied after the Statuses of this message: a report must see the
  // acknowledgements that came with it.
  std::vector<const syncml::Command*> deferred;
  for (const syncml::Command& c : in_.commands) {
    using syncml::CommandType;
    if (c.type == CommandType::kStatus) {
      if (c.cmd_ref != "0") statuses_.emplace_back(c.cmd_ref, ParseCode(c.data));
      continue;
    }
    int code = 200;
    if (!c.error.empty()) {
      spdlog::warn("device {}: malformed {}: {}", device_.dev_id, c.name, c.error);
      code = 400;
    } else if (c.type == CommandType::kResults) {
      deferred.push_back(&c);
      continue;  // Results are answers; they take no Status
    } else if (c.type == CommandType::kAlert) {
      deferred.push_back(&c);
    } else if (c.type == CommandType::kReplace) {
      DM_RETURN_IF_ERROR(ProcessDevInfo(c));
    } else {
      code = 405;  // a device does not send Add/Get/Exec/... to its server
    }
    if (c.no_resp) continue;
    std::string name = c.name.empty() ? syncml::CommandName(c.type) : c.name;
    out.commands.push_back(
        syncml::MakeStatus(std::to_string(next_id++), in_.header.msg_id, c.cmd_id, name, code));
  }
  DM_RETURN_IF_ERROR(ProcessStatuses());
  for (const syncml::Command* c : deferred) {
    DM_RETURN_IF_ERROR(c->type == syncml::CommandType::kAlert ? ProcessAlert(*c)
                                                              : ProcessResults(*c));
  }

  if (new_session) {
    std::string signed_in;
    if (login_status_ == "user" && !user_token_.empty()) {
      DM_ASSIGN_OR_RETURN(signed_in, VerifiedUser());
      if (!signed_in.empty()) DM_RETURN_IF_ERROR(NoteDeviceUser(store_, device_.dev_id, signed_in));
    }
    device_.signed_in_upn = signed_in;
    DM_RETURN_IF_ERROR(
        db_.Run("UPDATE devices SET login_status = ?, signed_in_upn = ? WHERE dev_id = ?",
                login_status_, signed_in, device_.dev_id));
  }
  DM_RETURN_IF_ERROR(
      db_.Run("UPDATE devices SET last_seen = ? WHERE dev_id = ?", store_.Now(), device_.dev_id));
  DM_RETURN_IF_ERROR(ReconcileDevice(store_, device_.dev_id));
  if (new_session && services_ && device_.enrolled) {
    DM_RETURN_IF_ERROR(QueueAgentServices(store_, device_.dev_id, *services_));
  }

  uint64_t limit = kServerMaxMsgSize;
  if (in_.header.meta && in_.header.meta->max_msg_size && *in_.header.meta->max_msg_size > 0) {
    limit = std::min<uint64_t>(limit, *in_.header.meta->max_msg_size);
  }
  size_t used = syncml::EnvelopeSize(out.header);
  for (const syncml::Command& c : out.commands) used += syncml::EncodedSize(c);
  size_t budget = limit > used ? static_cast<size_t>(limit - used) : 0;
  DM_ASSIGN_OR_RETURN(std::vector<syncml::Command> pending, PendingCommands(budget));
  tally_.sent = static_cast<int64_t>(pending.size());
  ended_ = pending.empty();
  for (syncml::Command& c : pending) out.commands.push_back(std::move(c));
  DM_RETURN_IF_ERROR(AddToSession(db_, device_.dev_id, new_session, store_.NowMs(), tally_));
  out.final = true;
  DM_RETURN_IF_ERROR(tx.Commit());
  return out;
}

}  // namespace

ManagementReply ManagementService::Handle(std::string_view cert_dev_id,
                                          std::string_view cert_serial, std::string_view body) {
  auto message = syncml::Decode(body);
  if (!message.ok()) {
    spdlog::warn("device {}: undecodable SyncML: {}", cert_dev_id, message.error().message());
    if (auto header = syncml::SalvageHeader(body)) return HeaderOnlyReply(400, *header, 400);
    return {400, ""};
  }
  const syncml::SyncHdr& header = message->header;
  if (header.source.loc_uri != cert_dev_id) {
    // A device may only speak for itself: its certificate names the DevId it can fetch for.
    spdlog::warn("refused: certificate of {} used for device {}", cert_dev_id,
                 header.source.loc_uri);
    return HeaderOnlyReply(403, header, 403);
  }
  // Every record of the message names the device and the session, as the agent's do.
  LogField device_field("device_id", cert_dev_id);
  LogField session_field("session_id", header.session_id);
  if (header.msg_id == "1") {
    std::lock_guard drain_lock(sessions_mu_);
    if (draining_) {
      spdlog::info("new session refused: the server is stopping");
      ManagementReply reply = HeaderOnlyReply(503, header, 503);
      reply.retry_after_seconds = kDrainRetryAfterSeconds;
      return reply;
    }
  }
  auto lock = store_.Lock();
  auto device = store_.FindDevice(cert_dev_id);
  if (!device.ok()) {
    spdlog::error("management: {}", device.error().ToString());
    return HeaderOnlyReply(500, header, 500);
  }
  if (!*device || !(*device)->enrolled || (*device)->cert_serial != cert_serial) {
    // Unknown or unenrolled device, or a certificate a later enrollment superseded.
    spdlog::warn("refused: device {} is not enrolled with this certificate", cert_dev_id);
    return HeaderOnlyReply(403, header, 403);
  }
  Session session(store_, **device, *message, services_ ? &*services_ : nullptr, user_tokens_);
  auto out = session.Run();
  if (!out.ok()) {
    spdlog::error("device {}: session failed: {}", cert_dev_id, out.error().ToString());
    (void)LogSessionEnd(store_.db(), cert_dev_id, session.user(), store_.NowMs(), 500);
    NoteReply(cert_dev_id, false);
    return HeaderOnlyReply(500, header, 500);
  }
  NoteReply(cert_dev_id, !session.ended());
  if (session.ended()) {
    if (Status s = LogSessionEnd(store_.db(), cert_dev_id, session.user(), store_.NowMs(), 200);
        !s.ok()) {
      spdlog::error("cannot log the session: {}", s.ToString());
    }
  }
  return {200, syncml::Encode(*out)};
}

void ManagementService::NoteReply(std::string_view dev_id, bool session_open) {
  std::lock_guard lock(sessions_mu_);
  if (session_open) {
    open_sessions_.insert_or_assign(std::string(dev_id), store_.NowMs());
  } else if (auto it = open_sessions_.find(dev_id); it != open_sessions_.end()) {
    open_sessions_.erase(it);
  }
}

void ManagementService::BeginDrain() {
  std::lock_guard lock(sessions_mu_);
  draining_ = true;
}

size_t ManagementService::OpenSessions(std::chrono::milliseconds idle) const {
  const int64_t now = store_.NowMs();
  std::lock_guard lock(sessions_mu_);
  return static_cast<size_t>(
      std::count_if(open_sessions_.begin(), open_sessions_.end(),
                    [&](const auto& s) { return now - s.second <= idle.count(); }));
}

}  // namespace dm::server
