#include "agent/runtime/sync.h"

#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "agent/runtime/enrollment.h"
#include "agent/runtime/outbox.h"
#include "agent/runtime/user_tokens.h"
#include "agent/session/session.h"
#include "agent/transport/https_client.h"
#include "agent/transport/omadm_headers.h"
#include "base/ascii.h"
#include "base/log_fields.h"
#include "csp/device_facts.h"
#include "csp/dmagent_csp.h"
#include "csp/reboot.h"

namespace dm::agent {
Status QueueReportIfChanged(Device& device) {
  DM_RETURN_IF_ERROR(device.policy().Evaluate());
  // Real servers (Fleet, Intune) take any 1226 for an unenrollment: only a server that asked
  // for the report through Subscriptions/ComplianceAlert gets it.
  DM_ASSIGN_OR_RETURN(bool subscribed, csp::ComplianceAlertSubscribed(device.db()));
  if (!subscribed) return Status::Ok();
  DM_ASSIGN_OR_RETURN(std::string xml, device.policy().ReportXml());
  DM_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256(std::span<const uint8_t>(
                                        reinterpret_cast<const uint8_t*>(xml.data()), xml.size())));
  std::string hash = crypto::HexEncode(digest);
  DM_ASSIGN_OR_RETURN(auto last, device.Setting(kLastReportHashKey));
  if (last && *last == hash) return Status::Ok();
  Outbox outbox(device.db(), device.clock());
  DM_ASSIGN_OR_RETURN(auto tx, device.db().Begin());
  DM_RETURN_IF_ERROR(outbox
                         .EnqueueLatest({.type = kReportAlertType,
                                         .format = "xml",
                                         .mark = std::nullopt,
                                         .source = "./Vendor/MSFT/DMAgent/Report",
                                         .data = xml})
                         .status());
  DM_RETURN_IF_ERROR(device.SetSetting(kLastReportHashKey, hash));
  return tx.Commit();
}

namespace {
// RespURI may move the session to another path of the management server, never to another
// host: the next message carries the device's certificate and answers.
Status CheckRespUri(const std::string& management_url, const std::string& resp_uri) {
  if (resp_uri.empty() || resp_uri.front() == '/') return Status::Ok();
  auto to = transport::ParseHttpsUrl(resp_uri);
  auto from = transport::ParseHttpsUrl(management_url);
  if (to.ok() && from.ok() && AsciiEqualsIgnoreCase(to->host, from->host) &&
      to->port == from->port) {
    return Status::Ok();
  }
  spdlog::warn("refusing RespURI {}: the session belongs to {}", resp_uri, management_url);
  return PermissionDenied("the server's RespURI " + resp_uri + " leaves the management server " +
                          management_url);
}
}  // namespace

Result<SyncResult> RunSession(Device& device, const SyncOptions& options) {
  DM_ASSIGN_OR_RETURN(EnrollmentState enrollment, LoadEnrollment(device.db()));
  if (!enrollment.enrolled()) {
    return FailedPrecondition("the device is not enrolled: run `dmagent enroll` first");
  }
  DM_RETURN_IF_ERROR(QueueReportIfChanged(device));
  // Every record of the session names the device, the server and (once known) the session.
  DM_ASSIGN_OR_RETURN(std::string dev_id, csp::DeviceId(device.db()));
  LogField device_field("device_id", dev_id);
  LogField server_field("server", enrollment.management_url);
  std::optional<LogField> session_field;

  Outbox outbox(device.db(), device.clock());
  DM_ASSIGN_OR_RETURN(std::vector<OutboxEntry> pending, outbox.Pending());
  // A report queued while subscribed waits (not sent) if the server unsubscribed since.
  DM_ASSIGN_OR_RETURN(bool subscribed, csp::ComplianceAlertSubscribed(device.db()));
  if (!subscribed) {
    std::erase_if(pending, [](const OutboxEntry& e) { return e.alert.type == kReportAlertType; });
  }
  DM_ASSIGN_OR_RETURN(std::string user, device.SignedInUser());

  SessionStart start;
  start.server_initiated = options.server_initiated;
  start.login_status = user.empty() ? "none" : "user";
  start.user = user;
  // The server learns whose user-targeted settings to send from this event: the user's token
  // (as Windows sends the user's Entra token), never a bare name it would have to believe.
  if (!user.empty()) {
    DM_ASSIGN_OR_RETURN(std::string token, CurrentUserToken(device, user));
    if (!token.empty()) start.client_events.push_back({"com.microsoft/MDM/AADUserToken", token});
  }
  for (const OutboxEntry& e : pending) start.alerts.push_back(e.alert);
  for (const GenericAlert& a : options.extra_alerts) start.alerts.push_back(a);

  DM_ASSIGN_OR_RETURN(
      transport::HttpsClientOptions http,
      ServiceClientOptions(device.db(), device.state_dir(), enrollment, enrollment.management_url));
  http.step_timeout = options.step_timeout;
  http.retry = options.retry;
  http.sleep = options.sleep;
  http.clock = &device.clock();
  http.resumption = options.tls_resumption;
  DM_ASSIGN_OR_RETURN(auto client, transport::HttpsClient::Create(std::move(http)));

  SessionOptions so;
  so.server_url = enrollment.management_url;
  Session session(device.tree(), device.db(), so);
  transport::OmaDmHeaders headers;
  SyncResult result;

  // Whatever happens below, the alerts the server acknowledged leave the outbox and the rest
  // stay for the next session.
  auto settle_alerts = [&]() -> Status {
    const auto& statuses = session.generic_alert_statuses();
    for (size_t i = 0; i < pending.size(); ++i) {
      std::optional<int> code = i < statuses.size() ? statuses[i] : std::nullopt;
      if (code && *code >= 200 && *code < 300) {
        DM_RETURN_IF_ERROR(outbox.Acknowledge(pending[i].id));
        ++result.alerts_delivered;
      } else {
        DM_RETURN_IF_ERROR(outbox.MarkAttempted(pending[i].id));
      }
    }
    return Status::Ok();
  };

  auto exchange = [&]() -> Status {
    DM_ASSIGN_OR_RETURN(std::string message, session.Start(start));
    result.session_id = session.session_id();
    session_field.emplace("session_id", result.session_id);
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
      std::string target = session.resp_uri().value_or("");
      DM_RETURN_IF_ERROR(CheckRespUri(enrollment.management_url, target));
      if (result.messages_sent >= options.max_messages) {
        return Unavailable("the server kept the session going past " +
                           std::to_string(options.max_messages) + " messages");
      }
      if (std::chrono::steady_clock::now() - started > options.max_duration) {
        return Unavailable("the server kept the session going past " +
                           std::to_string(options.max_duration.count()) + " s");
      }
      ++result.messages_sent;
      DM_ASSIGN_OR_RETURN(
          transport::HttpResponse resp,
          client->Post(target, message, transport::kSyncMlXml, headers.NextMessage()));
      if (resp.status != 200) {
        return transport::HttpStatusToStatus(resp).WithContext("management server answered HTTP " +
                                                               std::to_string(resp.status));
      }
      if (resp.body.empty()) {
        // Fleet's poc server answers a message that leaves it nothing to say with an empty
        // 200: the session is over.
        spdlog::info("session {}: the server answered with an empty body; session over",
                     session.session_id());
        break;
      }
      DM_ASSIGN_OR_RETURN(std::optional<std::string> next, session.Process(resp.body));
      for (const CommandOutcome& o : session.last_outcomes()) {
        ++result.commands_received;
        if (o.code < 200 || o.code >= 300) {
          ++result.commands_failed;
          spdlog::warn("{} {} {} -> {}{}{}", o.cmd, o.cmd_id, o.uri, o.code,
                       o.reason.empty() ? "" : ": ", o.reason);
        }
      }
      if (!next) break;
      message = std::move(*next);
    }
    return Status::Ok();
  };

  Status st = exchange();
  result.tls_resumed = client->connections_resumed() > 0;
  Status settled = settle_alerts();
  client->Close();
  if (!st.ok()) {
    spdlog::warn("session {} failed: {}", result.session_id, st.ToString());
    return st;
  }
  DM_RETURN_IF_ERROR(settled);

  // RebootNow received in this session, or a Reboot CSP schedule that came due.
  DM_ASSIGN_OR_RETURN(auto due, csp::RebootDueAt(device.db(), device.clock().Now()));
  if (due) {
    spdlog::info("reboot due ({}); performing the reboot step", csp::RebootCauseName(due->cause));
    DM_RETURN_IF_ERROR(PerformRebootStep(device).status());
    result.reboot_performed = true;
  }
  spdlog::info(
      "session {} done: {} message(s) sent, {} command(s), {} failed, {} alert(s) "
      "delivered",
      result.session_id, result.messages_sent, result.commands_received, result.commands_failed,
      result.alerts_delivered);
  return result;
}

Result<RebootResult> PerformRebootStep(Device& device) {
  RebootResult r;
  DM_ASSIGN_OR_RETURN(auto pending, device.policy().PendingReboot());
  r.applied = static_cast<int>(pending.size());
  {
    DM_ASSIGN_OR_RETURN(auto tx, device.db().Begin());
    DM_RETURN_IF_ERROR(device.policy().CompleteReboot());
    DM_RETURN_IF_ERROR(csp::MarkRebootPerformed(device.db(), device.clock().Now()));
    DM_RETURN_IF_ERROR(tx.Commit());
  }
  DM_ASSIGN_OR_RETURN(policy::BootRecord boot, device.policy().LastBoot());
  r.boot_count = boot.count;
  DM_ASSIGN_OR_RETURN(auto command, device.Setting(kRebootCommandKey));
  if (command && !command->empty()) {
    spdlog::info("reboot step: running the configured reboot command");
    int rc = std::system(command->c_str());
    r.hook_ran = true;
    r.hook_exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (r.hook_exit_code != 0) {
      return Internal("the reboot command exited with " + std::to_string(r.hook_exit_code) +
                      " (the state change is recorded; the device was not restarted)");
    }
  }
  return r;
}

Status Unenroll(Device& device, SyncOptions options, bool force) {
  options.extra_alerts.push_back({.type = kUnenrollAlertType,
                                  .format = "int",
                                  .mark = std::nullopt,
                                  .source = std::nullopt,
                                  .data = "1"});
  auto session = RunSession(device, options);
  if (!session.ok()) {
    if (!force) {
      return session.status().WithContext(
          "the server was not told of the unenrollment (use --force to remove it anyway)");
    }
    spdlog::warn("unenrolling without telling the server: {}", session.status().ToString());
  }
  return RemoveEnrollment(device);
}

}  // namespace dm::agent
