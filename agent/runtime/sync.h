// One OMA-DM session with the management server over mutual TLS, and the device's reboot step.
//
// A session: refresh the compliance report (a changed report becomes a 1226 alert in the
// outbox, if the server subscribed to it), send package 1 with every undelivered alert, then POST
// the engine's messages until the server has nothing more to say. Commands are durable before each
// answer leaves (the engine commits per message); alerts leave the outbox only on the server's 2xx;
// a Reboot CSP RebootNow received in the session is carried out when the session ends.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/runtime/device.h"
#include "agent/session/session.h"
#include "agent/transport/https_client.h"
#include "agent/transport/retry.h"
#include "base/status.h"

namespace dm::agent {

// The 1226 alert type of the agent's compliance and recovery report (Format xml).
inline constexpr char kReportAlertType[] = "com.dmagent/MDM/ComplianceReport";
// settings-table key: shell command run by the reboot step after the state changes (a real
// reboot on a real device, e.g. "systemctl reboot"); absent = simulate only.
inline constexpr char kRebootCommandKey[] = "agent.reboot_command";
// settings-table key: SHA-256 (hex) of the last report queued in the outbox.
inline constexpr char kLastReportHashKey[] = "agent.last_report_sha256";

struct SyncOptions {
  bool server_initiated = false;  // Alert 1200 instead of 1201
  std::chrono::milliseconds step_timeout{30'000};
  transport::RetryOptions retry;
  std::function<void(std::chrono::milliseconds)> sleep;  // null: really sleep (tests inject)
  // Resume the TLS session of the previous session (kept in memory by the caller: the
  // simulator); null: a full handshake.
  transport::TlsResumption* tls_resumption = nullptr;
  // 1226 alerts sent in this session only, after the outbox's (unenrollment's
  // com.microsoft:mdm.unenrollment.userrequest).
  std::vector<GenericAlert> extra_alerts;
  // A server cannot keep a session going forever: past either cap the session ends with an
  // error (and the daemon's backoff).
  int max_messages = 100;
  std::chrono::seconds max_duration{600};
};

inline constexpr char kUnenrollAlertType[] = "com.microsoft:mdm.unenrollment.userrequest";

struct SyncResult {
  std::string session_id;
  int messages_sent = 0;
  int commands_received = 0;  // server commands executed (all messages)
  int commands_failed = 0;    // of which non-2xx
  int alerts_delivered = 0;
  bool reboot_performed = false;
  bool tls_resumed = false;  // the connection resumed options.tls_resumption's session
};

// Adds the current report to the outbox when it differs from the last one queued, and only
// when the server subscribed to it (csp::kComplianceAlertUri is 1); otherwise nothing.
Status QueueReportIfChanged(Device& device);

Result<SyncResult> RunSession(Device& device, const SyncOptions& options = {});

// One last session carrying Alert 1226 kUnenrollAlertType (as Windows sends it), then
// RemoveEnrollment. When that session fails the enrollment stays, unless `force`.
Status Unenroll(Device& device, SyncOptions options = {}, bool force = false);

struct RebootResult {
  int64_t boot_count = 0;
  int applied = 0;  // settings that were waiting for the reboot
  bool hook_ran = false;
  int hook_exit_code = 0;
};
// The device's reboot step: settings pending a reboot take effect, the boot is recorded,
// pending RebootNow requests are done, and the configured reboot command (if any) runs.
Result<RebootResult> PerformRebootStep(Device& device);

}  // namespace dm::agent
