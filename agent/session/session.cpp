#include "agent/session/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <utility>

#include "csp/uri.h"

namespace dm::agent {

namespace st = csp::status;
using syncml::Command;
using syncml::CommandType;
using syncml::Item;
using syncml::Location;
using syncml::Meta;

namespace {

// SessionID is opaque and at most 4 bytes (MS-MDM 2.2.3.8); the decimal counter wraps before
// it would need a fifth digit.
constexpr int64_t kMaxSessionId = 9999;
// Smallest piece of a large object worth a message of its own.
constexpr size_t kMinChunk = 128;
// Room kept free in a chunked message for what EncodedSize cannot see coming (a character
// reference the encoder adds to whitespace-only text).
constexpr size_t kChunkSlack = 16;

// Meta Formats of OMA-DM TND / MS-MDM (protocol-omadm.md 1.7). Anything else is 415.
bool KnownFormat(std::string_view f) {
  static constexpr std::string_view kFormats[] = {"chr",  "int", "bool",  "b64",  "xml", "node",
                                                  "null", "bin", "float", "date", "time"};
  return std::find(std::begin(kFormats), std::end(kFormats), f) != std::end(kFormats);
}

std::optional<int> ParseCode(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string NameOf(const Command& c) {
  if (c.type == CommandType::kUnknown || c.type == CommandType::kUnsupported) {
    return c.name.substr(0, 64);
  }
  return syncml::CommandName(c.type);
}

// The length AppendEscaped gives one byte.
size_t EscapedLength(unsigned char c) {
  switch (c) {
    case '&':
      return 5;
    case '<':
    case '>':
      return 4;
    case '"':
      return 6;
    case '\t':
    case '\n':
      return 1;
    default:
      return c < 10 ? 4 : c < 0x20 ? 5 : 1;
  }
}

// How many leading bytes of `text` encode into at most `room` bytes, cut at a UTF-8 character
// boundary so every chunk is well-formed text.
size_t BytesFitting(std::string_view text, size_t room) {
  size_t used = 0, n = 0;
  while (n < text.size()) {
    const size_t len = EscapedLength(static_cast<unsigned char>(text[n]));
    if (used + len > room) break;
    used += len;
    ++n;
  }
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::string Canonical(std::string_view uri) {
  Result<csp::ParsedUri> p = csp::ParseUri(uri);
  return p.ok() ? p->canonical : std::string(uri);
}

}  // namespace

struct Session::MessageState {
  struct Answer {
    Command status;
    int code = 0;
    bool suppressed = false;  // NoResp
    std::vector<size_t> outcomes;
  };
  std::string msg_ref;
  std::vector<Answer> answers;
  std::vector<Command> results;
  std::vector<Command> alerts;  // our own (1225)
  std::set<std::string> seen_ids;
  bool stop = false;   // 214 or 1223: nothing more runs, nothing is answered
  bool abort = false;  // 1223
  int auth_code = 0;   // 401/407 on our SyncHdr

  void SetCode(size_t answer, int code, std::vector<CommandOutcome>& outcomes,
               const char* reason = nullptr) {
    answers[answer].code = code;
    answers[answer].status.data = std::to_string(code);
    for (size_t o : answers[answer].outcomes) {
      outcomes[o].code = code;
      if (reason != nullptr) outcomes[o].reason = reason;
    }
  }
};

struct Session::AtomicFrame {
  std::set<std::string> added;  // canonical URIs added inside this Atomic
  bool failed = false;
};

Session::Session(csp::DmTree& tree, storage::Database& db, SessionOptions options)
    : tree_(tree), db_(db), options_(std::move(options)) {
  peer_max_msg_size_ = options_.default_peer_max_msg_size;
}

// ---- package 1 ---------------------------------------------------------------------------

Result<std::string> Session::NextSessionId() {
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  DM_ASSIGN_OR_RETURN(storage::Statement q,
                      db_.Prepare("SELECT last_session_id FROM agent_session WHERE id = 1"));
  DM_ASSIGN_OR_RETURN(bool row, q.Step());
  const int64_t last = row ? q.Int(0) : 0;
  const int64_t next = last >= kMaxSessionId || last < 0 ? 1 : last + 1;
  DM_RETURN_IF_ERROR(
      db_.Run("INSERT INTO agent_session (id, last_session_id) VALUES (1, ?) "
              "ON CONFLICT (id) DO UPDATE SET last_session_id = excluded.last_session_id",
              next));
  DM_RETURN_IF_ERROR(tx.Commit());
  return std::to_string(next);
}

Result<std::string> Session::Start(const SessionStart& start) {
  if (started_) return FailedPrecondition("the session has already started");
  if (start.login_status != "user" && start.login_status != "others" &&
      start.login_status != "none") {
    return InvalidArgument("LoginStatus must be user, others or none, not \"" + start.login_status +
                           "\"");
  }
  ctx_.user = start.user;

  // DevInfo as the tree reports it (protocol-omadm.md 1.3: sent at the start of every session).
  static constexpr const char* kDevInfo[] = {"DevId", "Man", "Mod", "DmV", "Lang"};
  std::vector<Item> devinfo;
  for (const char* leaf : kDevInfo) {
    const std::string uri = std::string("./DevInfo/") + leaf;
    csp::GetResult got = tree_.Get(ctx_, uri);
    if (!csp::IsSuccess(got.code)) {
      return FailedPrecondition("cannot read " + uri + " for package 1: status " +
                                std::to_string(got.code) + " " + got.reason);
    }
    Item item;
    item.source = Location{uri, std::nullopt};
    item.data = syncml::Data(got.value.data);
    devinfo.push_back(std::move(item));
  }
  device_id_ = options_.device_id.empty() ? devinfo[0].data->text : options_.device_id;
  if (device_id_.empty()) return FailedPrecondition("the device has no ./DevInfo/DevId");
  target_uri_ = options_.server_url;
  DM_ASSIGN_OR_RETURN(session_id_, NextSessionId());
  next_msg_id_ = 1;

  syncml::Message msg;
  msg.header = MakeHeader();
  int id = 2;  // the Windows client leaves CmdID 1 unused in package 1 (capture)
  msg.commands.push_back(syncml::MakeAlert(
      std::to_string(id++),
      start.server_initiated ? syncml::alert::kServerInitiated : syncml::alert::kClientInitiated));
  Item login;
  login.meta = Meta{};
  login.meta->type = "com.microsoft/MDM/LoginStatus";
  login.data = syncml::Data(start.login_status);
  msg.commands.push_back(
      syncml::MakeAlert(std::to_string(id++), syncml::alert::kClientEvent, {login}));
  for (const ClientEvent& e : start.client_events) {
    Item item;
    item.meta = Meta{};
    item.meta->type = e.type;
    item.data = syncml::Data(e.data);
    msg.commands.push_back(
        syncml::MakeAlert(std::to_string(id++), syncml::alert::kClientEvent, {item}));
  }
  for (const GenericAlert& a : start.alerts) {
    Item item;
    if (a.source) item.source = Location{*a.source, std::nullopt};
    item.meta = Meta{};
    item.meta->type = a.type;
    item.meta->format = a.format;
    item.meta->mark = a.mark;
    item.data = syncml::Data(a.data);
    alert_cmd_ids_.push_back(std::to_string(id));
    msg.commands.push_back(
        syncml::MakeAlert(std::to_string(id++), syncml::alert::kGenericAlert, {item}));
  }
  msg.commands.push_back(
      syncml::MakeCommand(CommandType::kReplace, std::to_string(id++), std::move(devinfo)));
  msg.final = true;
  alert_statuses_.assign(alert_cmd_ids_.size(), std::nullopt);
  started_ = true;
  ++next_msg_id_;
  spdlog::info("OMA-DM session {} started ({} generic alerts)", session_id_, start.alerts.size());
  return syncml::Encode(msg, options_.encode);
}

Status Session::EnsureStarted(const syncml::SyncHdr& server_header) {
  if (started_) return Status::Ok();
  // Local management (no package 1): answer in the server's session, swapping the addresses.
  session_id_ = server_header.session_id;
  target_uri_ = options_.server_url.empty() ? server_header.source.loc_uri : options_.server_url;
  device_id_ = options_.device_id.empty() ? server_header.target.loc_uri : options_.device_id;
  next_msg_id_ = 1;
  started_ = true;
  return Status::Ok();
}

syncml::SyncHdr Session::MakeHeader() const {
  syncml::SyncHdr h;
  h.session_id = session_id_;
  h.msg_id = std::to_string(next_msg_id_);
  h.target.loc_uri = target_uri_;
  h.source.loc_uri = device_id_;
  if (options_.advertise_limits) {
    h.meta = Meta{};
    h.meta->max_msg_size = options_.max_msg_size;
    h.meta->max_obj_size = options_.max_obj_size;
  }
  return h;
}

Command Session::HeaderStatus(const std::string& msg_ref, int code) const {
  return syncml::MakeStatus("1", msg_ref, "0", "SyncHdr", code);
}

// ---- processing a server message ------------------------------------------------------

Result<std::optional<std::string>> Session::Process(std::string_view server_message) {
  if (over_) return FailedPrecondition("the OMA-DM session is over");
  outcomes_.clear();

  if (server_message.size() > options_.max_message_size) {
    std::optional<syncml::SyncHdr> hdr = syncml::SalvageHeader(server_message);
    if (!hdr)
      return ResourceExhausted("server message of " + std::to_string(server_message.size()) +
                               " bytes refused");
    DM_RETURN_IF_ERROR(EnsureStarted(*hdr));
    spdlog::warn("server message {} of {} bytes refused (limit {})", hdr->msg_id.substr(0, 16),
                 server_message.size(), options_.max_message_size);
    return Emit(HeaderStatus(hdr->msg_id, st::kEntityTooLarge), false);
  }

  Result<syncml::Message> decoded = syncml::Decode(server_message);
  if (!decoded.ok()) {
    std::optional<syncml::SyncHdr> hdr = syncml::SalvageHeader(server_message);
    spdlog::warn("server message does not decode: {}", decoded.error().message());
    if (!hdr) return decoded.error().WithContext("server message");
    DM_RETURN_IF_ERROR(EnsureStarted(*hdr));
    return Emit(HeaderStatus(hdr->msg_id, st::kBadRequest), false);
  }
  const syncml::Message& msg = *decoded;
  const bool known_session = started_;
  DM_RETURN_IF_ERROR(EnsureStarted(msg.header));
  if (known_session && msg.header.session_id != session_id_) {
    // A message of another session (an earlier one played back, or a confused server): none of
    // its commands run. The first message of local management sets the session instead.
    spdlog::warn("server message {} carries SessionID {}, this session is {}: refused",
                 msg.header.msg_id.substr(0, 16), msg.header.session_id.substr(0, 16), session_id_);
    return Emit(HeaderStatus(msg.header.msg_id, st::kBadRequest), false);
  }
  if (last_answered_ && msg.header.msg_id == last_answered_->msg_id) {
    if (server_message == last_answered_->message) {
      spdlog::info("server message {} arrived again: the same answer, nothing run twice",
                   msg.header.msg_id.substr(0, 16));
      return std::optional<std::string>(last_answered_->reply);
    }
    spdlog::warn("server message {} differs from the one answered under that MsgID: refused",
                 msg.header.msg_id.substr(0, 16));
    return Emit(HeaderStatus(msg.header.msg_id, st::kBadRequest), false);
  }
  if (msg.header.meta) {
    if (msg.header.meta->max_msg_size) peer_max_msg_size_ = *msg.header.meta->max_msg_size;
    if (msg.header.meta->max_obj_size) peer_max_obj_size_ = *msg.header.meta->max_obj_size;
  }
  if (msg.header.resp_uri) resp_uri_ = msg.header.resp_uri;

  MessageState m;
  m.msg_ref = msg.header.msg_id;
  bool operational = false;
  DM_ASSIGN_OR_RETURN(storage::Transaction tx, db_.Begin());
  for (const Command& c : msg.commands) {
    if (m.stop) break;
    if (c.type == CommandType::kStatus) {
      // Statuses get no Status back. Only a few of them change what we do.
      const std::optional<int> code = ParseCode(c.data);
      if (!code) continue;
      if (c.cmd == "Alert" && (c.msg_ref.empty() || c.msg_ref == "1")) {
        // An answer to one of package 1's generic alerts (MsgRef absent means 1).
        for (size_t i = 0; i < alert_cmd_ids_.size(); ++i) {
          if (alert_cmd_ids_[i] == c.cmd_ref) alert_statuses_[i] = *code;
        }
      }
      if (c.cmd_ref == "0" && c.cmd == "SyncHdr" &&
          (*code == st::kInvalidCredentials || *code == st::kMissingCredentials)) {
        m.auth_code = *code;
        m.stop = true;
      } else if (*code == st::kCancelled) {
        m.stop = true;  // 214: the server processes nothing more in this session
      } else if (c.cmd == "Results" && !csp::IsSuccess(*code) && last_chunk_ &&
                 c.cmd_ref == last_chunk_->second &&
                 (c.msg_ref.empty() || c.msg_ref == last_chunk_->first)) {
        // The server refused a chunk of the large object we are sending: the rest is moot.
        std::erase_if(out_other_, [](const OutCommand& o) { return o.continuation; });
        last_chunk_.reset();
      } else if (c.cmd == "Alert" || c.cmd == "Results" || !csp::IsSuccess(*code)) {
        spdlog::debug("server status {} for our {} {}", *code, c.cmd, c.cmd_ref);
      }
      continue;
    }
    if (c.type == CommandType::kResults) continue;  // not expected from a server; no answer
    operational = true;
    Execute(c, m, nullptr);
  }

  if (m.stop) {
    // Nothing of this message is answered, so nothing of it is kept: the server re-sends
    // whatever it still wants in a later session.
    (void)tx.Rollback();
    over_ = true;
    aborted_ = m.abort || m.auth_code != 0;
    incoming_.reset();
    if (m.auth_code != 0) {
      return Unauthenticated("the server answered " + std::to_string(m.auth_code) +
                             " to our credentials; application-level authentication is not "
                             "configured");
    }
    spdlog::info("OMA-DM session {} ended by the server ({})", session_id_,
                 m.abort ? "Alert 1223" : "Status 214");
    return std::optional<std::string>();
  }
  if (Status committed = tx.Commit(); !committed.ok()) {
    over_ = true;  // nothing can be answered for a message that is not durable
    return committed.WithContext("commit server message");
  }  // durable before anything is answered (decision 1)
  tree_.OnCommitted();

  for (MessageState::Answer& a : m.answers) {
    if (!a.suppressed) out_statuses_.push_back({std::move(a.status), false});
  }
  for (Command& c : m.alerts) out_other_.push_back({std::move(c), false});
  for (Command& c : m.results) out_other_.push_back({std::move(c), false});

  if (!operational && out_statuses_.empty() && out_other_.empty()) {
    over_ = true;  // only Statuses from the server and nothing left to say: session end
    return std::optional<std::string>();
  }
  std::optional<std::string> out =
      Emit(HeaderStatus(msg.header.msg_id, st::kOk), operational && !msg.final);
  if (!out) {
    over_ = true;
  } else if (operational) {
    last_answered_ = Answered{msg.header.msg_id, std::string(server_message), *out};
  }
  return out;
}

size_t Session::AddStatus(const Command& c, int code, MessageState& m,
                          std::vector<std::string> target_refs) {
  Command s = syncml::MakeStatus("", m.msg_ref, c.cmd_id, NameOf(c), code);
  s.target_refs = std::move(target_refs);
  m.answers.push_back({std::move(s), code, c.no_resp, {}});
  return m.answers.size() - 1;
}

Session::Refusal Session::OwnRefusal(const Command& c, MessageState& m, bool in_atomic) {
  if (!c.cmd_id.empty() && !m.seen_ids.insert(c.cmd_id).second) {
    return {st::kBadRequest, "duplicate CmdID in one message"};
  }
  if (!c.error.empty()) return {st::kBadRequest, c.error};
  if (c.type == CommandType::kUnsupported) {
    // Copy, Map, Put, Search, Sync are SyncML commands MS-MDM does not support: 406 "optional
    // feature not supported". An element that is no command at all is 400 (reference 1.4).
    return {st::kOptionalFeatureNotSupported, "command not supported"};
  }
  if (c.type == CommandType::kStatus || c.type == CommandType::kResults ||
      c.type == CommandType::kUnknown) {
    return {st::kBadRequest, "not allowed here"};  // Status/Results inside Atomic or Sequence
  }
  if (in_atomic && c.type == CommandType::kGet) return {st::kCommandFailed, "Get inside Atomic"};
  if (in_atomic && c.type == CommandType::kAtomic) {
    // Nested Atomic: the inner one is 500, the outer one fails with 507 (Windows behaviour).
    return {st::kCommandFailed, "nested Atomic is not supported"};
  }
  return {0, ""};
}

void Session::NotExecuted(const Command& c, int code, MessageState& m, bool in_atomic) {
  // A command refused for a reason of its own keeps that code even when it was never run
  // (a Get after a failed sibling in an Atomic is 500, not 216).
  Refusal own = OwnRefusal(c, m, in_atomic);
  const int answered = own.code != 0 ? own.code : code;
  const size_t a = AddStatus(c, answered, m);
  outcomes_.push_back(
      {c.cmd_id, NameOf(c), "", answered, own.code != 0 ? own.reason : "not executed"});
  m.answers[a].outcomes.push_back(outcomes_.size() - 1);
  const bool children_in_atomic = in_atomic || c.type == CommandType::kAtomic;
  for (const Command& child : c.children) NotExecuted(child, code, m, children_in_atomic);
}

int Session::Execute(const Command& c, MessageState& m, AtomicFrame* atomic) {
  const bool in_atomic = atomic != nullptr;
  if (Refusal own = OwnRefusal(c, m, in_atomic); own.code != 0) {
    const size_t a = AddStatus(c, own.code, m);
    outcomes_.push_back({c.cmd_id, NameOf(c), "", own.code, own.reason});
    m.answers[a].outcomes.push_back(outcomes_.size() - 1);
    spdlog::warn("server {} {}: {} ({})", NameOf(c), c.cmd_id.substr(0, 40), own.code, own.reason);
    for (const Command& child : c.children) {
      NotExecuted(
          child,
          in_atomic || c.type == CommandType::kAtomic ? st::kAtomicRolledBack : st::kNotExecuted, m,
          in_atomic || c.type == CommandType::kAtomic);
    }
    if (in_atomic) atomic->failed = true;
    return own.code;
  }

  int code = 0;
  switch (c.type) {
    case CommandType::kAtomic:
      code = ExecuteAtomic(c, m);  // never nested: OwnRefusal refused that
      break;
    case CommandType::kSequence:
      code = ExecuteSequence(c, m, atomic);
      break;
    case CommandType::kAlert:
      code = ExecuteAlert(c, m);
      break;
    default:
      code = ExecuteItems(c, m, atomic);
      break;
  }
  if (atomic != nullptr && !csp::IsSuccess(code)) atomic->failed = true;
  return code;
}

int Session::ExecuteAtomic(const Command& c, MessageState& m) {
  const size_t self = AddStatus(c, st::kOk, m);
  outcomes_.push_back({c.cmd_id, "Atomic", "", st::kOk, ""});
  const size_t self_outcome = outcomes_.size() - 1;
  m.answers[self].outcomes.push_back(self_outcome);

  Result<storage::Transaction> tx = db_.Begin();
  if (!tx.ok()) {
    m.SetCode(self, st::kCommandFailed, outcomes_, "cannot open a savepoint");
    for (const Command& child : c.children) NotExecuted(child, st::kAtomicRolledBack, m, true);
    return st::kCommandFailed;
  }

  AtomicFrame frame;
  const size_t first_member = m.answers.size();
  for (const Command& child : c.children) {
    if (m.stop) break;
    if (frame.failed) {
      NotExecuted(child, st::kAtomicRolledBack, m, true);
      continue;
    }
    Execute(child, m, &frame);
  }
  if (!frame.failed) {
    if (tx->Commit().ok()) return st::kOk;
    frame.failed = true;  // release failed: treat as a failure of the whole Atomic
  }
  const bool rolled_back = tx->Rollback().ok();
  for (size_t i = first_member; i < m.answers.size(); ++i) {
    if (csp::IsSuccess(m.answers[i].code)) {
      m.SetCode(i, st::kAtomicRolledBack, outcomes_, "rolled back: the Atomic failed");
    }
  }
  const int code = rolled_back ? st::kAtomicFailed : st::kAtomicRollbackFailed;
  m.SetCode(self, code, outcomes_);
  return code;
}

int Session::ExecuteSequence(const Command& c, MessageState& m, AtomicFrame* atomic) {
  const size_t self = AddStatus(c, st::kOk, m);
  outcomes_.push_back({c.cmd_id, "Sequence", "", st::kOk, ""});
  m.answers[self].outcomes.push_back(outcomes_.size() - 1);
  for (const Command& child : c.children) {
    if (m.stop) break;
    Execute(child, m, atomic);  // ordered, not transactional: a failure does not stop it
  }
  return st::kOk;
}

int Session::ExecuteAlert(const Command& c, MessageState& m) {
  const std::optional<int> alert = ParseCode(c.data);
  int code = st::kOk;
  std::string reason;
  if (!alert) {
    code = st::kBadRequest;
    reason = "alert code is not a number";
  } else if (*alert == syncml::alert::kSessionAbort) {
    m.abort = true;
    m.stop = true;
    return st::kOk;
  } else if (*alert == syncml::alert::kNoEndOfData) {
    // The server gives up on a large object we were sending.
    auto pending = std::find_if(out_other_.begin(), out_other_.end(),
                                [](const OutCommand& o) { return o.continuation; });
    if (pending != out_other_.end()) out_other_.erase(pending);
  } else if (*alert != syncml::alert::kNextMessage && *alert != syncml::alert::kClientEvent &&
             *alert != syncml::alert::kGenericAlert && *alert != syncml::alert::kServerInitiated &&
             *alert != syncml::alert::kClientInitiated) {
    code = st::kOptionalFeatureNotSupported;  // user-interaction alerts (11xx) and the like
    reason = "alert " + c.data + " not supported";
  }
  const size_t a = AddStatus(c, code, m);
  outcomes_.push_back({c.cmd_id, "Alert", "", code, reason});
  m.answers[a].outcomes.push_back(outcomes_.size() - 1);
  return code;
}

int Session::ExecuteItems(const Command& c, MessageState& m, AtomicFrame* atomic) {
  if (c.items.empty()) {  // the decoder marks this as an error; guard for built commands
    const size_t a = AddStatus(c, st::kBadRequest, m);
    outcomes_.push_back({c.cmd_id, NameOf(c), "", st::kBadRequest, "no Item"});
    m.answers[a].outcomes.push_back(outcomes_.size() - 1);
    return st::kBadRequest;
  }
  struct Done {
    std::string uri;
    int code;
    csp::NodeValue value;
  };
  std::vector<Done> done;
  const size_t first_outcome = outcomes_.size();
  for (const Item& item : c.items) {
    Done d{item.target ? item.target->loc_uri : std::string(), st::kBadRequest, {}};
    std::string reason = "Item has no Target LocURI";
    if (!d.uri.empty()) d.code = ApplyItem(c, item, d.uri, atomic, m, &d.value, &reason);
    outcomes_.push_back({c.cmd_id, NameOf(c), d.uri, d.code, reason});
    if (!csp::IsSuccess(d.code)) {
      spdlog::info("{} {} {}: {} {}", NameOf(c), c.cmd_id.substr(0, 40), d.uri.substr(0, 200),
                   d.code, reason);
    }
    done.push_back(std::move(d));
  }

  // One Status when every Item has the same code; else one per Item, told apart by TargetRef
  // (MS-MDM 2.2.6.1).
  const bool uniform =
      std::all_of(done.begin(), done.end(), [&](const Done& d) { return d.code == done[0].code; });
  int overall = done[0].code;
  if (uniform) {
    const size_t a = AddStatus(c, overall, m);
    for (size_t i = 0; i < done.size(); ++i) m.answers[a].outcomes.push_back(first_outcome + i);
  } else {
    for (size_t i = 0; i < done.size(); ++i) {
      const size_t a = AddStatus(c, done[i].code, m, {done[i].uri});
      m.answers[a].outcomes.push_back(first_outcome + i);
      if (!csp::IsSuccess(done[i].code) && csp::IsSuccess(overall)) overall = done[i].code;
    }
  }

  if (c.type == CommandType::kGet) {
    Command r = syncml::MakeCommand(CommandType::kResults, "");
    r.msg_ref = m.msg_ref;
    r.cmd_ref = c.cmd_id;
    r.cmd = "Get";
    for (Done& d : done) {
      if (d.code != st::kOk) continue;
      Item item;
      item.source = Location{d.uri, std::nullopt};
      item.meta = Meta{};
      item.meta->format = d.value.format.empty() ? "chr" : d.value.format;
      if (!d.value.type.empty() && d.value.type != "text/plain") item.meta->type = d.value.type;
      item.data = syncml::Data(std::move(d.value.data));
      r.items.push_back(std::move(item));
    }
    if (!r.items.empty()) m.results.push_back(std::move(r));
  }
  return overall;
}

int Session::ApplyItem(const Command& c, const Item& item, const std::string& uri,
                       AtomicFrame* atomic, MessageState& m, csp::NodeValue* got,
                       std::string* reason) {
  reason->clear();
  auto meta_field = [&](std::optional<std::string> Meta::*field) -> std::optional<std::string> {
    if (item.meta && (*item.meta).*field) return (*item.meta).*field;
    if (c.meta && (*c.meta).*field) return (*c.meta).*field;
    return std::nullopt;
  };
  const std::string format = meta_field(&Meta::format).value_or("chr");
  const std::string type = meta_field(&Meta::type).value_or("text/plain");
  const bool writes = c.type == CommandType::kAdd || c.type == CommandType::kReplace ||
                      c.type == CommandType::kExec;
  if (writes && !KnownFormat(format)) {
    *reason = "unsupported Meta Format \"" + format.substr(0, 32) + "\"";
    return st::kUnsupportedMediaType;
  }
  // The canonical URI, for the large-object and Atomic bookkeeping only: parsing it costs about
  // as much as the tree's own resolution of the URI (dm_bench apply profile), so plain commands
  // do not pay it twice.
  std::optional<std::string> canonical;
  auto key = [&]() -> const std::string& {
    if (!canonical) canonical = Canonical(uri);
    return *canonical;
  };

  // Large objects (OMA-DM 1.2 section 7): chunks of one Item arrive as separate commands.
  if (incoming_ && !(incoming_->cmd_type == c.type && incoming_->uri == key())) {
    // Something else arrived before the final chunk: the object is abandoned.
    Item target;
    target.target = Location{incoming_->uri, std::nullopt};
    m.alerts.push_back(syncml::MakeAlert("", syncml::alert::kNoEndOfData, {target}));
    incoming_.reset();
  }
  if (item.more_data && !writes) {
    *reason = "MoreData on a " + NameOf(c);
    return st::kBadRequest;
  }
  const std::string empty;
  const std::string& data = item.data ? item.data->text : empty;
  csp::NodeValue value;
  if (item.more_data || incoming_) {
    if (!incoming_) {
      incoming_ = IncomingObject{c.type, key(), csp::NodeValue{"", format, type},
                                 item.meta ? item.meta->size : std::nullopt, 0};
      if (incoming_->declared_size && *incoming_->declared_size > options_.max_obj_size) {
        incoming_->rejected_code = st::kEntityTooLarge;
      }
    }
    IncomingObject& lo = *incoming_;
    if (lo.rejected_code == 0) {
      lo.value.data += data;
      if (lo.value.data.size() > options_.max_obj_size) {
        lo.rejected_code = st::kEntityTooLarge;
      } else if (lo.declared_size && lo.value.data.size() > *lo.declared_size) {
        lo.rejected_code = st::kSizeMismatch;
      }
      if (lo.rejected_code != 0) std::string().swap(lo.value.data);
    }
    if (item.more_data) {
      if (lo.rejected_code != 0) *reason = "large object refused";
      return lo.rejected_code != 0 ? lo.rejected_code : st::kChunkAccepted;
    }
    IncomingObject whole = std::move(lo);
    incoming_.reset();
    if (whole.rejected_code != 0) {
      *reason = whole.rejected_code == st::kSizeMismatch
                    ? "large object longer than its Meta Size"
                    : "large object above MaxObjSize " + std::to_string(options_.max_obj_size);
      return whole.rejected_code;
    }
    if (whole.declared_size && *whole.declared_size != whole.value.data.size()) {
      *reason = "reassembled " + std::to_string(whole.value.data.size()) +
                " bytes, Meta Size said " + std::to_string(*whole.declared_size);
      return st::kSizeMismatch;
    }
    value = std::move(whole.value);
  } else {
    if (data.size() > options_.max_obj_size) {
      *reason = "Data above MaxObjSize " + std::to_string(options_.max_obj_size);
      return st::kEntityTooLarge;
    }
    value = csp::NodeValue{data, format, type};
  }

  csp::OpResult r;
  switch (c.type) {
    case CommandType::kAdd:
      r = tree_.Add(ctx_, uri, value);
      if (atomic != nullptr && csp::IsSuccess(r.code)) atomic->added.insert(key());
      break;
    case CommandType::kReplace:
      if (atomic != nullptr && atomic->added.count(key()) != 0) {
        // Windows does not support Add then Replace of one node inside an Atomic.
        *reason = "Replace of a node added in the same Atomic";
        return st::kCommandFailed;
      }
      r = tree_.Replace(ctx_, uri, value);
      break;
    case CommandType::kDelete:
      r = tree_.Delete(ctx_, uri);
      break;
    case CommandType::kExec:
      r = tree_.Exec(ctx_, uri, value);
      break;
    case CommandType::kGet: {
      csp::GetResult g = tree_.Get(ctx_, uri);
      r.code = g.code;
      r.reason = std::move(g.reason);
      if (r.code == st::kOk && peer_max_obj_size_ != 0 &&
          g.value.data.size() > peer_max_obj_size_) {
        *reason = "value above the server's MaxObjSize";
        return st::kEntityTooLarge;
      }
      *got = std::move(g.value);
      break;
    }
    default:
      r.code = st::kBadRequest;
      break;
  }
  *reason = std::move(r.reason);
  return r.code;
}

// ---- building our messages ----------------------------------------------------------------

// Cuts the first item of a Results that does not fit into `room` bytes: the head goes out now
// as a chunk (MoreData; Meta Size on the first chunk), the rest stays queued. false when less
// than kMinChunk bytes would fit, unless the chunk is `alone` in its message (progress first).
bool Session::FillChunk(OutCommand& out, size_t room, bool alone, Command* chunk) {
  Command& c = out.cmd;
  Item& item = c.items.front();
  if (!item.data || item.data->text.empty()) return false;
  std::string& text = item.data->text;

  Command head = c;
  head.items.resize(1);
  Item& h = head.items[0];
  h.more_data = true;
  h.data->text.clear();
  if (!out.continuation) {
    if (!h.meta) h.meta = Meta{};
    h.meta->size = text.size();
  }
  const size_t overhead = syncml::EncodedSize(head) + kChunkSlack;
  size_t n = room > overhead ? BytesFitting(text, room - overhead) : 0;
  if (n < kMinChunk) {
    if (!alone) return false;
    n = BytesFitting(text, kMinChunk);
  }
  // Nothing to cut (it would fit whole) or nothing that can be cut: not a chunk.
  if (n == 0 || n >= text.size()) return false;
  h.data->text = text.substr(0, n);
  text.erase(0, n);
  if (!out.continuation) item.meta.reset();  // later chunks carry no Meta
  out.continuation = true;
  *chunk = std::move(head);
  return true;
}

std::optional<std::string> Session::Emit(std::optional<Command> header_status,
                                         bool server_package_open) {
  syncml::Message msg;
  msg.header = MakeHeader();
  const uint64_t budget = peer_max_msg_size_;
  size_t used = syncml::EnvelopeSize(msg.header);
  int next_id = 1;
  bool has_content = false;  // anything beyond a successful SyncHdr Status
  bool said_more = false;    // Alerts or Results of ours in this message
  if (header_status) {
    header_status->cmd_id = std::to_string(next_id++);
    used += syncml::EncodedSize(*header_status);
    has_content = header_status->data != std::to_string(st::kOk);
    msg.commands.push_back(std::move(*header_status));
  }
  const size_t fixed = msg.commands.size();
  auto room = [&]() -> size_t { return budget > used ? budget - used : 0; };

  bool full = false;
  for (std::deque<OutCommand>* queue : {&out_statuses_, &out_other_}) {
    while (!full && !queue->empty()) {
      // A chunked item travels alone in its Results, so the other items never wait on it.
      if (queue->front().cmd.type == CommandType::kResults && queue->front().cmd.items.size() > 1) {
        OutCommand& front = queue->front();
        const size_t s = syncml::EncodedSize(front.cmd);
        if (budget != 0 && used + s > budget) {
          OutCommand rest{front.cmd, false};
          rest.cmd.items.erase(rest.cmd.items.begin());
          front.cmd.items.resize(1);
          queue->insert(queue->begin() + 1, std::move(rest));
        }
      }
      OutCommand& out = queue->front();
      out.cmd.cmd_id = std::to_string(next_id);
      const size_t s = syncml::EncodedSize(out.cmd);
      const bool alone = msg.commands.size() == fixed;
      Command chunk;
      if (budget == 0 || used + s <= budget) {
        used += s;
        msg.commands.push_back(std::move(out.cmd));
        queue->pop_front();
      } else if (out.cmd.type == CommandType::kResults && FillChunk(out, room(), alone, &chunk)) {
        last_chunk_.emplace(msg.header.msg_id, chunk.cmd_id);
        msg.commands.push_back(std::move(chunk));
        full = true;  // a chunk ends its message
      } else if (alone) {
        // Cannot be cut and does not fit even alone: send it anyway rather than stall.
        used += s;
        msg.commands.push_back(std::move(out.cmd));
        queue->pop_front();
        full = true;
      } else {
        full = true;
        break;
      }
      ++next_id;
      has_content = true;
      if (queue == &out_other_) said_more = true;
    }
  }
  const bool done = out_statuses_.empty() && out_other_.empty();
  if (server_package_open && done && !said_more) {
    // The server's package goes on and we have nothing of our own to say: ask for the next
    // message (OMA-DM 1.2; AOSP engine does the same).
    msg.commands.push_back(
        syncml::MakeAlert(std::to_string(next_id++), syncml::alert::kNextMessage));
    has_content = true;
  }
  // Our package ends with the message that empties our queues, unless the server's package is
  // still open (then more of it comes and we answer it in this package).
  msg.final = done && !server_package_open;
  if (!has_content) return std::nullopt;  // never a message with only SyncHdr 200
  ++next_msg_id_;
  return syncml::Encode(msg, options_.encode);
}

}  // namespace dm::agent
