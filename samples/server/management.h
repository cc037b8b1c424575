// The OMA-DM management endpoint (POST /ManagementServer/MDM.svc): one SyncML message in, one
// out, for a device authenticated by its TLS client certificate.
//
// Conventions the agent follows (see samples/server/README.md):
//  - SyncHdr Source LocURI must equal the certificate's CN (the DevId), else 403.
//  - Package 1 carries Alert 1224 LoginStatus (user|others|none) and, when a user is signed in,
//    a second Alert 1224 whose Item Meta Type is com.microsoft/MDM/AADUserToken and whose Data
//    is the user's token: a signed user token (user_token.h) from this server's IdP for a user
//    of the device's tenant. Only then does the session get that user's ./User settings; a
//    bare UPN, or a token that does not verify, is refused and logged.
//  - The first message of a session (MsgID 1) queues the DMAgent CSP settings
//    (agent_services.h): the agent sends its report only once subscribed.
//  - The compliance/recovery report arrives as a 1226 generic alert (any Meta Type; the agent
//    uses com.dmagent/MDM/ComplianceReport) whose Data is the report XML, or as the Results of a
//    Get of ./Vendor/MSFT/DMAgent/Report.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "samples/server/agent_services.h"
#include "samples/server/store.h"
#include "samples/server/user_token.h"

namespace dm::server {

inline constexpr char kUserAlertType[] = "com.microsoft/MDM/AADUserToken";
inline constexpr char kLoginStatusType[] = "com.microsoft/MDM/LoginStatus";
inline constexpr char kReportAlertType[] = "com.dmagent/MDM/ComplianceReport";
inline constexpr char kReportUri[] = "./Vendor/MSFT/DMAgent/Report";
inline constexpr uint64_t kServerMaxMsgSize = 524288;  // what Intune advertises
inline constexpr char kSyncMLContentType[] = "application/vnd.syncml.dm+xml";
// Generic alerts kept per device, one per alert type (the latest); past this many types the
// oldest go, so a device cannot grow the store by inventing types.
inline constexpr int kMaxReportTypesPerDevice = 16;

struct ManagementReply {
  int http_status = 200;
  std::string body;             // SyncML (also for 400/403: a SyncHdr Status says why)
  int retry_after_seconds = 0;  // 503 while draining: when to come back
};

// How long a device refused while dmserver drains is told to wait (Retry-After).
inline constexpr int kDrainRetryAfterSeconds = 60;

class ManagementService {
 public:
  explicit ManagementService(Store& store) : store_(store) {}

  // What every device is told at its first session (and again when a value changes): the
  // compliance report subscription and these services. Set before the first request; unset,
  // nothing is queued.
  void SetAgentServices(AgentServices services) { services_ = std::move(services); }
  // Verifies the user tokens sessions carry. Set before the first request; unset, no session
  // has a signed-in user. Not owned.
  void SetUserTokens(const UserTokenSigner* user_tokens) { user_tokens_ = user_tokens; }

  // `cert_dev_id`, `cert_serial`: CN and serial of the verified client certificate.
  ManagementReply Handle(std::string_view cert_dev_id, std::string_view cert_serial,
                         std::string_view body);

  // Stopping: a new session (MsgID 1) gets 503 with Retry-After, sessions under way go on.
  void BeginDrain();
  // Sessions this process is in the middle of (its last reply carried commands), leaving out
  // those whose device has been silent for longer than `idle` (by the store's clock).
  size_t OpenSessions(std::chrono::milliseconds idle) const;

 private:
  void NoteReply(std::string_view dev_id, bool session_open);

  Store& store_;
  mutable std::mutex sessions_mu_;
  bool draining_ = false;                                      // guarded by sessions_mu_
  std::map<std::string, int64_t, std::less<>> open_sessions_;  // dev_id -> last reply (ms)
  std::optional<AgentServices> services_;
  const UserTokenSigner* user_tokens_ = nullptr;
};

// A user name in a device report names the UPN `upn`: the UPN itself (case-insensitive), or its
// part before '@' when the device reports bare account names.
bool SameUser(std::string_view reported, std::string_view upn);

// Stores a device's compliance/recovery report and applies it to per-setting status (pending
// reboot, conflict, ...) and each user's CanReset. Caller holds the lock.
Status IngestReport(Store& store, std::string_view dev_id, std::string_view type,
                    std::string_view format, std::string_view xml);

}  // namespace dm::server
