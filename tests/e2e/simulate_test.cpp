// `dmagent simulate`'s engine against dmserver in process, over real mutual TLS on 127.0.0.1:
// virtual devices enroll, receive a profile through an "All devices" assignment, fail their
// share of it, report, and keep their state in one fleet file across runs.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/simulate/simulator.h"
#include "base/crypto.h"
#include "base/json_output.h"
#include "samples/server/admin.h"
#include "samples/server/report.h"
#include "samples/server/server.h"
#include "samples/server/testing/test_server.h"

namespace dm {
namespace {

namespace fs = std::filesystem;

// What dmserver sets in every device's DMAgent CSP at its first session (the report
// subscription and five service values), besides the profile's three settings.
constexpr int kAgentServiceCommands = 6;

using nlohmann::json;

constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";

class SimulateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "sim-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    server::ServerOptions so = server::testing::TestServerOptions(dir_ / "server");
    auto s = server::DmServer::Start(so);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    server_ = std::move(*s);
    json t = Admin("tenant.add", {{"name", "Fabrikam"}, {"id", kTenant}});
    token_ = t.at("enrollment_token").get<std::string>();
    Admin("group.add", {{"name", "All devices"}, {"kind", "device"}, {"all", true}});
    const std::string pfw =
        std::string("./Device/Vendor/MSFT/PassportForWork/") + kTenant + "/Policies/";
    Admin("profile.add",
          {{"name", "pin-recovery"},
           {"settings",
            {{{"uri", pfw + "UsePassportForWork"}, {"value", "true"}, {"format", "bool"}},
             {{"uri", pfw + "EnablePinRecovery"}, {"value", "true"}, {"format", "bool"}},
             {{"uri",
               "./Device/Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls"},
              {"value", "idp.fabrikam.test"}}}}});
    Admin("assign", {{"profile", "pin-recovery"}, {"group", "All devices"}});
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  json Admin(const std::string& op, const json& args) {
    auto r = server::RunAdmin(server_->store(), op, args);
    EXPECT_TRUE(r.ok()) << op << ": " << r.error().ToString();
    return r.ok() ? *r : json();
  }
  json Report() {
    auto lock = server_->store().Lock();
    auto r = server::BuildReport(server_->store());
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : json();
  }

  agent::SimulateOptions Options() {
    agent::SimulateOptions o;
    o.discovery_url = server_->BaseUrl() + "/EnrollmentServer/Discovery.svc";
    o.ca_pem = server_->ca_cert_pem();
    o.auth = "token";
    o.credentials.token = SecretBytes(std::string_view(token_));
    o.state_dir = dir_ / "fleet";
    o.devices = 12;
    o.interval = std::chrono::milliseconds(300);
    o.duration = std::chrono::milliseconds(1200);
    o.concurrency = 3;
    o.fail_share = 0.34;
    o.seed = 7;
    return o;
  }

  fs::path dir_;
  std::unique_ptr<server::DmServer> server_;
  std::string token_;
};

TEST_F(SimulateTest, FleetEnrollsAppliesFailsItsShareAndReports) {
  std::vector<std::string> progress;
  agent::SimulateOptions o = Options();
  o.on_progress = [&](const std::string& line) { progress.push_back(line); };
  auto r = agent::RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->devices, 12);
  EXPECT_EQ(r->enrolled, 12);
  EXPECT_EQ(r->enroll_errors, 0);
  EXPECT_EQ(r->session_errors, 0) << (r->errors.empty() ? "" : r->errors[0].first);
  // Every device checked in at least once (first check-ins fall within the first interval).
  EXPECT_GE(r->sessions, 12);
  EXPECT_FALSE(progress.empty());

  // The server knows 12 distinct devices, each with the three settings of the profile; the
  // failures the devices counted are the server's Failed rows.
  const json report = Report();
  std::set<std::string> devices;
  std::map<std::string, int> by_status;
  for (const json& row : report.at("rows")) {
    if (row.value("setting", "").empty()) continue;
    devices.insert(row.at("device").get<std::string>());
    ++by_status[row.value("status", "")];
  }
  EXPECT_EQ(devices.size(), 12u);
  EXPECT_EQ(r->commands, 12 * (3 + kAgentServiceCommands));
  EXPECT_EQ(by_status["Failed"], r->commands_failed);
  EXPECT_GT(r->commands_failed, 0);
  EXPECT_LT(r->commands_failed, 12 * 3);
  // The others were accepted; the device's report then says whether each is in force, waits
  // for the reboot, or waits for a user to sign in (no simulated user signs in).
  int rows = 0;
  for (const auto& [status, n] : by_status) {
    EXPECT_TRUE(status == "Failed" || status == "Succeeded" || status == "PendingReboot" ||
                status == "Pending")
        << status;
    rows += n;
  }
  EXPECT_EQ(rows, 12 * 3) << json(by_status).dump();
  // Every device delivered its compliance report at least once (from its second session on:
  // the first one subscribes it).
  EXPECT_GE(r->reports_delivered, 12);

  // One fleet file, private to the user.
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "fleet" / "fleet.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GT(r->fleet_file_bytes, 0);
}

TEST_F(SimulateTest, SecondRunResumesTheSameDevicesFromTheFleetFile) {
  agent::SimulateOptions o = Options();
  o.fail_share = 0;
  auto first = agent::RunSimulation(o);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  ASSERT_EQ(first->session_errors, 0);
  const size_t devices_after_first = Report().at("devices").size();

  auto second = agent::RunSimulation(o);
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->enrolled, 0);  // all 12 came from the fleet file
  EXPECT_EQ(second->session_errors, 0) << (second->errors.empty() ? "" : second->errors[0].first);
  EXPECT_GE(second->sessions, 12);
  // Same devices (no new enrollments on the server); nothing new to apply.
  EXPECT_EQ(Report().at("devices").size(), devices_after_first);
  EXPECT_EQ(second->commands, 0);

  // A larger fleet adds devices after the existing ones.
  o.devices = 15;
  auto third = agent::RunSimulation(o);
  ASSERT_TRUE(third.ok()) << third.error().ToString();
  EXPECT_EQ(third->enrolled, 3);
  EXPECT_EQ(third->commands, 3 * (3 + kAgentServiceCommands));
}

// The command line: token from a file, the summary as JSON on stdout, exit code 0.
TEST_F(SimulateTest, CommandLinePrintsAJsonSummary) {
  {
    std::ofstream(dir_ / "token") << token_ << "\n";
    std::ofstream(dir_ / "ca.pem") << server_->ca_cert_pem();
  }
  const std::string cmd = std::string(DMAGENT_BIN) + " --state-dir " + (dir_ / "cli").string() +
                          " simulate --discovery-url " + server_->BaseUrl() +
                          "/EnrollmentServer/Discovery.svc --credentials-file " +
                          (dir_ / "token").string() + " --ca " + (dir_ / "ca.pem").string() +
                          " --devices 4 --interval 0.2 --duration 0.6 --concurrency 2 --json";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  ASSERT_EQ(status, 0) << out;
  const json j = json::parse(out);
  EXPECT_EQ(out.find("{\n  \"schema_version\": 1,"), 0u) << out;
  EXPECT_EQ(KeyOutsideConvention(j), std::nullopt) << out;
  EXPECT_EQ(j.at("devices"), 4);
  EXPECT_EQ(j.at("enrollment").at("enrolled"), 4);
  EXPECT_GE(j.at("sessions").at("completed").get<int>(), 4);
  EXPECT_EQ(j.at("sessions").at("errors"), 0);
  EXPECT_EQ(j.at("commands").at("executed"), 4 * (3 + kAgentServiceCommands));
  EXPECT_TRUE(fs::exists(dir_ / "cli" / "simulate" / "fleet.db"));
  EXPECT_FALSE(fs::exists(dir_ / "cli" / "dmagent.db"));  // the device's own files stay untouched
}

TEST_F(SimulateTest, WrongTokenFailsEnrollmentWithAClearError) {
  agent::SimulateOptions o = Options();
  o.credentials.token = SecretBytes(std::string_view("not-the-token"));
  auto r = agent::RunSimulation(o);
  ASSERT_FALSE(r.ok());
  // Which device hits it first depends on the workers; each names itself, the step and the
  // server's fault.
  EXPECT_NE(r.error().message().find("enrolling sim-0000"), std::string::npos)
      << r.error().ToString();
  EXPECT_NE(r.error().message().find("GetPolicies at " + server_->BaseUrl()), std::string::npos)
      << r.error().ToString();
  EXPECT_NE(r.error().message().find("authentication"), std::string::npos) << r.error().ToString();
}

// Fifty devices enroll through MS-MDE2 as the tenant's users (OnPremise: UsernameToken and
// password), from a credentials file as `dmagent simulate --auth onprem` reads it, then check in.
TEST_F(SimulateTest, FiftyDevicesEnrollOnPremiseAsUsersFromACredentialsFile) {
  std::string file = "# upn password\n";
  for (int i = 1; i <= 5; ++i) {
    const std::string upn = "user" + std::to_string(i) + "@fabrikam.test";
    Admin("user.add", {{"upn", upn}, {"password", "pw-" + std::to_string(i)}});
    file += upn + " pw-" + std::to_string(i) + "\n";
  }
  auto creds = agent::ParseSimulateCredentials(file, "onprem");
  ASSERT_TRUE(creds.ok()) << creds.error().ToString();
  ASSERT_EQ(creds->users.size(), 5u);
  agent::SimulateOptions o = Options();
  o.auth = "onprem";
  o.credentials = std::move(*creds);
  o.devices = 50;
  o.fail_share = 0;
  o.concurrency = 4;
  o.interval = std::chrono::milliseconds(2000);
  o.duration = std::chrono::milliseconds(0);
  auto r = agent::RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->enrolled, 50);
  EXPECT_EQ(r->enroll_errors, 0);
  const json report = Report();
  ASSERT_EQ(report.at("devices").size(), 50u);
  std::map<std::string, int> per_user;
  for (const json& d : report.at("devices")) ++per_user[d.value("enrolled_user", "")];
  EXPECT_EQ(per_user.size(), 5u);
  EXPECT_EQ(per_user["user3@fabrikam.test"], 10);

  EXPECT_FALSE(agent::ParseSimulateCredentials("alice@fabrikam.test\n", "onprem").ok());
  EXPECT_FALSE(agent::ParseSimulateCredentials("a@b pw NOT*BASE32\n", "federated").ok());
  EXPECT_FALSE(agent::ParseSimulateCredentials("# only a comment\n", "token").ok());
}

}  // namespace
}  // namespace dm
