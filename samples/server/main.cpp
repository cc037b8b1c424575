// dmserver: the reference Intune-like MDM server. `dmserver --help` lists the subcommands.
// Admin subcommands work on the state directory directly (the running server sees the changes
// at the devices' next session); secrets are read from stdin, never from argv.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/cli.h"
#include "base/exit_code.h"
#include "base/json_output.h"
#include "base/log.h"
#include "samples/server/admin.h"
#include "samples/server/backup.h"
#include "samples/server/report.h"
#include "samples/server/server.h"
#include "storage/state_dir.h"

namespace {

using dm::server::ServerOptions;
using nlohmann::json;

// Optional so that `tenant poll` changes only what it is given.
struct PollArgs {
  std::optional<int> first_interval, first_count, second_interval, second_count, remaining_interval;
};

// The token file is created 0600 (never readable by others, not even for an instant), and
// exclusively: an existing file or a symlink planted there is refused, not written through.
// It is created before the token exists, so a refused file never costs a token nobody saw.
class TokenFile {
 public:
  static dm::Result<TokenFile> Create(const std::string& path) {
    TokenFile f;
    f.path_ = path;
    if (path.empty()) return f;
    f.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd_ < 0) {
      return dm::IoError("cannot create " + path + ": " + std::strerror(errno) +
                         (errno == EEXIST ? " (the token file must not exist yet)" : ""));
    }
    return f;
  }
  TokenFile() = default;
  TokenFile(TokenFile&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}
  TokenFile& operator=(TokenFile&&) = delete;
  // Not written (the operation failed): the empty file goes away.
  ~TokenFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(path_.c_str());
    }
  }
  dm::Status Write(const json& token) {
    if (fd_ < 0) return dm::Status::Ok();
    const std::string text = token.get<std::string>() + "\n";
    bool ok = ::write(fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = ::close(std::exchange(fd_, -1)) == 0 && ok;
    return ok ? dm::Status::Ok() : dm::IoError("cannot write " + path_);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

int Fail(const dm::Status& s) {
  std::cerr << "dmserver: " << s.ToString() << "\n";
  return dm::ExitCodeFor(s);
}

// One line from stdin; with a terminal, prompts on stderr and does not echo.
std::string ReadSecretLine(const char* prompt) {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  termios old{};
  if (tty) {
    std::cerr << prompt << std::flush;
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Stored strings can come from devices (reports, DevInfo) and need not be UTF-8: bad bytes are
// printed as U+FFFD rather than aborting the command with an exception.
std::string PrettyJson(const nlohmann::ordered_json& j) {
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Runs an admin operation on the state directory and prints the JSON result.
int Admin(const ServerOptions& options, const std::string& op, const json& args,
          bool print = true) {
  auto store = dm::server::OpenStore(options);
  if (!store.ok()) return Fail(store.error());
  auto result = dm::server::RunAdmin(**store, op, args);
  if (!result.ok()) return Fail(result.error());
  if (print) std::cout << PrettyJson(*result) << "\n";
  return 0;
}

// Written whole then renamed, so a script polling for it never reads half a number.
dm::Status WritePortFile(const std::string& path, uint16_t port) {
  if (path.empty()) return dm::Status::Ok();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return dm::IoError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return dm::IoError("cannot write " + path);
  return dm::Status::Ok();
}

int Serve(ServerOptions options, const std::string& port_file, const std::string& admin_port_file) {
  // Block the stop signals before the server's threads start, so only sigwait sees them.
  // SIGHUP reopens the log file and reloads the TLS certificate (a renewed one from the
  // operator), and serving goes on.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  // One server per state directory; `restore` waits for it to stop.
  if (dm::Status s = dm::storage::PrepareStateDir(options.state_dir); !s.ok()) return Fail(s);
  auto lock = dm::server::StateDirLock::Acquire(options.state_dir);
  if (!lock.ok()) return Fail(lock.error());
  auto server = dm::server::DmServer::Start(options);
  if (!server.ok()) return Fail(server.error());
  // The admin port first: a script that sees the device port may use both.
  if (dm::Status s = WritePortFile(admin_port_file, (*server)->admin_port()); !s.ok()) {
    return Fail(s);
  }
  if (dm::Status s = WritePortFile(port_file, (*server)->port()); !s.ok()) return Fail(s);
  std::cout << "dmserver listening on " << (*server)->BaseUrl() << " (port " << (*server)->port()
            << "); admin API "
            << ((*server)->admin_port() ? "on " + (*server)->AdminBaseUrl() : std::string("off"))
            << std::endl;
  int sig = 0;
  while (sigwait(&stop, &sig) == 0 && sig == SIGHUP) {
    // The log file first (logrotate's postrotate sends SIGHUP), then the TLS material.
    if (dm::Status s = dm::ReopenLogFile(); !s.ok()) {
      std::cerr << "dmserver: cannot reopen the log file: " << s.ToString() << std::endl;
    }
    if (dm::Status s = (*server)->ReloadTls(); !s.ok()) {
      std::cerr << "dmserver: TLS reload failed, keeping the current certificate: " << s.ToString()
                << std::endl;
    }
  }
  std::cout << "dmserver stopping (signal " << sig << ")" << std::endl;
  (*server)->Drain(options.stop_grace);
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dmserver: reference Intune-like MDM server (enrollment, OMA-DM management, "
      "PIN reset service, identity, admin API)"};
  dm::ConfigureCli(app, "dmserver", "/etc/dmserver/dmserver.conf");
  app.require_subcommand(1);
  ServerOptions options;
  std::string state_dir;
  dm::LogOptions log;
  log.program = "dmserver";
  log.level = "info";
  bool test_kdf = false;
  // Flags, then the environment, then the configuration file, then these defaults.
  app.add_option("--state-dir", state_dir, "state directory ($DMSERVER_STATE_DIR)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  dm::AddLoggingOptions(app, log, "DMSERVER_LOG_LEVEL");
  app.add_flag("--test-kdf", test_kdf,
               "cheap scrypt for password verifiers (tests and demos only)");

  auto* init = app.add_subcommand("init",
                                  "create the state directory: CA, PIN reset key, "
                                  "admin token, database");
  init->add_option("--rsa-bits", options.pin_reset_rsa_bits, "PIN reset service key size");

  std::string port_file;
  auto* serve = app.add_subcommand("serve", "run the HTTPS server");
  options.port = dm::server::kDefaultPort;
  options.admin_port = dm::server::kDefaultAdminPort;
  serve->add_option("--listen", options.listen_address, "address to listen on");
  serve->add_option("--port", options.port, "port (0: any free port)");
  serve->add_option("--port-file", port_file, "write the bound port to this file");
  serve->add_option("--public-host", options.public_host,
                    "host name in the URLs handed to devices (default: the listen address)");
  serve->add_option("--idp-host", options.idp_host, "the federated IdP's host name");
  serve->add_option("--enrollment-domain", options.enrollment_domain,
                    "serve enrollment as enterpriseenrollment.<domain> too (where Windows looks "
                    "from a user's UPN)");
  serve->add_option("--name", options.extra_names, "extra subjectAltName for the certificate");
  serve->add_option("--tls-cert", options.tls_cert_file,
                    "the operator's TLS certificate chain (PEM, leaf first) instead of one from "
                    "dmserver's CA");
  serve->add_option("--tls-key", options.tls_key_file, "the key of --tls-cert (PEM)");
  serve->add_option("--threads", options.threads, "server threads");
  serve
      ->add_option("--stop-grace", options.stop_grace,
                   "seconds SIGTERM waits for OMA-DM sessions under way (new ones get 503)")
      ->type_name("SECONDS")
      ->default_str(std::to_string(options.stop_grace.count()));
  std::string admin_port_file;
  bool no_admin_api = false;
  serve->add_option("--admin-address", options.admin_listen_address,
                    "address of the admin API's own listener (default 127.0.0.1)");
  serve->add_option("--admin-port", options.admin_port, "admin API port (0: any free port)");
  serve->add_option("--admin-port-file", admin_port_file,
                    "write the admin listener's bound port to this file");
  serve->add_flag("--no-admin-api", no_admin_api,
                  "no admin listener (the admin subcommands still work on the state directory)");
  serve->add_option("--max-connections", options.max_connections,
                    "connections open at once per listener (0: no limit)");
  serve->add_option("--max-connections-per-address", options.max_connections_per_address,
                    "connections open at once from one address (IPv6: one /64) per listener");

  std::string tenant, name, id, token_file;
  bool federated = false;
  auto* tenant_cmd = app.add_subcommand("tenant", "tenants");
  tenant_cmd->require_subcommand(1);
  auto* tenant_add = tenant_cmd->add_subcommand("add",
                                                "add a tenant; prints its id and "
                                                "enrollment token");
  tenant_add->add_option("name", name, "tenant name")->required();
  tenant_add->add_option("--id", id, "tenant GUID (default: random)");
  tenant_add->add_flag("--federated", federated, "users sign in at the federated IdP");
  tenant_add->add_option("--token-file", token_file,
                         "also write the enrollment token to this file (0600)");
  tenant_cmd->add_subcommand("list", "list tenants");
  int valid_days = 30;
  bool revoke_token = false;
  auto* tenant_token = tenant_cmd->add_subcommand(
      "token", "rotate the bulk enrollment token (the old one stops working), or --revoke it");
  tenant_token->add_option("--tenant", tenant, "tenant id or name");
  tenant_token->add_option("--valid-days", valid_days, "days the new token is valid")
      ->check(CLI::Range(1, 366));
  tenant_token->add_flag("--revoke", revoke_token, "revoke the token; issue none");
  tenant_token->add_option("--token-file", token_file, "write the new token to this file (0600)");
  PollArgs poll;
  auto* tenant_poll = tenant_cmd->add_subcommand(
      "poll", "the DMClient poll schedule new enrollments get (minutes; count 0 = forever)");
  tenant_poll->add_option("--tenant", tenant, "tenant id or name");
  tenant_poll->add_option("--first-interval", poll.first_interval);
  tenant_poll->add_option("--first-count", poll.first_count);
  tenant_poll->add_option("--second-interval", poll.second_interval);
  tenant_poll->add_option("--second-count", poll.second_count);
  tenant_poll->add_option("--remaining-interval", poll.remaining_interval);

  std::string upn;
  auto* user_cmd = app.add_subcommand("user", "directory users");
  user_cmd->require_subcommand(1);
  auto* user_add = user_cmd->add_subcommand(
      "add",
      "add a user; stdin: line 1 the password, line 2 the TOTP secret in base32 (empty or "
      "absent: one is generated and printed)");
  user_add->add_option("upn", upn, "user principal name")->required();
  user_add->add_option("--tenant", tenant, "tenant id or name");
  auto* user_unlock = user_cmd->add_subcommand(
      "unlock", "lift the lock after too many failed sign-ins (and the delays)");
  user_unlock->add_option("upn", upn, "user principal name")->required();

  std::string kind, group, member;
  bool remove = false;
  auto* group_cmd = app.add_subcommand("group", "user and device groups");
  group_cmd->require_subcommand(1);
  auto* group_add = group_cmd->add_subcommand("add", "add a group");
  group_add->add_option("name", name)->required();
  group_add->add_option("--kind", kind, "user or device")->required();
  bool all_members = false;
  group_add->add_flag("--all", all_members,
                      "every device (user) of the tenant is a member, like \"All devices\"");
  group_add->add_option("--tenant", tenant, "tenant id or name");
  auto* group_member = group_cmd->add_subcommand("member",
                                                 "add (or --remove) a member: a UPN "
                                                 "or a DevId");
  group_member->add_option("group", group)->required();
  group_member->add_option("member", member)->required();
  group_member->add_flag("--remove", remove);
  group_member->add_option("--tenant", tenant, "tenant id or name");

  std::string file, format = "chr", type = "text/plain";
  std::vector<std::string> settings;
  bool replace = false, add_verb = false;
  auto* profile_cmd = app.add_subcommand("profile", "profiles of OMA-URI settings");
  profile_cmd->require_subcommand(1);
  auto* profile_add = profile_cmd->add_subcommand(
      "add",
      "add a profile from --file (JSON {\"settings\": [{\"uri\", \"value\", \"format\", "
      "\"type\", \"verb\"} | {\"raw\": \"<Replace>...\"}]}) and/or --setting URI=VALUE");
  profile_add->add_option("name", name)->required();
  profile_add->add_option("--file", file, "JSON file with the settings");
  profile_add->add_option("--setting", settings, "URI=VALUE (repeatable)");
  profile_add->add_option("--format", format,
                          "Meta Format of --setting values (chr, int, bool, "
                          "xml, b64, node)");
  profile_add->add_option("--type", type, "Meta Type of --setting values");
  profile_add->add_flag("--add", add_verb, "send --setting values with Add (default Replace)");
  profile_add->add_flag("--replace", replace, "replace an existing profile of that name");
  profile_add->add_option("--tenant", tenant, "tenant id or name");

  std::string profile;
  bool exclude = false;
  auto* assign = app.add_subcommand("assign",
                                    "assign a profile to a group (include, or "
                                    "--exclude; exclude wins)");
  assign->add_option("profile", profile)->required();
  assign->add_option("group", group)->required();
  assign->add_flag("--exclude", exclude);
  assign->add_flag("--remove", remove, "remove the assignment");
  assign->add_option("--tenant", tenant, "tenant id or name");

  std::string app_name;
  bool revoke = false;
  auto* consent = app.add_subcommand("consent", "tenant consent to the PIN reset Entra apps");
  consent->add_option("--app", app_name, "service, client, both, or an app id")->required();
  consent->add_flag("--revoke", revoke);
  consent->add_option("--tenant", tenant, "tenant id or name");

  bool as_json = false;
  auto* report = app.add_subcommand("report",
                                    "per device, user, profile and setting status "
                                    "with CanReset");
  report->add_flag("--json", as_json);
  std::string device;
  auto* device_report = app.add_subcommand("device-report", "the latest report XML of a device");
  device_report->add_option("device", device)->required();
  std::string backup_file;
  auto* backup = app.add_subcommand(
      "backup", "copy the state (database and keys) into a new file, safe while serving");
  backup->add_option("file", backup_file, "the backup to write (must not exist; 0600)")->required();
  auto* restore =
      app.add_subcommand("restore", "replace the state with a backup's (dmserver must be stopped)");
  restore->add_option("file", backup_file, "a file `dmserver backup` wrote")->required();
  auto* device_retire = app.add_subcommand(
      "retire",
      "unenroll a device: its certificate stops working and its DeviceID may enroll "
      "again");
  device_retire->add_option("device", device)->required();
  device_retire->add_option("--tenant", tenant, "tenant id or name");

  std::string scope, token_name;
  auto* admin_token = app.add_subcommand(
      "admin-token", "the admin API's bearer tokens (stored hashed; each shown once)");
  admin_token->require_subcommand(1);
  auto* admin_token_create = admin_token->add_subcommand("create", "issue a new admin token");
  admin_token_create->add_option("--scope", scope, "global, read-only, or tenant:<id or name>")
      ->required();
  admin_token_create->add_option("--name", token_name, "its name (default: made up)");
  admin_token_create
      ->add_option("--token-file", token_file,
                   "write the token here (created 0600, must not exist)")
      ->required();
  admin_token->add_subcommand("list", "list admin tokens (never the tokens themselves)");
  auto* admin_token_rotate = admin_token->add_subcommand(
      "rotate", "a new token for the name; the old one stops working at once");
  admin_token_rotate->add_option("name", token_name)->required();
  admin_token_rotate
      ->add_option("--token-file", token_file,
                   "write the token here (created 0600, must not exist)")
      ->required();
  auto* admin_token_revoke = admin_token->add_subcommand("revoke", "revoke an admin token");
  admin_token_revoke->add_option("name", token_name)->required();

  try {
    static constexpr dm::EnvOption kEnvironment[] = {{"--state-dir", "DMSERVER_STATE_DIR"},
                                                     {"--log-level", "DMSERVER_LOG_LEVEL"}};
    dm::ParseWithEnvironment(app, argc, argv, kEnvironment);
  } catch (const CLI::ParseError& e) {
    return dm::ExitForParseError(app, e, "dmserver");
  }

  if (dm::Status s = dm::InitLogging(log); !s.ok()) return Fail(s);
  if (state_dir.empty()) {
    return Fail(
        dm::InvalidArgument("say where the state lives: --state-dir or "
                            "$DMSERVER_STATE_DIR"));
  }
  options.state_dir = state_dir;
  if (test_kdf) {
#ifdef DMAGENT_ALLOW_WEAK_KDF
    options.password_kdf = dm::crypto::ScryptParams::ForTests();
#else
    return Fail(dm::InvalidArgument("--test-kdf exists in test builds only"));
#endif
  }

  if (*init) {
    if (dm::Status s = dm::server::InitState(options); !s.ok()) return Fail(s);
    std::cout << "initialised " << state_dir << " (the global admin token \"initial\" in "
              << dm::server::PathsFor(options.state_dir).admin_token.string() << ")\n";
    return 0;
  }
  if (*serve) {
    if (no_admin_api) options.admin_listen_address.clear();
    return Serve(options, port_file, admin_port_file);
  }
  // Read-only commands report on an initialised state directory and never create one; every
  // other command initialises it on first use, as `init` does.
  if (*restore) {
    if (dm::Status s = dm::server::RestoreState(backup_file, options.state_dir); !s.ok()) {
      return Fail(s);
    }
    std::cout << "restored " << state_dir << " from " << backup_file << "\n";
    return 0;
  }
  const bool read_only = *report || *device_report || *backup ||
                         tenant_cmd->got_subcommand("list") || admin_token->got_subcommand("list");
  if (read_only) {
    std::error_code ec;
    if (!std::filesystem::exists(dm::server::PathsFor(options.state_dir).database, ec)) {
      return Fail(
          dm::NotFound("no dmserver state in " + state_dir + ": run `dmserver init` first"));
    }
  } else if (dm::Status s = dm::server::InitState(options); !s.ok()) {
    return Fail(s);
  }

  if (*tenant_add) {
    auto out_file = TokenFile::Create(token_file);
    if (!out_file.ok()) return Fail(out_file.error());
    auto store = dm::server::OpenStore(options);
    if (!store.ok()) return Fail(store.error());
    auto result = dm::server::RunAdmin(**store, "tenant.add",
                                       json{{"name", name}, {"id", id}, {"federated", federated}});
    if (!result.ok()) return Fail(result.error());
    if (dm::Status w = out_file->Write(result->at("enrollment_token")); !w.ok()) return Fail(w);
    std::cout << PrettyJson(*result) << "\n";
    return 0;
  }
  if (tenant_cmd->got_subcommand("list")) return Admin(options, "tenant.list", json::object());
  if (*admin_token_create || *admin_token_rotate) {
    auto out_file = TokenFile::Create(token_file);
    if (!out_file.ok()) return Fail(out_file.error());
    auto store = dm::server::OpenStore(options);
    if (!store.ok()) return Fail(store.error());
    auto result =
        *admin_token_create
            ? dm::server::RunAdmin(**store, "admin_token.create",
                                   json{{"scope", scope}, {"name", token_name}})
            : dm::server::RunAdmin(**store, "admin_token.rotate", json{{"name", token_name}});
    if (!result.ok()) return Fail(result.error());
    if (dm::Status w = out_file->Write(result->at("token")); !w.ok()) return Fail(w);
    // The token goes to the file only, never to the terminal.
    result->erase("token");
    (*result)["token_file"] = token_file;
    std::cout << PrettyJson(*result) << "\n";
    return 0;
  }
  if (admin_token->got_subcommand("list")) {
    return Admin(options, "admin_token.list", json::object());
  }
  if (*admin_token_revoke) return Admin(options, "admin_token.revoke", json{{"name", token_name}});
  if (*tenant_token) {
    auto out_file = TokenFile::Create(revoke_token ? "" : token_file);
    if (!out_file.ok()) return Fail(out_file.error());
    auto store = dm::server::OpenStore(options);
    if (!store.ok()) return Fail(store.error());
    auto result = dm::server::RunAdmin(
        **store, "tenant.token",
        json{{"tenant", tenant}, {"valid_days", valid_days}, {"revoke", revoke_token}});
    if (!result.ok()) return Fail(result.error());
    if (result->contains("enrollment_token")) {
      if (dm::Status w = out_file->Write(result->at("enrollment_token")); !w.ok()) return Fail(w);
    }
    std::cout << PrettyJson(*result) << "\n";
    return 0;
  }
  if (*tenant_poll) {
    json args{{"tenant", tenant}};
    for (const auto& [key, value] : {std::pair{"first_interval", poll.first_interval},
                                     {"first_count", poll.first_count},
                                     {"second_interval", poll.second_interval},
                                     {"second_count", poll.second_count},
                                     {"remaining_interval", poll.remaining_interval}}) {
      if (value) args[key] = *value;
    }
    return Admin(options, "tenant.poll", args);
  }
  if (*device_retire) {
    return Admin(options, "device.retire", json{{"tenant", tenant}, {"device", device}});
  }
  if (*user_add) {
    json args{{"tenant", tenant}, {"upn", upn}};
    std::string password = ReadSecretLine("Password: ");
    std::string totp = ReadSecretLine("TOTP secret (base32, empty to generate): ");
    args["password"] = password;
    if (!totp.empty()) args["totp_secret"] = totp;
    std::fill(password.begin(), password.end(), '\0');
    std::fill(totp.begin(), totp.end(), '\0');
    return Admin(options, "user.add", args);
  }
  if (*user_unlock) return Admin(options, "user.unlock", json{{"upn", upn}});
  if (*group_add) {
    return Admin(options, "group.add",
                 json{{"tenant", tenant}, {"name", name}, {"kind", kind}, {"all", all_members}});
  }
  if (*group_member) {
    return Admin(
        options, "group.member",
        json{{"tenant", tenant}, {"group", group}, {"member", member}, {"remove", remove}});
  }
  if (*profile_add) {
    json args{{"tenant", tenant}, {"name", name}, {"replace", replace}};
    json list = json::array();
    if (!file.empty()) {
      std::ifstream in(file);
      json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded() || !doc.is_object() || !doc.contains("settings")) {
        return Fail(dm::InvalidArgument(file + " is not JSON with a \"settings\" array"));
      }
      list = doc.at("settings");
    }
    for (const std::string& s : settings) {
      size_t eq = s.find('=');
      if (eq == std::string::npos) return Fail(dm::InvalidArgument("--setting wants URI=VALUE"));
      list.push_back(json{{"uri", s.substr(0, eq)},
                          {"value", s.substr(eq + 1)},
                          {"format", format},
                          {"type", type},
                          {"verb", add_verb ? "Add" : "Replace"}});
    }
    args["settings"] = list;
    return Admin(options, "profile.add", args);
  }
  if (*assign) {
    return Admin(options, "assign",
                 json{{"tenant", tenant},
                      {"profile", profile},
                      {"group", group},
                      {"mode", exclude ? "exclude" : "include"},
                      {"remove", remove}});
  }
  if (*consent) {
    std::vector<std::string> apps = {app_name};
    if (app_name == "both") apps = {"service", "client"};
    for (const std::string& a : apps) {
      int rc = Admin(options, "consent", json{{"tenant", tenant}, {"app", a}, {"granted", !revoke}},
                     /*print=*/a == apps.back());
      if (rc != 0) return rc;
    }
    return 0;
  }
  if (*report) {
    auto store = dm::server::OpenStore(options);
    if (!store.ok()) return Fail(store.error());
    auto lock = (*store)->Lock();
    auto result = dm::server::BuildReport(**store);
    if (!result.ok()) return Fail(result.error());
    std::cout << (as_json ? PrettyJson(dm::JsonDocument(*result)) + "\n"
                          : dm::server::FormatReportTable(*result));
    return 0;
  }
  if (*backup) {
    if (dm::Status s = dm::server::BackupState(options.state_dir, backup_file); !s.ok()) {
      return Fail(s);
    }
    std::cout << "backed up " << state_dir << " to " << backup_file << "\n";
    return 0;
  }
  if (*device_report) {
    auto store = dm::server::OpenStore(options);
    if (!store.ok()) return Fail(store.error());
    auto lock = (*store)->Lock();
    auto xml = dm::server::LatestDeviceReport(**store, device);
    if (!xml.ok()) return Fail(xml.error());
    std::cout << *xml << "\n";
    return 0;
  }
  return 0;
}
