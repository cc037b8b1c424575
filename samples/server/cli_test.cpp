// The dmserver binary as scripts use it: admin subcommands on a state directory, secrets on
// stdin, `serve --port 0 --port-file`, a clean stop on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/transport/https_client.h"
#include "base/clock.h"
#include "base/json_output.h"
#include "base/pki.h"

extern char** environ;

namespace dm::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kBinary = std::string(DMAGENT_BINARY_DIR) + "/samples/server/dmserver";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dmserver-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    state_ = (dir_ / "state").string();
  }
  void TearDown() override {
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  // Runs dmserver with `args`, feeding `input` on stdin; returns the exit code and stdout.
  std::pair<int, std::string> Run(const std::vector<std::string>& args,
                                  const std::string& input = "") {
    const fs::path in = dir_ / "stdin", out = dir_ / "stdout";
    std::ofstream(in) << input;
    std::string cmd = "'" + kBinary + "' --log-level warn --test-kdf --state-dir '" + state_ + "'";
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " < '" + in.string() + "' > '" + out.string() + "'";
    int status = std::system(cmd.c_str());
    std::stringstream text;
    text << std::ifstream(out).rdbuf();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
  }

  // `serve` on free ports in the background; returns the device port (0 on failure).
  int StartServe(const std::vector<std::string>& extra = {}) {
    const std::string port_file = (dir_ / "serve-port").string();
    fs::remove(port_file);  // a port file from an earlier start is stale
    std::vector<std::string> args = {kBinary,        "--log-level", "warn",        "--state-dir",
                                     state_,         "serve",       "--port",      "0",
                                     "--admin-port", "0",           "--port-file", port_file};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&server_pid_, kBinary.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      return 0;
    }
    int port = 0;
    for (int i = 0; i < 200 && port == 0; ++i) {
      std::ifstream(port_file) >> port;
      if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return port;
  }
  // SIGTERM and the exit status.
  int StopServe() {
    ::kill(server_pid_, SIGTERM);
    int status = 0;
    ::waitpid(server_pid_, &status, 0);
    server_pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir_;
  std::string state_;
  pid_t server_pid_ = -1;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// SIGHUP: the operator renewed the certificate files; the running server presents the new one
// from the next connection on and keeps serving; SIGTERM still stops it cleanly.
TEST_F(CliTest, SighupReloadsTheOperatorsCertificate) {
  ASSERT_EQ(Run({"init"}).first, 0);
  const auto now = Clock::System().Now();
  auto write_pair = [&](const pki::CertificateAuthority& ca) {
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    auto cert = pki::IssueForPublicKey(ca, key->public_pem,
                                       {.common_name = "127.0.0.1",
                                        .not_before = now - std::chrono::hours(1),
                                        .validity = std::chrono::hours(24),
                                        .server_auth = true,
                                        .client_auth = false,
                                        .dns_names = {"localhost"},
                                        .ip_addresses = {"127.0.0.1"}});
    ASSERT_TRUE(cert.ok());
    std::ofstream(dir_ / "tls.pem") << *cert;
    std::ofstream(dir_ / "tls-key.pem") << key->private_pem.view();
  };
  auto first_ca = pki::CreateCa("first CA", now - std::chrono::hours(1), std::chrono::hours(48));
  auto renewed_ca =
      pki::CreateCa("renewed CA", now - std::chrono::hours(1), std::chrono::hours(48));
  ASSERT_TRUE(first_ca.ok() && renewed_ca.ok());
  write_pair(*first_ca);
  const int port = StartServe(
      {"--tls-cert", (dir_ / "tls.pem").string(), "--tls-key", (dir_ / "tls-key.pem").string()});
  ASSERT_GT(port, 0);
  auto answers = [&](const pki::CertificateAuthority& ca) {
    transport::HttpsClientOptions o;
    o.server_url = "https://127.0.0.1:" + std::to_string(port);
    o.ca_bundle_pem = ca.cert_pem;
    o.retry.max_attempts = 1;
    auto client = transport::HttpsClient::Create(std::move(o));
    auto r = (*client)->Post("/PinReset/publickey", "", "application/json");
    return r.ok() && r->status == 200;
  };
  EXPECT_TRUE(answers(*first_ca));
  write_pair(*renewed_ca);
  ASSERT_EQ(::kill(server_pid_, SIGHUP), 0);
  bool renewed = false;
  for (int i = 0; i < 100 && !(renewed = answers(*renewed_ca)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(renewed) << "the renewed certificate was not presented after SIGHUP";
  EXPECT_FALSE(answers(*first_ca));
  EXPECT_EQ(StopServe(), 0) << "SIGHUP killed the server, or SIGTERM did not stop it cleanly";
}

// Backup while the server serves and the CLI writes; restore only when it is stopped, onto a
// fresh directory, with the same tenants and the same CA; foreign or newer files are refused
// and change nothing.
TEST_F(CliTest, BackupWhileServingAndRestoreOntoAFreshDirectory) {
  ASSERT_EQ(Run({"init"}).first, 0);
  ASSERT_EQ(Run({"tenant", "add", "Fabrikam"}).first, 0);
  ASSERT_GT(StartServe(), 0);
  // Writers in another process while the backups are taken: each backup is one commit's state.
  std::thread writer([&] {
    for (int i = 0; i < 10; ++i) Run({"tenant", "add", "T" + std::to_string(i)});
  });
  for (int i = 0; i < 3; ++i) {
    auto [rc, out] = Run({"backup", (dir_ / ("b" + std::to_string(i))).string()});
    EXPECT_EQ(rc, 0) << out;
  }
  writer.join();
  const fs::path backup = dir_ / "final.backup";
  ASSERT_EQ(Run({"backup", backup.string()}).first, 0);
  struct stat st {};
  ASSERT_EQ(::stat(backup.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Run({"backup", backup.string()}).first, 4) << "a backup never overwrites a file";
  EXPECT_EQ(Run({"restore", backup.string()}).first, 6) << "restored under a running server";
  const std::string tenants = Run({"tenant", "list"}).second;
  EXPECT_EQ(StopServe(), 0);

  const std::string original = state_;
  state_ = (dir_ / "fresh").string();
  auto [rc, out] = Run({"restore", backup.string()});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(Run({"tenant", "list"}).second, tenants);
  EXPECT_EQ(nlohmann::json::parse(tenants).at("tenants").size(), 11u);
  for (const char* f : {"ca.pem", "ca-key.pem", "pin-reset-key.pem", "idp-key.pem"}) {
    EXPECT_EQ(Slurp(fs::path(state_) / f), Slurp(fs::path(original) / f)) << f;
  }
  ASSERT_EQ(::stat((fs::path(state_) / "ca-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_GT(StartServe(), 0) << "the restored state serves";
  EXPECT_EQ(StopServe(), 0);
  // The intermediate backups are whole databases too.
  for (int i = 0; i < 3; ++i) {
    state_ = (dir_ / ("check" + std::to_string(i))).string();
    EXPECT_EQ(Run({"restore", (dir_ / ("b" + std::to_string(i))).string()}).first, 0);
  }

  // A plain database is not a backup; a backup from a newer schema is refused; neither changes
  // the state.
  state_ = (dir_ / "fresh").string();
  const std::string db_before = Slurp(fs::path(state_) / "server.db");
  EXPECT_EQ(Run({"restore", (fs::path(original) / "server.db").string()}).first, 2);
  const fs::path newer = dir_ / "newer.backup";
  fs::copy_file(backup, newer);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(newer.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version = 999", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  EXPECT_EQ(Run({"restore", newer.string()}).first, 6);
  EXPECT_TRUE(Slurp(fs::path(state_) / "server.db") == db_before);
  EXPECT_EQ(Run({"tenant", "list"}).second, tenants);
  EXPECT_FALSE(fs::exists(fs::path(state_) / "server.db.restoring"));
}

TEST_F(CliTest, AdminCommandsServeAndReport) {
  auto [rc, out] = Run({"init"});
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Run({"tenant", "add", "Fabrikam", "--token-file", (dir_ / "token").string()});
  ASSERT_EQ(rc, 0) << out;
  json tenant = json::parse(out);
  std::string token;
  std::ifstream(dir_ / "token") >> token;
  EXPECT_EQ(token, tenant.at("enrollment_token"));
  EXPECT_EQ(fs::status(dir_ / "token").permissions() & fs::perms::others_all, fs::perms::none);

  // Rotation: a new token, never written over an existing file or through a symlink.
  // A refused file costs nothing: the token is not rotated (its expiry stays what it was).
  const json before = json::parse(Run({"tenant", "list"}).second);
  EXPECT_NE(Run({"tenant", "token", "--valid-days", "3", "--token-file", (dir_ / "token").string()})
                .first,
            0);
  EXPECT_EQ(json::parse(Run({"tenant", "list"}).second), before);
  std::string unchanged;
  std::ifstream(dir_ / "token") >> unchanged;
  EXPECT_EQ(unchanged, token);
  fs::create_symlink(dir_ / "elsewhere", dir_ / "link");
  EXPECT_NE(Run({"tenant", "token", "--token-file", (dir_ / "link").string()}).first, 0);
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere"));
  std::tie(rc, out) =
      Run({"tenant", "token", "--valid-days", "7", "--token-file", (dir_ / "token2").string()});
  ASSERT_EQ(rc, 0) << out;
  std::string token2;
  std::ifstream(dir_ / "token2") >> token2;
  EXPECT_EQ(token2, json::parse(out).at("enrollment_token"));
  EXPECT_NE(token2, token);
  std::tie(rc, out) = Run({"tenant", "token", "--revoke"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out).at("revoked"), true);

  // The password comes from stdin; with no TOTP line a secret is generated and shown once.
  std::tie(rc, out) = Run({"user", "add", "alice@fabrikam.test"}, "s3cret-pw\n");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out).at("totp_secret").get<std::string>().size(), 32u);
  std::tie(rc, out) = Run({"user", "add", "alice@fabrikam.test"}, "again\n");
  EXPECT_EQ(rc, 4);  // AlreadyExists

  ASSERT_EQ(Run({"group", "add", "Kiosks", "--kind", "device"}).first, 0);
  ASSERT_EQ(Run({"group", "member", "Kiosks", "DEV-1"}).first, 0);
  EXPECT_NE(Run({"group", "member", "Kiosks", "alice@fabrikam.test"}).first, 0);
  std::ofstream(dir_ / "profile.json")
      << R"({"settings": [{"uri": "./Device/Vendor/MSFT/Policy/Config/A/B", "value": "1",
             "format": "int"}]})";
  ASSERT_EQ(Run({"profile", "add", "P1", "--file", (dir_ / "profile.json").string()}).first, 0);
  ASSERT_EQ(
      Run({"profile", "add", "P2", "--format", "bool", "--setting",
           "./Device/Vendor/MSFT/PassportForWork/{TenantId}/Policies/UsePassportForWork=true"})
          .first,
      0);
  ASSERT_EQ(Run({"assign", "P1", "Kiosks"}).first, 0);
  ASSERT_EQ(Run({"assign", "P2", "Kiosks", "--exclude"}).first, 0);
  std::tie(rc, out) = Run({"consent", "--app", "both"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(json::parse(out).at("consent"), json({{"service", true}, {"client", true}}));
  std::tie(rc, out) = Run({"report", "--json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(json::parse(out).at("rows").empty());  // DEV-1 has not enrolled yet
  EXPECT_EQ(out.find("{\n  \"schema_version\": 1,"), 0u) << out;
  EXPECT_EQ(KeyOutsideConvention(json::parse(out)), std::nullopt) << out;

  // serve: port 0, the bound port in --port-file, answers over TLS with the state's CA.
  const std::string port_file = (dir_ / "port").string();
  std::vector<std::string> args = {kBinary,       "--log-level", "warn",         "--state-dir",
                                   state_,        "serve",       "--port",       "0",
                                   "--port-file", port_file,     "--admin-port", "0"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ASSERT_EQ(posix_spawn(&server_pid_, kBinary.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  int port = 0;
  for (int i = 0; i < 200 && port == 0; ++i) {
    std::ifstream(port_file) >> port;
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(port, 0);
  std::stringstream ca;
  ca << std::ifstream(fs::path(state_) / "ca.pem").rdbuf();
  transport::HttpsClientOptions o;
  o.server_url = "https://127.0.0.1:" + std::to_string(port);
  o.ca_bundle_pem = ca.str();
  o.retry.max_attempts = 1;
  auto client = transport::HttpsClient::Create(std::move(o));
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  auto key = (*client)->Post("/PinReset/publickey", "", "application/json");
  ASSERT_TRUE(key.ok()) << key.error().ToString();
  EXPECT_EQ(key->status, 200);
  EXPECT_NE(key->body.find("BEGIN PUBLIC KEY"), std::string::npos);

  ASSERT_EQ(::kill(server_pid_, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(server_pid_, &status, 0), server_pid_);
  server_pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Security issue #11: admin tokens are made, rotated and revoked from the CLI; the token only
// ever goes to a new 0600 file, and the admin API is on its own port.
TEST_F(CliTest, AdminTokensGoToTheirFileOnlyAndTheAdminApiHasItsOwnPort) {
  ASSERT_EQ(Run({"init"}).first, 0);
  ASSERT_EQ(Run({"tenant", "add", "Fabrikam"}).first, 0);
  const std::string file = (dir_ / "ro-token").string();
  auto [rc, out] = Run(
      {"admin-token", "create", "--scope", "read-only", "--name", "auditor", "--token-file", file});
  ASSERT_EQ(rc, 0) << out;
  std::string token;
  std::ifstream(file) >> token;
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(out.find(token), std::string::npos) << "the token is not printed";
  EXPECT_EQ(fs::status(file).permissions(), fs::perms::owner_read | fs::perms::owner_write);
  // The file is created exclusively, never through a symlink; refused, no token is made.
  EXPECT_NE(Run({"admin-token", "create", "--scope", "global", "--name", "x", "--token-file", file})
                .first,
            0);
  fs::create_symlink(dir_ / "elsewhere", dir_ / "link");
  EXPECT_NE(Run({"admin-token", "create", "--scope", "global", "--name", "y", "--token-file",
                 (dir_ / "link").string()})
                .first,
            0);
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere"));
  EXPECT_NE(Run({"admin-token", "create", "--scope", "tenant:Nowhere", "--token-file",
                 (dir_ / "t").string()})
                .first,
            0);
  EXPECT_FALSE(fs::exists(dir_ / "t")) << "a refused operation leaves no file";
  std::tie(rc, out) = Run({"admin-token", "list"});
  ASSERT_EQ(rc, 0) << out;
  std::vector<std::string> names;
  const json listed = json::parse(out);
  for (const json& t : listed.at("tokens")) names.push_back(t.at("name"));
  EXPECT_EQ(names, (std::vector<std::string>{"auditor", "initial"}));

  std::tie(rc, out) = Run({"admin-token", "rotate", "auditor", "--token-file", file + "2"});
  ASSERT_EQ(rc, 0) << out;
  std::string rotated;
  std::ifstream(file + "2") >> rotated;
  EXPECT_EQ(rotated.size(), 64u);
  EXPECT_NE(rotated, token);

  // serve: the admin API on its own port, not on the devices' one.
  const std::string port_file = (dir_ / "port").string();
  const std::string admin_port_file = (dir_ / "admin-port").string();
  std::vector<std::string> args = {kBinary,
                                   "--log-level",
                                   "warn",
                                   "--state-dir",
                                   state_,
                                   "serve",
                                   "--port",
                                   "0",
                                   "--port-file",
                                   port_file,
                                   "--admin-port-file",
                                   admin_port_file,
                                   "--admin-port",
                                   "0"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ASSERT_EQ(posix_spawn(&server_pid_, kBinary.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  int port = 0, admin_port = 0;
  for (int i = 0; i < 200 && port == 0; ++i) {
    std::ifstream(port_file) >> port;
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::ifstream(admin_port_file) >> admin_port;
  ASSERT_GT(port, 0);
  ASSERT_GT(admin_port, 0);
  EXPECT_NE(port, admin_port);
  std::stringstream ca;
  ca << std::ifstream(fs::path(state_) / "ca.pem").rdbuf();
  auto report = [&](int on_port, const std::string& bearer) {
    transport::HttpsClientOptions o;
    o.server_url = "https://127.0.0.1:" + std::to_string(on_port);
    o.ca_bundle_pem = ca.str();
    o.retry.max_attempts = 1;
    auto client = transport::HttpsClient::Create(std::move(o));
    EXPECT_TRUE(client.ok()) << client.error().ToString();
    auto r = (*client)->Post("/admin/v1/report", "", "application/json",
                             {{"Authorization", "Bearer " + bearer}});
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? r->status : 0;
  };
  EXPECT_EQ(report(admin_port, rotated), 200);
  EXPECT_EQ(report(admin_port, token), 401) << "rotated away";
  EXPECT_EQ(report(port, rotated), 404) << "the device listener has no admin API";
  ASSERT_EQ(Run({"admin-token", "revoke", "auditor"}).first, 0);
  EXPECT_EQ(report(admin_port, rotated), 401) << "revoked, with the server running";
}

TEST_F(CliTest, RefusesToRunWithoutAStateDirectory) {
  std::string cmd = "env -u DMSERVER_STATE_DIR '" + kBinary + "' report > /dev/null 2>&1";
  int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace dm::server
