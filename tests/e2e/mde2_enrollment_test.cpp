// The agent enrolls with dmserver the way Windows does (MS-MDE2 over TLS on loopback), OnPremise
// and Federated, then runs management sessions; a DeviceID cannot be taken over by
// re-enrollment; unenrollment tells the server and leaves users' containers alone.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/runtime/device.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/sync.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "csp/device_facts.h"
#include "samples/server/admin.h"
#include "samples/server/server.h"
#include "samples/server/testing/test_server.h"
#include "tests/security/dmagent_process.h"

namespace dm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kManagedUser[] = "carol@contoso.test";
constexpr char kFederatedUser[] = "alice@fabrikam.test";
constexpr char kPassword[] = "Correct-Horse-Battery-9";
constexpr char kTotpBase32[] = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

class Mde2EnrollmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "mde2-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    server::ServerOptions so = server::testing::TestServerOptions(dir_ / "server");
    so.idp_host = "localhost";  // the IdP's own host name, reachable without DNS
    auto s = server::DmServer::Start(so);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    server_ = std::move(*s);
    Admin("tenant.add", {{"name", "Contoso"}});
    Admin("tenant.add", {{"name", "Fabrikam"}, {"federated", true}});
    Admin("user.add", {{"tenant", "Contoso"}, {"upn", kManagedUser}, {"password", kPassword}});
    Admin("user.add", {{"tenant", "Fabrikam"},
                       {"upn", kFederatedUser},
                       {"password", kPassword},
                       {"totp_secret", kTotpBase32}});
  }
  void TearDown() override {
    devices_.clear();
    server_.reset();
    fs::remove_all(dir_);
  }

  json Admin(const std::string& op, const json& args) {
    auto r = server::RunAdmin(server_->store(), op, args);
    EXPECT_TRUE(r.ok()) << op << ": " << r.error().ToString();
    return r.ok() ? *r : json();
  }

  agent::Device& NewDevice(const std::string& name) {
    agent::DeviceOptions o;
    o.state_dir = dir_ / name;
    o.pin_kdf = crypto::ScryptParams::ForTests();
    auto d = agent::Device::Open(std::move(o));
    EXPECT_TRUE(d.ok()) << d.error().ToString();
    devices_.push_back(std::move(*d));
    return *devices_.back();
  }

  // As `dmagent enroll --email U --discovery-url ... --ca ...`: the policy comes from Discovery.
  agent::MsMde2EnrollRequest Request(const std::string& upn, int totp_step_offset = 0) {
    agent::MsMde2EnrollRequest r;
    r.email = upn;
    r.discovery_url = server_->BaseUrl() + "/EnrollmentServer/Discovery.svc";
    r.ca_bundle_pem = server_->ca_cert_pem();
    r.password = SecretBytes(std::string_view(kPassword));
    auto secret = crypto::Base32Decode(kTotpBase32);
    auto code =
        crypto::Totp(*secret, Clock::System().Now() + std::chrono::seconds(30 * totp_step_offset));
    r.otp = SecretBytes(std::string_view(*code));
    return r;
  }

  std::optional<server::Device> ServerDevice(agent::Device& d) {
    auto id = csp::DeviceId(d.db());
    EXPECT_TRUE(id.ok());
    auto lock = server_->store().Lock();
    auto dev = server_->store().FindDevice(*id);
    EXPECT_TRUE(dev.ok());
    return dev.ok() ? *dev : std::nullopt;
  }

  fs::path dir_;
  std::unique_ptr<server::DmServer> server_;
  std::vector<std::unique_ptr<agent::Device>> devices_;
};

TEST_F(Mde2EnrollmentTest, OnPremiseEnrollsWithThePasswordThenSessionsRun) {
  agent::Device& d = NewDevice("laptop");
  Status s = agent::EnrollMsMde2(d, Request(kManagedUser));
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto state = agent::LoadEnrollment(d.db());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->kind, "ms-mde2");
  EXPECT_EQ(state->provider_id, "dmserver");
  EXPECT_EQ(state->management_url, server_->BaseUrl() + "/ManagementServer/MDM.svc");
  auto dev = ServerDevice(d);
  ASSERT_TRUE(dev.has_value());
  EXPECT_EQ(dev->enrolled_upn, kManagedUser);
  EXPECT_EQ(dev->enrollment_type, "Full");
  EXPECT_EQ(dev->hw_dev_id, state->hw_dev_id);
  EXPECT_FALSE(dev->hw_dev_id.empty());

  auto first = agent::RunSession(d);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_GT(first->commands_received, 0);  // the agent services the server sets at once
  EXPECT_TRUE(agent::RunSession(d).ok());

  // A wrong password is the server's authentication fault, naming the step and URL.
  agent::Device& other = NewDevice("other");
  agent::MsMde2EnrollRequest bad = Request(kManagedUser);
  bad.password = SecretBytes(std::string_view("wrong"));
  Status refused = agent::EnrollMsMde2(other, bad);
  EXPECT_EQ(refused.code(), Code::kUnauthenticated) << refused.ToString();
  EXPECT_NE(refused.message().find("GetPolicies at " + server_->BaseUrl()), std::string::npos)
      << refused.ToString();
  EXPECT_FALSE(agent::LoadEnrollment(other.db())->enrolled());
}

TEST_F(Mde2EnrollmentTest, FederatedSignsInAtTheIdpAndTheTokenEnrollsOnce) {
  agent::Device& d = NewDevice("laptop");
  Status s = agent::EnrollMsMde2(d, Request(kFederatedUser));
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto dev = ServerDevice(d);
  ASSERT_TRUE(dev.has_value());
  EXPECT_EQ(dev->enrolled_upn, kFederatedUser);
  auto session = agent::RunSession(d);
  ASSERT_TRUE(session.ok()) << session.error().ToString();

  // The same one-time code again is refused at the IdP: no token, nothing enrolled.
  agent::Device& other = NewDevice("other");
  Status again = agent::EnrollMsMde2(other, Request(kFederatedUser));
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.message().find("Federated sign-in"), std::string::npos) << again.ToString();
  EXPECT_FALSE(agent::LoadEnrollment(other.db())->enrolled());
  // A federated tenant's password alone (OnPremise) is refused too.
  agent::MsMde2EnrollRequest onprem = Request(kFederatedUser);
  onprem.auth = "onprem";
  EXPECT_EQ(agent::EnrollMsMde2(other, onprem).code(), Code::kUnauthenticated);
}

TEST_F(Mde2EnrollmentTest, TakeoverByReEnrollmentIsRefusedAndRenewalWithTheCertWorks) {
  agent::Device& victim = NewDevice("victim");
  ASSERT_TRUE(agent::EnrollMsMde2(victim, Request(kManagedUser)).ok());
  const std::string serial = ServerDevice(victim)->cert_serial;

  // Another machine claims the victim's DeviceID with valid user credentials.
  agent::Device& attacker = NewDevice("attacker");
  auto victim_id = csp::DeviceId(victim.db());
  ASSERT_TRUE(victim_id.ok());
  ASSERT_TRUE(csp::WriteFact(attacker.db(), csp::kFactDeviceId, *victim_id).ok());
  Status s = agent::EnrollMsMde2(attacker, Request(kManagedUser));
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  EXPECT_NE(s.message().find("current certificate"), std::string::npos) << s.ToString();
  EXPECT_FALSE(agent::LoadEnrollment(attacker.db())->enrolled());
  EXPECT_EQ(ServerDevice(victim)->cert_serial, serial);
  EXPECT_TRUE(agent::RunSession(victim).ok());

  // The device itself re-enrolls over mutual TLS with its current certificate.
  ASSERT_TRUE(agent::EnrollMsMde2(victim, Request(kManagedUser)).ok());
  EXPECT_NE(ServerDevice(victim)->cert_serial, serial);
  EXPECT_TRUE(agent::RunSession(victim).ok());

  // After the admin retires it, the DeviceID is free again.
  Admin("device.retire", {{"tenant", "Contoso"}, {"device", *victim_id}});
  EXPECT_TRUE(agent::EnrollMsMde2(attacker, Request(kManagedUser)).ok());
}

// The admin API as an operator calls it over HTTPS, with the bearer token from the state
// directory.
json AdminOverHttps(const server::DmServer& server, const fs::path& state_dir,
                    const std::string& op, const json& args) {
  const std::string token = server::testing::InitialAdminToken(state_dir);
  auto client = server::testing::TestClient(server, "", {}, server.AdminBaseUrl());
  EXPECT_TRUE(client.ok());
  auto r = (*client)->PostOnce("/admin/v1/" + op, args.dump(), "application/json",
                               {{"Authorization", "Bearer " + token}});
  EXPECT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r.ok() ? r->status : 0, 200) << (r.ok() ? r->body : "");
  return r.ok() ? json::parse(r->body, nullptr, false) : json();
}

// Retire revokes the certificate at the TLS level: the retired agent's next session (which
// offers its saved TLS session) fails the handshake, the other devices go on, and the DeviceID
// enrolls again through MS-MDE2 and then syncs with its new certificate.
TEST_F(Mde2EnrollmentTest, RetiredDeviceFailsTheTlsHandshakeAndItsIdEnrollsAgain) {
  agent::Device& retired = NewDevice("retired");
  agent::Device& bystander = NewDevice("bystander");
  ASSERT_TRUE(agent::EnrollMsMde2(retired, Request(kManagedUser)).ok());
  ASSERT_TRUE(agent::EnrollMsMde2(bystander, Request(kManagedUser)).ok());
  // As the daemon runs sessions: each offers the TLS session the last one saved.
  transport::TlsResumption saved;
  agent::SyncOptions daemon;
  daemon.tls_resumption = &saved;
  ASSERT_TRUE(agent::RunSession(retired, daemon).ok());
  auto resumed = agent::RunSession(retired, daemon);
  ASSERT_TRUE(resumed.ok()) << resumed.error().ToString();
  EXPECT_TRUE(resumed->tls_resumed);  // so the refusal below covers resumption too
  ASSERT_TRUE(agent::RunSession(bystander).ok());
  auto retired_id = csp::DeviceId(retired.db());
  ASSERT_TRUE(retired_id.ok());

  AdminOverHttps(*server_, dir_ / "server", "device.retire",
                 {{"tenant", "Contoso"}, {"device", *retired_id}});
  ASSERT_NE(saved.session, nullptr);
  auto refused = agent::RunSession(retired, daemon);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("the server rejected the client certificate"),
            std::string::npos)
      << refused.error().ToString();
  EXPECT_TRUE(agent::RunSession(bystander).ok());

  // The same DeviceID on a fresh install enrolls again and syncs.
  agent::Device& again = NewDevice("again");
  ASSERT_TRUE(csp::WriteFact(again.db(), csp::kFactDeviceId, *retired_id).ok());
  ASSERT_TRUE(agent::EnrollMsMde2(again, Request(kManagedUser)).ok());
  auto fresh = agent::RunSession(again);
  ASSERT_TRUE(fresh.ok()) << fresh.error().ToString();
  EXPECT_FALSE(agent::RunSession(retired, daemon).ok());
  EXPECT_TRUE(agent::RunSession(bystander).ok());
}

TEST_F(Mde2EnrollmentTest, UnenrollTellsTheServerAndKeepsTheUsersContainers) {
  agent::Device& d = NewDevice("laptop");
  ASSERT_TRUE(agent::EnrollMsMde2(d, Request(kManagedUser)).ok());
  ASSERT_TRUE(agent::RunSession(d).ok());
  ASSERT_TRUE(d.containers().Provision(kManagedUser, SecretBytes(std::string_view("246810"))).ok());

  ASSERT_TRUE(agent::Unenroll(d).ok());
  EXPECT_FALSE(agent::LoadEnrollment(d.db())->enrolled());
  EXPECT_FALSE(ServerDevice(d)->enrolled);
  auto info = d.containers().Info(kManagedUser);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->exists);
  // Enrolled again after that: no certificate to present, and none needed.
  EXPECT_TRUE(agent::EnrollMsMde2(d, Request(kManagedUser)).ok());
  EXPECT_TRUE(ServerDevice(d)->enrolled);
}

// The command line as an operator types it: the password on stdin, never in argv.
TEST_F(Mde2EnrollmentTest, CommandLineEnrollsShowsStatusSyncsAndUnenrolls) {
  { std::ofstream(dir_ / "ca.pem") << server_->ca_cert_pem(); }
  const std::string state = (dir_ / "cli").string();
  auto agent = [&](std::vector<std::string> args, std::string input = "") {
    args.insert(args.begin(), {"--state-dir", state, "--log-level", "warn"});
    testing::ProcessOptions o;
    o.stdin_data = std::move(input);
    return testing::RunProcess(DMAGENT_BIN, args, o);
  };
  const std::string discovery = server_->BaseUrl() + "/EnrollmentServer/Discovery.svc";
  auto r = agent({"enroll", "--email", kManagedUser, "--discovery-url", discovery, "--ca",
                  (dir_ / "ca.pem").string()},
                 std::string(kPassword) + "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("provider dmserver"), std::string::npos) << r.out;

  r = agent({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json status = json::parse(r.out).at("tenant_details");
  EXPECT_EQ(status.at("enrollment_kind"), "ms-mde2");
  EXPECT_EQ(status.at("provider_id"), "dmserver");
  EXPECT_EQ(status.at("enrollment_type"), "Full");
  EXPECT_TRUE(status.at("cert_thumbprint").is_string());
  EXPECT_TRUE(status.at("cert_expires").is_string());
  EXPECT_TRUE(status.at("enrolled_at").is_string());

  EXPECT_EQ(agent({"sync"}).exit_code, 0);
  r = agent({"unenroll"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = agent({"status", "--json"});
  EXPECT_EQ(json::parse(r.out).at("tenant_details").at("enrolled"), false);
  r = agent({"unenroll"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not enrolled"), std::string::npos) << r.err;

  // --auth token without a token file is refused before anything is sent.
  r = agent({"enroll", "--email", kManagedUser, "--discovery-url", discovery, "--auth", "token"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--token-file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dm
