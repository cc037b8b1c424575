// The OMA-DM 1.2 session engine, as a Windows client runs it (MS-MDM; protocol-omadm.md).
//
// Transport-free: Start() builds package 1, Process() takes one server message and returns the
// client's answer, or nullopt when the session is over. The same object serves the networked
// session (agent/transport posts what it returns) and local management (`dmagent exec`: one
// server message in, the response out; Process() may then be called without Start()).
//
// What it guarantees (ARCHITECTURE decisions 1-3):
//  - A server message's commands run inside one storage transaction that is committed before
//    Process() returns the response; DmTree::OnCommitted() runs after that commit. An Atomic is
//    a savepoint inside it.
//  - Status discipline: SyncHdr Status first (CmdRef 0), one Status per command in request
//    order (an Atomic/Sequence, then each member), Results after the Statuses; never a message
//    holding only a successful SyncHdr Status; no Final required from the server.
//  - Peer MaxMsgSize/MaxObjSize honoured: Results too large for one message are sent as a large
//    object (Meta Size + MoreData) across messages; chunked items from the server are
//    reassembled (213 per chunk, 424 on size mismatch, 413 above our MaxObjSize).
// Only the SessionID counter is persisted (table agent_session); everything else lives in this
// object for the length of one session.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/syncml/codec.h"
#include "agent/syncml/message.h"
#include "base/status.h"
#include "csp/dm_tree.h"
#include "storage/database.h"

namespace dm::agent {

// A 1226 generic alert for package 1 (MS-MDM 2.2.7.2): reverse-domain Type, Format, optional
// Mark and Source, and the data.
struct GenericAlert {
  std::string type;  // e.g. "com.microsoft:mdm.unenrollment.userrequest"
  std::string format = "chr";
  std::optional<std::string> mark;    // fatal, critical, ...
  std::optional<std::string> source;  // Source LocURI (the node the alert is about)
  std::string data;
};

struct SessionOptions {
  // Target LocURI of our messages: the management server URL from enrollment.
  std::string server_url;
  // Source LocURI. Empty: read ./DevInfo/DevId from the tree.
  std::string device_id;
  // Largest object accepted from the server (a single Data or a reassembled large object);
  // larger ones are answered 413.
  uint64_t max_obj_size = 4u << 20;
  // Largest server message decoded at all; a larger one gets SyncHdr 413 and is not processed.
  uint64_t max_message_size = 16u << 20;
  // Limit for our messages when the server declares no MaxMsgSize (0: none).
  uint64_t default_peer_max_msg_size = 0;
  // Declare MaxMsgSize/MaxObjSize in our SyncHdr. Off by default: the Windows 21H1 client sends
  // no client Meta (protocol-omadm.md 1.2).
  bool advertise_limits = false;
  uint64_t max_msg_size = 512u << 10;  // what we advertise when advertise_limits
  syncml::EncodeOptions encode;
};

// A further 1224 client event after LoginStatus, e.g. the signed-in user's identity
// ("com.microsoft/MDM/AADUserToken"), which tells the server whose ./User settings to send.
struct ClientEvent {
  std::string type;
  std::string data;
};

struct SessionStart {
  bool server_initiated = false;           // Alert 1200 (after a push) instead of 1201
  std::string login_status = "user";       // Alert 1224 LoginStatus: user | others | none
  std::string user;                        // whom ./User/... URIs address in this session
  std::vector<ClientEvent> client_events;  // more 1224 alerts, after LoginStatus
  std::vector<GenericAlert> alerts;        // pending 1226 alerts, one Alert command each
};

// What happened to one server command (or one Item of it), for logs, reports and `dmagent exec`.
struct CommandOutcome {
  std::string cmd_id;
  std::string cmd;  // "Replace", "Atomic", ...
  std::string uri;  // the Item's Target LocURI, empty for containers and alerts
  int code = 0;
  std::string reason;  // why, when the tree or the engine said so
};

class Session {
 public:
  Session(csp::DmTree& tree, storage::Database& db, SessionOptions options);

  // Package 1: Alert 1201/1200, Alert 1224 LoginStatus, the pending 1226 alerts, Replace of
  // ./DevInfo/{DevId,Man,Mod,DmV,Lang} read from the tree, Final. CmdIDs start at 2 as on the
  // real client; SessionID is the persisted counter + 1, MsgID 1.
  Result<std::string> Start(const SessionStart& start);

  // Processes one server message; returns the next client message, or nullopt when the session
  // is over (nothing operational from the server and nothing left to send, Alert 1223, Status
  // 214). Errors: the message does not decode and has no readable SyncHdr (InvalidArgument),
  // the server refused our credentials (Unauthenticated), the database failed (IoError...), or
  // the session is already over (FailedPrecondition). A message whose SessionID is not this
  // session's (set by Start(), or in local management by the first message processed) is
  // answered with SyncHdr Status 400 and none of its commands run: replay protection on top of
  // TLS, which already binds each session's messages to one connection. The same server
  // message again (its MsgID and bytes; a server re-sending after our answer was lost) gets
  // the same answer again, byte for byte, and runs nothing twice; a different message under
  // an MsgID already answered is refused with SyncHdr Status 400.
  Result<std::optional<std::string>> Process(std::string_view server_message);

  // Local management (`dmagent exec`, no Start()): whom ./User/... addresses.
  void SetUser(std::string user) { ctx_.user = std::move(user); }

  const std::string& session_id() const { return session_id_; }
  bool over() const { return over_; }
  bool aborted() const { return aborted_; }
  // RespURI from the server's SyncHdr: where the transport posts our next message.
  const std::optional<std::string>& resp_uri() const { return resp_uri_; }
  // Outcomes of the commands of the last processed server message, in request order.
  const std::vector<CommandOutcome>& last_outcomes() const { return outcomes_; }
  // The server's Status code for each generic alert of package 1 (same order as
  // SessionStart::alerts); nullopt while the server has not answered it. An outbox deletes an
  // alert only on a 2xx here.
  const std::vector<std::optional<int>>& generic_alert_statuses() const { return alert_statuses_; }

 private:
  struct MessageState;
  struct AtomicFrame;
  struct IncomingObject {
    syncml::CommandType cmd_type;
    std::string uri;
    csp::NodeValue value;  // data accumulates here
    std::optional<uint64_t> declared_size;
    int rejected_code = 0;  // non-zero: the object was refused; later chunks get this code
  };
  struct OutCommand {
    syncml::Command cmd;
    bool continuation = false;  // a later chunk of a large object (no Meta Size)
  };

  Status EnsureStarted(const syncml::SyncHdr& server_header);
  Result<std::string> NextSessionId();
  syncml::SyncHdr MakeHeader() const;
  syncml::Command HeaderStatus(const std::string& msg_ref, int code) const;
  std::optional<std::string> Emit(std::optional<syncml::Command> header_status,
                                  bool server_package_open);
  bool FillChunk(OutCommand& out, size_t room, bool alone, syncml::Command* chunk);

  int Execute(const syncml::Command& c, MessageState& m, AtomicFrame* atomic);
  int ExecuteAtomic(const syncml::Command& c, MessageState& m);
  int ExecuteSequence(const syncml::Command& c, MessageState& m, AtomicFrame* atomic);
  int ExecuteItems(const syncml::Command& c, MessageState& m, AtomicFrame* atomic);
  int ExecuteAlert(const syncml::Command& c, MessageState& m);
  int ApplyItem(const syncml::Command& c, const syncml::Item& item, const std::string& uri,
                AtomicFrame* atomic, MessageState& m, csp::NodeValue* got, std::string* reason);
  // Why `c` cannot run whatever its siblings do (code 0: it can). Records its CmdID.
  struct Refusal {
    int code;
    std::string reason;
  };
  Refusal OwnRefusal(const syncml::Command& c, MessageState& m, bool in_atomic);
  // Answers `c` and its children with `code` (216 in a failed Atomic, 215 elsewhere), except
  // those with a refusal of their own.
  void NotExecuted(const syncml::Command& c, int code, MessageState& m, bool in_atomic);
  size_t AddStatus(const syncml::Command& c, int code, MessageState& m,
                   std::vector<std::string> target_refs = {});

  csp::DmTree& tree_;
  storage::Database& db_;
  SessionOptions options_;

  bool started_ = false;
  bool over_ = false;
  bool aborted_ = false;
  std::string session_id_;
  int next_msg_id_ = 1;
  std::string target_uri_;  // server URL (or its RespURI)
  std::string device_id_;
  std::optional<std::string> resp_uri_;
  uint64_t peer_max_msg_size_ = 0;  // 0: no limit
  uint64_t peer_max_obj_size_ = 0;
  csp::Context ctx_;
  std::optional<IncomingObject> incoming_;
  // The last server message whose commands ran, and what we answered.
  struct Answered {
    std::string msg_id;
    std::string message;  // its bytes: a copy costs less than hashing them
    std::string reply;
  };
  std::optional<Answered> last_answered_;
  std::deque<OutCommand> out_statuses_;  // sent before out_other_
  std::deque<OutCommand> out_other_;     // our Alerts and Results
  // (MsgID, CmdID) of the large-object chunk we sent last, to match the server's Status.
  std::optional<std::pair<std::string, std::string>> last_chunk_;
  std::vector<CommandOutcome> outcomes_;
  std::vector<std::string> alert_cmd_ids_;  // CmdIDs of package 1's 1226 alerts
  std::vector<std::optional<int>> alert_statuses_;
};

}  // namespace dm::agent
