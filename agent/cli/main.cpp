// dmagent: the device agent's command line. Each subcommand opens the device's state (one
// SQLite database in the state directory), does one thing and exits; `run` is the daemon.
// Secrets (PINs, passwords, one-time codes) are read from standard input or a terminal
// prompt, never from arguments.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/cli/key_signin.h"
#include "agent/cli/secret_input.h"
#include "agent/cli/views.h"
#include "agent/runtime/daemon.h"
#include "agent/runtime/device.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/hello_issuer.h"
#include "agent/runtime/pin_reset_client.h"
#include "agent/runtime/sync.h"
#include "agent/runtime/user_tokens.h"
#include "agent/session/session.h"
#include "agent/simulate/simulator.h"
#include "base/cli.h"
#include "base/exit_code.h"
#include "base/json_output.h"
#include "base/log.h"
#include "container/security_key.h"
#include "csp/device_facts.h"
#include "storage/state_dir.h"

namespace dm::agent::cli {
namespace {

using Json = nlohmann::ordered_json;

struct Globals {
  std::string state_dir;
  LogOptions log;
  int pin_kdf_log2 = 15;
};

Result<std::string> ReadFile(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

#ifdef DMAGENT_ALLOW_WEAK_KDF
constexpr bool kAllowWeakKdf = true;
#else
constexpr bool kAllowWeakKdf = false;
#endif

// `existing_only`: for the read-only commands, which must not set up a device that is not there.
Result<std::unique_ptr<Device>> OpenDevice(const Globals& g, bool existing_only = false) {
  DM_RETURN_IF_ERROR(ValidatePinKdfCost(g.pin_kdf_log2, kAllowWeakKdf));
  DeviceOptions o;
  o.existing_only = existing_only;
  o.state_dir =
      storage::ResolveStateDir(g.state_dir.empty() ? std::nullopt : std::optional(g.state_dir));
  o.pin_kdf.n = uint64_t{1} << g.pin_kdf_log2;
  o.make_issuer = MakeHelloIssuer;
  return Device::Open(std::move(o));
}

void PrintJsonOrText(bool json, const Json& j, const std::string& text) {
  if (json) {
    std::cout << JsonDocument(j).dump(2) << "\n";
  } else {
    std::cout << text;
  }
}

std::string UserOrSignedIn(Device& device, const std::string& user) {
  if (!user.empty()) return user;
  auto signed_in = device.SignedInUser();
  return signed_in.ok() ? *signed_in : "";
}

// ---- exec ------------------------------------------------------------------------------------

Status Exec(Device& device, const std::string& file, const std::string& user) {
  DM_ASSIGN_OR_RETURN(std::string message, ReadFile(file));
  std::string who = UserOrSignedIn(device, user);
  SessionOptions so;
  Session session(device.tree(), device.db(), so);
  session.SetUser(who);
  DM_ASSIGN_OR_RETURN(std::optional<std::string> response, session.Process(message));
  for (const CommandOutcome& o : session.last_outcomes()) {
    spdlog::info("{} {} {} -> {}{}{}", o.cmd, o.cmd_id, o.uri, o.code, o.reason.empty() ? "" : ": ",
                 o.reason);
  }
  if (response) std::cout << *response << (response->ends_with('\n') ? "" : "\n");
  return Status::Ok();
}

// ---- sign-in and PIN -----------------------------------------------------------------------

Status SignIn(Device& device, const std::string& user) {
  DM_ASSIGN_OR_RETURN(container::ContainerInfo info, device.containers().Info(user));
  // With a server that issues user tokens, the sign-in also proves the user to it: only then
  // does it send the user's settings.
  DM_ASSIGN_OR_RETURN(bool server_sign_in, UserTokensOffered(device.db()));
  if (info.exists) {
    // The PIN first: a wrong one signs nobody in (the next session would tell the server so).
    DM_ASSIGN_OR_RETURN(SecretBytes pin, ReadSecretLine("PIN"));
    DM_ASSIGN_OR_RETURN(container::UnlockResult r, device.containers().Unlock(user, pin));
    if (server_sign_in) {
      // Like a cached Windows sign-in, the device signs in while the server cannot be reached
      // or refuses the Hello key; the user's settings then wait for a sign-in it accepts.
      if (Status s = SignInWithHelloKey(device, user, pin); !s.ok()) {
        std::cerr << "warning: the server did not sign " << user << " in: " << s.message() << "\n";
      }
    }
    DM_RETURN_IF_ERROR(device.policy().OnSignIn(user));
    DM_RETURN_IF_ERROR(device.SetSignedInUser(user));
    std::cout << user << " signed in with Windows Hello PIN\n";
    if (r.must_change_pin) std::cout << "You must change your PIN: " << r.reason << "\n";
  } else {
    // No container: the account sign-in (password and verification code, at the server when
    // it has a token service); settings waiting for it apply before Hello is set up.
    if (server_sign_in) {
      DM_ASSIGN_OR_RETURN(SecretBytes password, ReadSecretLine("Password"));
      DM_ASSIGN_OR_RETURN(SecretBytes otp, ReadSecretLine("Verification code"));
      DM_RETURN_IF_ERROR(SignInWithPassword(device, user, password, otp));
    }
    DM_RETURN_IF_ERROR(device.policy().OnSignIn(user));
    DM_RETURN_IF_ERROR(device.SetSignedInUser(user));
    DM_ASSIGN_OR_RETURN(auto applied, device.containers().GetAppliedPolicy(user));
    if (!applied.hello_enabled) {
      std::cout << user
                << " signed in; Windows Hello for Business is turned off by policy, "
                   "no PIN is set up\n";
    } else {
      std::cout << "Set up a Windows Hello PIN for " << user << "\n";
      DM_ASSIGN_OR_RETURN(SecretBytes pin, ReadNewSecret("New PIN"));
      DM_ASSIGN_OR_RETURN(container::ContainerInfo made, device.containers().Provision(user, pin));
      std::cout << user << " signed in; Windows Hello provisioned: key " << made.ngc_key_id
                << ", certificate " << made.thumbprint << "\n";
    }
  }
  DM_RETURN_IF_ERROR(device.policy().Evaluate());
  DM_ASSIGN_OR_RETURN(policy::RecoveryState rec, device.policy().Recovery(user));
  std::cout << "CanReset: " << policy::CanResetName(rec.can_reset)
            << (rec.reason.empty() ? "" : " (" + rec.reason + ")") << "\n";
  return Status::Ok();
}

Status ChangePin(Device& device, const std::string& user) {
  DM_ASSIGN_OR_RETURN(SecretBytes old_pin, ReadSecretLine("Current PIN"));
  DM_ASSIGN_OR_RETURN(SecretBytes new_pin, ReadNewSecret("New PIN"));
  DM_RETURN_IF_ERROR(device.containers().ChangePin(user, old_pin, new_pin));
  DM_RETURN_IF_ERROR(device.policy().Evaluate());
  std::cout << "PIN changed for " << user << "\n";
  return Status::Ok();
}

Status ResetPin(Device& device, const std::string& user, bool force_destructive) {
  DM_ASSIGN_OR_RETURN(policy::RecoveryState rec, device.policy().Recovery(user));
  const bool can_non_destructive = rec.can_reset == policy::CanReset::kNonDestructiveOnly ||
                                   rec.can_reset == policy::CanReset::kDestructiveAndNonDestructive;
  if (force_destructive && rec.can_reset == policy::CanReset::kNonDestructiveOnly) {
    return FailedPrecondition("destructive reset is not available on this device (" + rec.reason +
                              "); reset without --destructive");
  }
  const bool non_destructive = can_non_destructive && !force_destructive;
  DM_ASSIGN_OR_RETURN(auto service, RemotePinResetService::Connect(device));
  std::cout << (non_destructive
                    ? "Non-destructive PIN reset: your keys and certificates are kept.\n"
                    : "Destructive PIN reset: the keys and certificates in your Windows Hello "
                      "container will be deleted and new ones created.\n");
  std::cout << "Verify your identity (password and authenticator code).\n";
  container::ResetCredentials creds;
  DM_ASSIGN_OR_RETURN(creds.password, ReadSecretLine("Password"));
  DM_ASSIGN_OR_RETURN(SecretBytes otp, ReadSecretLine("Authenticator code"));
  creds.otp_code = std::string(otp.view());
  DM_ASSIGN_OR_RETURN(SecretBytes new_pin, ReadNewSecret("New PIN"));
  if (non_destructive) {
    DM_RETURN_IF_ERROR(device.containers().ResetPinNonDestructive(user, *service, creds, new_pin));
  } else {
    DM_RETURN_IF_ERROR(
        device.containers().ResetPinDestructive(user, *service, creds, new_pin).status());
  }
  DM_RETURN_IF_ERROR(device.policy().Evaluate());
  DM_ASSIGN_OR_RETURN(container::ContainerInfo info, device.containers().Info(user));
  std::cout << (non_destructive ? "non-destructive" : "destructive") << " reset done for " << user
            << ": certificate " << info.thumbprint << " valid " << FormatUtc(info.not_before)
            << " -- " << FormatUtc(info.not_after) << "\n";
  return Status::Ok();
}

// ---- local admin source and device facts ----------------------------------------------------

policy::Target MakeTarget(const std::string& setting, const std::string& user) {
  return {.scope = user.empty() ? policy::Scope::kDevice : policy::Scope::kUser,
          .user = user,
          .setting = setting};
}

// ---- security keys ---------------------------------------------------------------------------

Json KeyJson(const container::SecurityKeyInfo& k) {
  return Json{{"key_id", k.key_id},
              {"label", k.label},
              {"pin_set", k.pin_set},
              {"pin_retries", k.pin_retries},
              {"blocked", std::string(container::PinBlockStateName(k.blocked))},
              {"min_pin_length", k.min_pin_length},
              {"force_pin_change", k.force_pin_change},
              {"credentials", k.credential_count},
              {"last_reset", k.last_reset_at ? Json(FormatUtc(*k.last_reset_at)) : Json(nullptr)}};
}

int Fail(const Status& s) {
  std::cerr << "dmagent: " << s.message() << "\n";
  return ExitCodeFor(s);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{
      "dmagent: an OMA-DM (MS-MDM) device agent with Windows Hello-style credential "
      "containers"};
  ConfigureCli(app, "dmagent", "/etc/dmagent/dmagent.conf");
  app.require_subcommand(1);
  Globals g;
  // Flags, then the environment, then the configuration file, then these defaults.
  app.add_option("--state-dir", g.state_dir,
                 "state directory ($DMAGENT_STATE_DIR; default /var/lib/dmagent)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  AddLoggingOptions(app, g.log, "DMAGENT_LOG_LEVEL");
  app.add_option("--pin-kdf-cost", g.pin_kdf_log2,
                 "log2 of the scrypt cost for new PINs (default 15; tests use 10)")
      ->group("");

  std::function<Status(Device&)> action;
  // Commands that work on something other than the state directory's device (simulate).
  std::function<Status()> standalone;
  auto on = [&](CLI::App* sub, std::function<Status(Device&)> f) {
    sub->callback([&action, f] { action = f; });
  };
  // Read-only commands (status, container show, key list): they report on an existing state
  // directory and never create one.
  bool read_only = false;
  auto on_read_only = [&](CLI::App* sub, std::function<Status(Device&)> f) {
    sub->callback([&action, &read_only, f] {
      action = f;
      read_only = true;
    });
  };
  // Set by sync and run when the device has no enrollment: kExitNotEnrolled, which the
  // systemd unit does not restart on.
  bool not_enrolled = false;
  auto require_enrolled = [&not_enrolled](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(EnrollmentState state, LoadEnrollment(d.db()));
    if (state.enrolled()) return Status::Ok();
    not_enrolled = true;
    return FailedPrecondition("the device is not enrolled: run `dmagent enroll` first");
  };

  // exec
  std::string exec_file = "-", exec_user;
  auto* exec = app.add_subcommand(
      "exec", "process one server SyncML message locally and print the client's response");
  exec->add_option("file", exec_file, "the message (default - = standard input)");
  exec->add_option("--user", exec_user, "user that ./User/... addresses (default: signed in)");
  on(exec, [&](Device& d) { return Exec(d, exec_file, exec_user); });

  // signin / signout
  std::string user;
  auto* signin = app.add_subcommand(
      "signin", "sign a user in: provisions Windows Hello (new PIN) or unlocks it (PIN on stdin)");
  signin->add_option("--user", user, "user name (UPN)")->required();
  on(signin, [&](Device& d) { return SignIn(d, user); });
  auto* signout = app.add_subcommand("signout", "sign the current user out");
  on(signout, [&](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(std::string current, d.SignedInUser());
    if (!current.empty()) DM_RETURN_IF_ERROR(ForgetUserTokens(d.db(), current));
    return d.SetSignedInUser("");
  });

  // pin
  auto* pin = app.add_subcommand("pin", "change or reset a Windows Hello PIN");
  pin->require_subcommand(1);
  auto* pin_change = pin->add_subcommand("change", "change the PIN (current, then new, on stdin)");
  pin_change->add_option("--user", user)->required();
  on(pin_change, [&](Device& d) { return ChangePin(d, user); });
  bool destructive = false;
  auto* pin_reset = pin->add_subcommand(
      "reset",
      "forgotten PIN: non-destructive when CanReset allows it (password, code, new PIN on stdin)");
  pin_reset->add_option("--user", user)->required();
  pin_reset->add_flag("--destructive", destructive,
                      "delete the container's keys and certificates and start over");
  on(pin_reset, [&](Device& d) { return ResetPin(d, user, destructive); });

  // container show
  bool json = false;
  auto* container = app.add_subcommand("container", "inspect a user's Hello container");
  container->require_subcommand(1);
  auto* show = container->add_subcommand("show",
                                         "key id, certificate thumbprint and dates, "
                                         "protector present");
  show->add_option("--user", user)->required();
  show->add_flag("--json", json);
  on_read_only(show, [&](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(Json j, ContainerJson(d, user));
    PrintJsonOrText(json, j, ContainerText(j));
    return Status::Ok();
  });

  // status
  auto* status = app.add_subcommand("status",
                                    "dsregcmd /status-like device, user and policy "
                                    "state");
  status->add_option("--user", user, "only this user");
  status->add_flag("--json", json);
  on_read_only(status, [&](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(Json j, StatusJson(d, user.empty() ? std::nullopt : std::optional(user)));
    PrintJsonOrText(json, j, StatusText(j));
    return Status::Ok();
  });

  // reboot
  auto* reboot = app.add_subcommand(
      "reboot", "the device's reboot step: settings waiting for a reboot take effect");
  on(reboot, [&](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(RebootResult r, PerformRebootStep(d));
    std::cout << "reboot step done (boot " << r.boot_count << "): " << r.applied
              << " setting(s) took effect" << (r.hook_ran ? "; reboot command ran" : "") << "\n";
    return Status::Ok();
  });

  // enroll
  std::string email, discovery_url, auth, enroll_type = "Full", ca_file, token_file, mgmt_url,
                                          cert_file, key_file, reset_url, reset_key;
  auto* enroll = app.add_subcommand(
      "enroll", "enroll with an MS-MDM server (Windows enrollment, MS-MDE2), or out of band");
  enroll->add_option("--email", email,
                     "the enrolling user's UPN; Discovery starts at "
                     "https://enterpriseenrollment.<domain>/EnrollmentServer/Discovery.svc");
  enroll->add_option("--discovery-url", discovery_url, "the Discovery URL, instead of the guess");
  enroll
      ->add_option("--auth", auth,
                   "onprem (password), federated (IdP sign-in) or token; "
                   "default: as the server's AuthPolicy says")
      ->check(CLI::IsMember({"onprem", "federated", "token"}));
  enroll->add_option("--token-file", token_file,
                     "file holding an enrollment token (a user token or the tenant's bulk token; "
                     "- = stdin); a file, not an argument, so other local users cannot read it");
  enroll->add_option("--type", enroll_type, "Full (a user's device) or Device (no user)")
      ->check(CLI::IsMember({"Full", "Device"}));
  enroll->add_option("--ca", ca_file,
                     "CA bundle (PEM) to trust for the enrollment server "
                     "(default: the system store)");
  enroll->add_option("--management-url", mgmt_url, "out of band: the OMA-DM management URL");
  enroll->add_option("--cert", cert_file, "out of band: device certificate (PEM)");
  enroll->add_option("--key", key_file, "out of band: device private key (PEM)");
  enroll->add_option("--pin-reset-url", reset_url, "out of band: PIN reset service recover URL");
  enroll->add_option("--pin-reset-key", reset_key, "out of band: PIN reset service public key");
  on(enroll, [&](Device& d) -> Status {
    std::string ca;
    if (!ca_file.empty()) {
      DM_ASSIGN_OR_RETURN(ca, ReadFile(ca_file));
    }
    if (!email.empty()) {
      MsMde2EnrollRequest r;
      r.email = email;
      r.discovery_url = discovery_url;
      r.ca_bundle_pem = ca;
      r.auth = auth;
      r.enrollment_type = enroll_type;
      if (!token_file.empty()) {
        if (r.auth.empty()) r.auth = "token";
        DM_ASSIGN_OR_RETURN(std::string token, ReadFile(token_file));
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
        if (token.empty()) return InvalidArgument("the token file is empty");
        r.token = SecretBytes(std::string_view(token));
        std::fill(token.begin(), token.end(), '\0');
      } else if (r.auth == "token") {
        return InvalidArgument("--auth token needs --token-file");
      }
      // Password and one-time code: stdin, or a prompt on a terminal, when the flow needs them.
      r.ask_secret = [](std::string_view what) { return ReadSecretLine(what); };
      DM_RETURN_IF_ERROR(EnrollMsMde2(d, r));
    } else if (!mgmt_url.empty()) {
      if (ca.empty() || cert_file.empty() || key_file.empty()) {
        return InvalidArgument("--management-url needs --ca, --cert and --key");
      }
      OutOfBandEnrollment e;
      e.management_url = mgmt_url;
      e.ca_pem = ca;
      DM_ASSIGN_OR_RETURN(e.device_cert_pem, ReadFile(cert_file));
      DM_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(key_file));
      e.device_key_pem = SecretBytes(std::string_view(key_pem));
      std::fill(key_pem.begin(), key_pem.end(), '\0');
      e.pin_reset_url = reset_url;
      if (!reset_key.empty()) {
        DM_ASSIGN_OR_RETURN(e.pin_reset_public_key_pem, ReadFile(reset_key));
      }
      DM_RETURN_IF_ERROR(EnrollOutOfBand(d, e));
    } else {
      return InvalidArgument(
          "give --email (MS-MDE2 enrollment), or --management-url with --ca, --cert and --key "
          "(out of band)");
    }
    DM_ASSIGN_OR_RETURN(EnrollmentState s, LoadEnrollment(d.db()));
    std::cout << "enrolled; management server " << s.management_url
              << (s.provider_id.empty() ? "" : ", provider " + s.provider_id) << "\n";
    return Status::Ok();
  });

  // unenroll
  bool unenroll_force = false;
  auto* unenroll = app.add_subcommand(
      "unenroll",
      "tell the server (Alert 1226 unenrollment) and forget the enrollment; users' "
      "containers stay");
  unenroll->add_flag("--force", unenroll_force,
                     "forget the enrollment even when the server cannot be told");
  on(unenroll, [&](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(EnrollmentState s, LoadEnrollment(d.db()));
    if (!s.enrolled()) return FailedPrecondition("the device is not enrolled");
    DM_RETURN_IF_ERROR(Unenroll(d, {}, unenroll_force));
    std::cout << "unenrolled from " << s.management_url << "\n";
    return Status::Ok();
  });

  // sync / run
  bool server_initiated = false;
  auto* sync = app.add_subcommand("sync", "run one OMA-DM session with the management server");
  sync->add_flag("--server-initiated", server_initiated, "as after a push (Alert 1200)");
  on(sync, [&](Device& d) -> Status {
    DM_RETURN_IF_ERROR(require_enrolled(d));
    SyncOptions so;
    so.server_initiated = server_initiated;
    DM_ASSIGN_OR_RETURN(SyncResult r, RunSession(d, so));
    std::cout << "session " << r.session_id << ": " << r.commands_received << " command(s), "
              << r.commands_failed << " failed, " << r.alerts_delivered << " report(s) delivered"
              << (r.reboot_performed ? ", reboot step performed" : "") << "\n";
    return Status::Ok();
  });
  DaemonOptions daemon;
  auto* run = app.add_subcommand("run", "the daemon: poll on the DMClient schedule until SIGTERM");
  run->add_option("--max-sessions", daemon.max_sessions,
                  "stop after this many sessions (0 = no "
                  "limit)");
  run->add_option("--poll-seconds", daemon.poll_override_seconds,
                  "poll interval override in seconds (default: the DMClient schedule)");
  // The daemon opens the device only in each session's child process (daemon.h).
  // Not enrolled, before the loop or after the server unenrolled the device: kExitNotEnrolled.
  auto check_enrolled = [&]() -> Status {
    DM_ASSIGN_OR_RETURN(std::unique_ptr<Device> d, OpenDevice(g));
    return require_enrolled(*d);
  };
  // SIGHUP: the command line, environment and configuration file parsed again (below).
  std::function<Result<DaemonOptions>()> reload_config;
  run->callback([&] {
    if (standalone) return;  // parsed again for a reload: the daemon is running already
    standalone = [&]() -> Status {
      DM_RETURN_IF_ERROR(check_enrolled());
      Status s = RunDaemon([&] { return OpenDevice(g); }, daemon, reload_config);
      if (!s.ok()) (void)check_enrolled();  // sets not_enrolled if the server unenrolled us
      return s;
    };
  });

  // simulate
  SimulateOptions sim;
  std::string sim_credentials_file, sim_ca_file, sim_fleet;
  double sim_interval = 60, sim_duration = 60;
  bool sim_json = false;
  auto* simulate = app.add_subcommand(
      "simulate", "a fleet of virtual devices checking in with a server (load testing)");
  simulate
      ->add_option("--discovery-url", sim.discovery_url,
                   "the server's MS-MDE2 Discovery URL (.../EnrollmentServer/Discovery.svc)")
      ->required();
  simulate->add_option("--auth", sim.auth, "how devices enroll: token (default), onprem, federated")
      ->check(CLI::IsMember({"onprem", "federated", "token"}));
  simulate
      ->add_option("--credentials-file", sim_credentials_file,
                   "token: the bulk token on the first line; onprem: \"UPN PASSWORD\" per line; "
                   "federated: \"UPN PASSWORD TOTP-SECRET-BASE32\" per line")
      ->required();
  simulate->add_option("--ca", sim_ca_file, "CA bundle (PEM) to trust for the server");
  simulate->add_option("--devices", sim.devices, "number of virtual devices")
      ->check(CLI::Range(1, 1'000'000));
  simulate->add_option("--interval", sim_interval, "seconds between a device's check-ins")
      ->check(CLI::Range(0.001, 86400.0));
  simulate->add_option("--duration", sim_duration, "seconds to run the check-ins")
      ->check(CLI::Range(0.0, 7.0 * 86400));
  simulate->add_option("--concurrency", sim.concurrency, "sessions in flight at once")
      ->check(CLI::Range(1, 1024));
  simulate
      ->add_option("--fail-share", sim.fail_share,
                   "share of settings each device fails with 500 (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  simulate->add_option("--seed", sim.seed, "seed of check-in offsets and failing settings");
  simulate->add_option("--fleet", sim_fleet, "fleet file (default <state dir>/simulate/fleet.db)");
  simulate->add_flag("--json", sim_json, "print the summary as JSON");
  bool sim_full_handshakes = false;
  simulate->add_flag("--full-handshakes", sim_full_handshakes,
                     "no TLS session resumption: every session does a full handshake");
  simulate->callback([&] {
    standalone = [&]() -> Status {
      // Its own directory under the state directory: the simulated fleet never shares the
      // real device's database or machine key.
      sim.state_dir = storage::ResolveStateDir(g.state_dir.empty() ? std::nullopt
                                                                   : std::optional(g.state_dir)) /
                      "simulate";
      sim.fleet_file = sim_fleet;
      sim.resume_tls = !sim_full_handshakes;
      if (!sim_ca_file.empty()) {
        DM_ASSIGN_OR_RETURN(sim.ca_pem, ReadFile(sim_ca_file));
      }
      DM_ASSIGN_OR_RETURN(std::string creds, ReadFile(sim_credentials_file));
      auto parsed = ParseSimulateCredentials(creds, sim.auth);
      std::fill(creds.begin(), creds.end(), '\0');
      if (!parsed.ok()) return parsed.status().WithContext(sim_credentials_file);
      sim.credentials = std::move(*parsed);
      sim.interval = std::chrono::milliseconds(std::llround(sim_interval * 1000));
      sim.duration = std::chrono::milliseconds(std::llround(sim_duration * 1000));
      // A live line on a terminal that log records do not break; a line per update elsewhere.
      sim.on_progress = [](const std::string& line) { ShowProgress(line); };
      auto report = RunSimulation(sim);
      EndProgress();
      DM_ASSIGN_OR_RETURN(SimulationReport r, std::move(report));
      if (sim_json) {
        std::cout << JsonDocument(SimulationJson(r)).dump(2) << "\n";
      } else {
        std::cout << SimulationTable(r);
      }
      return r.session_errors == 0 && r.enroll_errors == 0
                 ? Status::Ok()
                 : Unavailable(std::to_string(r.session_errors) + " session(s) failed");
    };
  });

  // local admin source
  std::string setting, value;
  auto* local = app.add_subcommand("local", "the local administrator's policy source");
  local->require_subcommand(1);
  auto* local_set = local->add_subcommand("set", "set a setting as local admin");
  local_set->add_option("setting", setting, "catalog name, e.g. PassportForWork/EnablePinRecovery")
      ->required();
  local_set->add_option("value", value)->required();
  local_set->add_option("--user", user, "user scope");
  on(local_set, [&](Device& d) -> Status {
    DM_RETURN_IF_ERROR(d.policy().SetDesired(policy::Source::kLocalAdmin, MakeTarget(setting, user),
                                             value, "dmagent local"));
    return d.policy().Evaluate();
  });
  auto* local_clear = local->add_subcommand("clear", "remove a local admin setting");
  local_clear->add_option("setting", setting)->required();
  local_clear->add_option("--user", user, "user scope");
  on(local_clear, [&](Device& d) -> Status {
    DM_RETURN_IF_ERROR(
        d.policy().ClearDesired(policy::Source::kLocalAdmin, MakeTarget(setting, user)));
    return d.policy().Evaluate();
  });

  // device facts
  std::string join_type, trust_model, tpm, reboot_command;
  auto* device_cmd = app.add_subcommand("device", "describe the device (join type, trust, TPM)");
  device_cmd->require_subcommand(1);
  auto* device_set = device_cmd->add_subcommand("set", "set device facts");
  // IsMember: a value outside the list is refused at parse time, naming the accepted ones.
  device_set->add_option("--join-type", join_type, "how the device is joined")
      ->check(CLI::IsMember({"AzureAdJoined", "HybridAzureAdJoined", "DomainJoined", "NotJoined"}));
  device_set->add_option("--trust-model", trust_model, "Windows Hello for Business trust")
      ->check(CLI::IsMember({"CloudKerberosTrust", "KeyTrust", "CertificateTrust"}));
  device_set->add_option("--tpm", tpm, "whether the device has a TPM")
      ->check(CLI::IsMember({"yes", "no"}));
  device_set->add_option("--reboot-command", reboot_command,
                         "shell command the reboot step runs (\"\" = simulate only)");
  std::string pin_reset_key_file;
  device_set->add_option("--pin-reset-key", pin_reset_key_file,
                         "PIN reset service public key (PEM) for a device managed without "
                         "enrollment; enrollment provisions it otherwise");
  on(device_set, [&](Device& d) -> Status {
    DM_ASSIGN_OR_RETURN(policy::DeviceFacts f, d.policy().Facts());
    if (!join_type.empty()) {
      bool found = false;
      for (auto j : {policy::JoinType::kAzureAdJoined, policy::JoinType::kHybridAzureAdJoined,
                     policy::JoinType::kDomainJoined, policy::JoinType::kNotJoined}) {
        if (policy::JoinTypeName(j) == join_type) f.join_type = j, found = true;
      }
      if (!found) return InvalidArgument("unknown join type " + join_type);
    }
    if (!trust_model.empty()) {
      bool found = false;
      for (auto t : {policy::TrustModel::kCloudKerberosTrust, policy::TrustModel::kKeyTrust,
                     policy::TrustModel::kCertificateTrust}) {
        if (policy::TrustModelName(t) == trust_model) f.trust_model = t, found = true;
      }
      if (!found) return InvalidArgument("unknown trust model " + trust_model);
    }
    if (!tpm.empty()) f.tpm_present = tpm == "yes";
    DM_RETURN_IF_ERROR(d.policy().SetFacts(f));
    if (!pin_reset_key_file.empty()) {
      DM_ASSIGN_OR_RETURN(std::string pem, ReadFile(pin_reset_key_file));
      DM_RETURN_IF_ERROR(d.containers().SetPinResetServiceKey(pem));
    }
    if (device_set->count("--reboot-command") > 0) {
      DM_RETURN_IF_ERROR(reboot_command.empty() ? d.ClearSetting(kRebootCommandKey)
                                                : d.SetSetting(kRebootCommandKey, reboot_command));
    }
    return d.policy().Evaluate();
  });

  // web sign-in
  std::string url;
  auto* web = app.add_subcommand("web-signin", "open a page in web sign-in (allow-list check)");
  web->add_option("url", url)->required();
  on(web, [&](Device& d) -> Status {
    DM_RETURN_IF_ERROR(d.containers().NavigateWebSignIn(url));
    std::cout << "web sign-in may open " << url << "\n";
    return Status::Ok();
  });

  // security keys
  std::string key_id, label = "Security key", rp = "login.microsoftonline.com", uv = "preferred",
                      out_dir;
  auto* key = app.add_subcommand("key", "FIDO2 security keys (software) of a user");
  key->require_subcommand(1);
  auto add_key_opts = [&](CLI::App* s) {
    s->add_option("--user", user)->required();
    s->add_option("--key", key_id, "key id or a unique prefix (default: the user's only key)");
  };
  auto resolve = [&](container::SecurityKeyStore& ks) -> Result<std::string> {
    return ks.ResolveKey(user,
                         key_id.empty() ? std::nullopt : std::optional<std::string_view>(key_id));
  };
  auto* key_list = key->add_subcommand("list", "the user's keys and their PIN state");
  key_list->add_option("--user", user)->required();
  key_list->add_flag("--json", json);
  on_read_only(key_list, [&](Device& d) -> Status {
    auto ks = d.SecurityKeys();
    DM_ASSIGN_OR_RETURN(auto keys, ks.List(user));
    Json arr = Json::array();
    std::ostringstream text;
    for (const auto& k : keys) {
      arr.push_back(KeyJson(k));
      text << k.key_id << "  " << k.label << "  PIN " << (k.pin_set ? "set" : "not set")
           << ", retries " << k.pin_retries << ", " << container::PinBlockStateName(k.blocked)
           << ", minPINLength " << k.min_pin_length << ", " << k.credential_count
           << " credential(s)\n";
    }
    if (keys.empty()) text << "no security keys for " << user << "\n";
    PrintJsonOrText(json, Json{{"user", user}, {"keys", std::move(arr)}}, text.str());
    return Status::Ok();
  });
  auto* key_create = key->add_subcommand("create", "create a software security key");
  key_create->add_option("--user", user)->required();
  key_create->add_option("--label", label);
  on(key_create, [&](Device& d) -> Status {
    auto ks = d.SecurityKeys();
    DM_ASSIGN_OR_RETURN(std::string id, ks.Create(user, label));
    std::cout << id << "\n";
    return Status::Ok();
  });
  auto* key_set_pin = key->add_subcommand("set-pin", "set the key's PIN (new PIN on stdin)");
  add_key_opts(key_set_pin);
  on(key_set_pin, [&](Device& d) -> Status {
    auto ks = d.SecurityKeys();
    DM_ASSIGN_OR_RETURN(std::string id, resolve(ks));
    DM_ASSIGN_OR_RETURN(SecretBytes p, ReadNewSecret("New security key PIN"));
    DM_RETURN_IF_ERROR(ks.SetPin(user, id, p));
    std::cout << "PIN set on " << id << "\n";
    return Status::Ok();
  });
  auto* key_change_pin = key->add_subcommand("change-pin", "change the key's PIN (current, new)");
  add_key_opts(key_change_pin);
  on(key_change_pin, [&](Device& d) -> Status {
    auto ks = d.SecurityKeys();
    DM_ASSIGN_OR_RETURN(std::string id, resolve(ks));
    DM_ASSIGN_OR_RETURN(SecretBytes cur, ReadSecretLine("Current security key PIN"));
    DM_ASSIGN_OR_RETURN(SecretBytes p, ReadNewSecret("New security key PIN"));
    DM_RETURN_IF_ERROR(ks.ChangePin(user, id, cur, p));
    std::cout << "PIN changed on " << id << "\n";
    return Status::Ok();
  });
  bool confirm = false;
  auto* key_reset = key->add_subcommand(
      "reset", "authenticatorReset: wipes EVERY credential on the key (needs --yes)");
  add_key_opts(key_reset);
  key_reset->add_flag("--yes", confirm, "confirm that every credential on the key is destroyed");
  on(key_reset, [&](Device& d) -> Status {
    auto ks = d.SecurityKeys();
    DM_ASSIGN_OR_RETURN(std::string id, resolve(ks));
    std::cerr << container::kSecurityKeyResetWarning << "\n";
    if (!confirm) return FailedPrecondition("not confirmed: run again with --yes to reset");
    DM_RETURN_IF_ERROR(ks.PowerCycle(user, id));  // the user re-inserts the key
    DM_ASSIGN_OR_RETURN(int wiped,
                        ks.Reset(user, id, container::ResetConfirmation::kDestroyAllCredentials));
    std::cout << "security key " << id << " reset: " << wiped << " credential(s) deleted\n";
    return Status::Ok();
  });
  auto* key_power = key->add_subcommand("power-cycle", "simulate unplugging and re-inserting");
  add_key_opts(key_power);
  on(key_power, [&](Device& d) -> Status {
    auto ks = d.SecurityKeys();
    DM_ASSIGN_OR_RETURN(std::string id, resolve(ks));
    return ks.PowerCycle(user, id);
  });
  auto* key_sign = key->add_subcommand(
      "sign-in", "register if needed and sign a WebAuthn assertion (PIN on stdin when asked)");
  add_key_opts(key_sign);
  key_sign->add_option("--rp", rp, "relying party id");
  key_sign->add_option("--uv", uv, "required, preferred or discouraged");
  key_sign->add_option("--out", out_dir,
                       "write pub.pem, data.bin and sig.der here (for "
                       "`openssl dgst -verify`)");
  on(key_sign, [&](Device& d) { return KeySignIn(d, user, key_id, rp, uv, out_dir); });

  static constexpr EnvOption kEnvironment[] = {{"--state-dir", "DMAGENT_STATE_DIR"},
                                               {"--log-level", "DMAGENT_LOG_LEVEL"}};
  try {
    ParseWithEnvironment(app, argc, argv, kEnvironment);
  } catch (const CLI::ParseError& e) {
    return ExitForParseError(app, e, "dmagent");
  }
  if (Status s = InitLogging(g.log); !s.ok()) return Fail(s);
  reload_config = [&]() -> Result<DaemonOptions> {
    // Every bound value back to its default first, so a line deleted from the file takes
    // effect; the state directory stays what the daemon started with.
    const Globals running = g;
    const DaemonOptions running_daemon = daemon;
    g = Globals{};
    daemon = DaemonOptions{};
    Status parsed = Status::Ok();
    try {
      app.clear();
      ParseWithEnvironment(app, argc, argv, kEnvironment);
    } catch (const CLI::ParseError& e) {
      parsed = InvalidArgument(e.what());
    }
    if (parsed.ok() && g.state_dir != running.state_dir) {
      spdlog::warn("state-dir changes take effect at the next start; keeping {}",
                   running.state_dir.empty() ? "the default" : running.state_dir);
      g.state_dir = running.state_dir;
    }
    if (parsed.ok()) parsed = InitLogging(g.log);
    if (!parsed.ok()) {
      g = running;
      daemon = running_daemon;
      return parsed;
    }
    return daemon;
  };
  auto exit_status = [&](const Status& s) -> int {
    if (s.ok()) return kExitOk;
    const int code = Fail(s);
    return not_enrolled ? kExitNotEnrolled : code;
  };
  if (standalone) return exit_status(standalone());
  auto device = OpenDevice(g, read_only);
  if (!device.ok()) return Fail(device.error());
  return exit_status(action ? action(**device) : Status::Ok());
}

}  // namespace dm::agent::cli

int main(int argc, char** argv) { return dm::agent::cli::Main(argc, argv); }
