// The agent (agent/runtime: enrollment, sessions, outbox, resets) against dmserver, both in
// process, over real mutual TLS on 127.0.0.1.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "agent/runtime/device.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/hello_issuer.h"
#include "agent/runtime/outbox.h"
#include "agent/runtime/pin_reset_client.h"
#include "agent/runtime/sync.h"
#include "agent/runtime/user_tokens.h"
#include "agent/session/session.h"
#include "agent/syncml/codec.h"
#include "agent/transport/faulty_https_server.h"
#include "agent/transport/https_server.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "csp/dmagent_csp.h"
#include "samples/server/admin.h"
#include "samples/server/report.h"
#include "samples/server/server.h"

namespace dm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr char kAlice[] = "alice@fabrikam.test";
constexpr char kBob[] = "bob@fabrikam.test";
constexpr char kPassword[] = "Correct-Horse-Battery-9";
constexpr char kTotpBase32[] = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

std::string RecoveryUri() {
  return std::string("./Device/Vendor/MSFT/PassportForWork/") + kTenant +
         "/Policies/EnablePinRecovery";
}

// The server's and the devices' clock: real time (TLS checks certificates against it) minus
// an offset that each verification code moves one 30 s TOTP step on, since the server accepts
// a step once. Starting 15 min back leaves 30 codes before it would run ahead of real time.
class StepClock final : public Clock {
 public:
  TimePoint Now() const override { return Clock::System().Now() + std::chrono::seconds(offset_); }
  // A code for a step no earlier code used.
  std::string NextCode() {
    offset_ += 30;
    auto secret = crypto::Base32Decode(kTotpBase32);
    EXPECT_TRUE(secret.ok());
    auto code = crypto::Totp(*secret, Now());
    EXPECT_TRUE(code.ok());
    return code.value_or("");
  }

 private:
  std::atomic<int64_t> offset_{-15 * 60};
};

class AgentServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    StartServer(0);
    json t = Admin("tenant.add", {{"name", "Fabrikam"}, {"id", kTenant}, {"federated", true}});
    token_ = t.at("enrollment_token").get<std::string>();
    for (const char* upn : {kAlice, kBob}) {
      Admin("user.add", {{"upn", upn}, {"password", kPassword}, {"totp_secret", kTotpBase32}});
    }
    Admin("group.add", {{"name", "pin-recovery-users"}, {"kind", "user"}});
    Admin("group.member", {{"group", "pin-recovery-users"}, {"member", kAlice}});
  }
  void TearDown() override {
    devices_.clear();
    server_.reset();
    fs::remove_all(dir_);
  }

  void StartServer(uint16_t port) {
    server::ServerOptions so;
    so.state_dir = dir_ / "server";
    so.port = port;
    so.password_kdf = crypto::ScryptParams::ForTests();
    so.pin_reset_rsa_bits = 2048;
    so.device_cert_validity = device_cert_validity_;
    so.clock = &clock_;
    auto s = server::DmServer::Start(so);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    server_ = std::move(*s);
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
  // The server's view of one setting for one user ("" = device rows): status, or "none".
  std::string ServerStatus(const std::string& user, const std::string& uri_part) {
    const json report = Report();  // the loop must not range over a temporary's member
    for (const json& row : report.at("rows")) {
      if (row.value("user", "") == user &&
          row.value("setting", "").find(uri_part) != std::string::npos) {
        return row.value("status", "");
      }
    }
    return "none";
  }
  std::string ServerCanReset(const std::string& user) {
    const json report = Report();
    for (const json& row : report.at("rows")) {
      if (row.value("user", "") == user && row.contains("can_reset") &&
          row["can_reset"].is_string()) {
        return row["can_reset"].get<std::string>();
      }
    }
    return "none";
  }

  agent::Device& NewDevice(const std::string& name, const std::string& upn = kAlice,
                           bool enroll = true) {
    agent::DeviceOptions o;
    o.state_dir = dir_ / name;
    o.pin_kdf = crypto::ScryptParams::ForTests();
    o.make_issuer = agent::MakeHelloIssuer;
    o.clock = &clock_;
    auto d = agent::Device::Open(std::move(o));
    EXPECT_TRUE(d.ok()) << d.error().ToString();
    devices_.push_back(std::move(*d));
    agent::Device& device = *devices_.back();
    if (enroll) {
      Status s = agent::EnrollMsMde2(device, ByToken(upn));
      EXPECT_TRUE(s.ok()) << s.ToString();
      // The services come through the management session now, not from enrollment: forget
      // what the enrollment answer said, then run the device's first session, in which
      // dmserver sets them and subscribes to the report.
      for (const char* key : {csp::kPinResetUrlKey, csp::kPinResetPublicKeyKey,
                              csp::kHelloCertUrlKey, csp::kFederationLoginUrlKey}) {
        EXPECT_TRUE(device.SetSetting(key, "").ok());
      }
      auto first = agent::RunSession(device, FastSync());
      EXPECT_TRUE(first.ok()) << first.error().ToString();
      slept_.clear();
    }
    return device;
  }

  std::string DiscoveryUrl() const {
    return server_->BaseUrl() + "/EnrollmentServer/Discovery.svc";
  }
  // MS-MDE2 enrollment with the tenant's bulk token (`upn` is only the Discover email).
  agent::MsMde2EnrollRequest ByToken(const std::string& upn, std::string ca = "") const {
    agent::MsMde2EnrollRequest r;
    r.email = upn;
    r.discovery_url = DiscoveryUrl();
    r.ca_bundle_pem = ca.empty() ? server_->ca_cert_pem() : ca;
    r.auth = "token";
    r.token = SecretBytes(std::string_view(token_));
    return r;
  }

  agent::SyncOptions FastSync() {
    agent::SyncOptions o;
    o.step_timeout = std::chrono::seconds(10);
    o.retry.max_attempts = 3;
    o.sleep = [this](std::chrono::milliseconds d) { slept_.push_back(d); };
    return o;
  }
  Result<agent::SyncResult> Sync(agent::Device& d) { return agent::RunSession(d, FastSync()); }

  // Signs the user in as `dmagent signin` does: at the server's token endpoint with the
  // password and a fresh code before Hello is provisioned, with the Hello key after.
  void SignIn(agent::Device& d, const std::string& upn, const std::string& pin) {
    auto info = d.containers().Info(upn);
    ASSERT_TRUE(info.ok());
    if (info->exists) {
      ASSERT_TRUE(d.containers().Unlock(upn, SecretBytes(pin)).ok());
      Status s = agent::SignInWithHelloKey(d, upn, SecretBytes(pin));
      ASSERT_TRUE(s.ok()) << s.ToString();
    } else {
      Status s =
          agent::SignInWithPassword(d, upn, SecretBytes(kPassword), SecretBytes(clock_.NextCode()));
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    ASSERT_TRUE(d.policy().OnSignIn(upn).ok());
    ASSERT_TRUE(d.SetSignedInUser(upn).ok());
    if (!info->exists) {
      auto made = d.containers().Provision(upn, SecretBytes(pin));
      ASSERT_TRUE(made.ok()) << made.error().ToString();
    }
    ASSERT_TRUE(d.policy().Evaluate().ok());
  }

  // Each call spends a new TOTP step (the server takes a code once).
  container::ResetCredentials Credentials() {
    return {.password = SecretBytes(kPassword), .otp_code = clock_.NextCode()};
  }

  std::string CanReset(agent::Device& d, const std::string& upn) {
    auto r = d.policy().Recovery(upn);
    return r.ok() ? std::string(policy::CanResetName(r->can_reset)) : r.error().ToString();
  }

  StepClock clock_;
  fs::path dir_;
  std::unique_ptr<server::DmServer> server_;
  std::string token_;
  std::vector<std::unique_ptr<agent::Device>> devices_;
  std::vector<std::chrono::milliseconds> slept_;
  std::chrono::seconds device_cert_validity_ = std::chrono::hours(24 * 365);
};

TEST_F(AgentServerTest, PinRecoveryStoryEndToEnd) {
  agent::Device& d = NewDevice("laptop");
  SignIn(d, kAlice, "246810");
  auto first = d.containers().Info(kAlice);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->self_signed) << "the server's CA certifies the Hello key";
  EXPECT_EQ(CanReset(d, kAlice), "DestructiveOnly");
  ASSERT_TRUE(Sync(d).ok());
  EXPECT_EQ(ServerCanReset(kAlice), "DestructiveOnly");

  // Forgotten PIN, no recovery: destructive reset; the certificate changes.
  auto service = agent::RemotePinResetService::Connect(d);
  ASSERT_TRUE(service.ok()) << service.error().ToString();
  auto destroyed =
      d.containers().ResetPinDestructive(kAlice, **service, Credentials(), SecretBytes("135790"));
  ASSERT_TRUE(destroyed.ok()) << destroyed.error().ToString();
  EXPECT_NE(destroyed->thumbprint, first->thumbprint);

  // Consent + profile for the user group: PendingReboot on both sides.
  Admin("consent", {{"app", "service"}});
  Admin("consent", {{"app", "client"}});
  Admin("profile.add",
        {{"name", "pin-recovery"},
         {"settings",
          json::array({{{"uri", RecoveryUri()}, {"value", "true"}, {"format", "bool"}}})}});
  Admin("assign", {{"profile", "pin-recovery"}, {"group", "pin-recovery-users"}});
  auto s1 = Sync(d);
  ASSERT_TRUE(s1.ok()) << s1.error().ToString();
  EXPECT_EQ(s1->commands_failed, 0);
  EXPECT_EQ(CanReset(d, kAlice), "DestructiveOnly");
  ASSERT_TRUE(Sync(d).ok());  // the changed report
  EXPECT_EQ(ServerStatus(kAlice, "EnablePinRecovery"), "PendingReboot");

  // Reboot step + sign-in: protector, and the server learns the new CanReset.
  ASSERT_TRUE(agent::PerformRebootStep(d).ok());
  SignIn(d, kAlice, "135790");
  EXPECT_EQ(CanReset(d, kAlice), "DestructiveAndNonDestructive");
  ASSERT_TRUE(Sync(d).ok());
  EXPECT_EQ(ServerCanReset(kAlice), "DestructiveAndNonDestructive");
  EXPECT_EQ(ServerStatus(kAlice, "EnablePinRecovery"), "Succeeded");

  // Non-destructive reset: the key and certificate stay byte-identical.
  auto before = d.containers().Info(kAlice);
  ASSERT_TRUE(before.ok());
  Status kept = d.containers().ResetPinNonDestructive(kAlice, **service, Credentials(),
                                                      SecretBytes("864200"));
  ASSERT_TRUE(kept.ok()) << kept.ToString();
  auto after = d.containers().Info(kAlice);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->certificate_pem, before->certificate_pem);
  EXPECT_EQ(after->public_key_pem, before->public_key_pem);
  EXPECT_TRUE(d.containers().Unlock(kAlice, SecretBytes("864200")).ok());
}

TEST_F(AgentServerTest, UserOutsideTheGroupGetsNothing) {
  Admin("profile.add",
        {{"name", "pin-recovery"},
         {"settings",
          json::array({{{"uri", RecoveryUri()}, {"value", "true"}, {"format", "bool"}}})}});
  Admin("assign", {{"profile", "pin-recovery"}, {"group", "pin-recovery-users"}});
  agent::Device& d = NewDevice("bobs-pc", kBob);
  SignIn(d, kBob, "246810");
  auto r = Sync(d);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->commands_received, 0);
  auto desired =
      d.policy().Desired(policy::Source::kMdm, {.scope = policy::Scope::kDevice,
                                                .user = "",
                                                .setting = "PassportForWork/EnablePinRecovery"});
  ASSERT_TRUE(desired.ok());
  EXPECT_FALSE(desired->has_value());
}

TEST_F(AgentServerTest, ExcludeWinsOverInclude) {
  Admin("group.add", {{"name", "excluded"}, {"kind", "user"}});
  Admin("group.member", {{"group", "excluded"}, {"member", kAlice}});
  Admin("profile.add",
        {{"name", "pin-recovery"},
         {"settings",
          json::array({{{"uri", RecoveryUri()}, {"value", "true"}, {"format", "bool"}}})}});
  Admin("assign", {{"profile", "pin-recovery"}, {"group", "pin-recovery-users"}});
  Admin("assign", {{"profile", "pin-recovery"}, {"group", "excluded"}, {"mode", "exclude"}});
  agent::Device& d = NewDevice("laptop");
  SignIn(d, kAlice, "246810");
  auto r = Sync(d);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->commands_received, 0);
}

TEST_F(AgentServerTest, ReDeliveredAddWithTheSameValueCountsAsSuccess) {
  agent::Device& d = NewDevice("laptop");
  const std::string msg =
      "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
      "<SessionID>7</SessionID><MsgID>1</MsgID><Target><LocURI>dev</LocURI></Target><Source>"
      "<LocURI>srv</LocURI></Source></SyncHdr><SyncBody><Add><CmdID>5</"
      "CmdID><Item><Target><LocURI>" +
      RecoveryUri() +
      "</LocURI></Target><Meta><Format xmlns=\"syncml:metinf\">bool</Format></Meta><Data>true"
      "</Data></Item></Add><Final/></SyncBody></SyncML>";
  for (int i = 0; i < 2; ++i) {
    agent::Session session(d.tree(), d.db(), {});
    auto out = session.Process(msg);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    ASSERT_EQ(session.last_outcomes().size(), 1u);
    EXPECT_EQ(session.last_outcomes()[0].code, 200) << "delivery " << i + 1;
  }
}

TEST_F(AgentServerTest, WrongCaRefusesEnrollmentAndChangesNothing) {
  auto other = pki::CreateCa("Not the server's CA", Clock::System().Now(), std::chrono::hours(24));
  ASSERT_TRUE(other.ok());
  agent::Device& d = NewDevice("laptop", kAlice, /*enroll=*/false);
  Status s = agent::EnrollMsMde2(d, ByToken(kAlice, other->cert_pem));
  EXPECT_EQ(s.code(), Code::kUnauthenticated) << s.ToString();
  EXPECT_NE(s.message().find("certificate verify failed"), std::string::npos) << s.ToString();
  auto state = agent::LoadEnrollment(d.db());
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->enrolled());
}

TEST_F(AgentServerTest, ExpiredDeviceCertificateIsRefused) {
  server_.reset();
  device_cert_validity_ = std::chrono::seconds(1);  // not_before is now - 5 min: born expired
  StartServer(0);
  agent::Device& d = NewDevice("laptop", kAlice, /*enroll=*/false);
  Status s = agent::EnrollMsMde2(d, ByToken(kAlice));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("expired"), std::string::npos) << s.ToString();
  EXPECT_FALSE(agent::LoadEnrollment(d.db())->enrolled());
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A TLS server identity for 127.0.0.1 from dmserver's own CA, so a front end placed between
// the device and dmserver passes the device's server check.
struct FrontEndIdentity {
  std::string cert_pem;
  SecretBytes key_pem;
};
FrontEndIdentity IssueFrontEndIdentity(server::DmServer& server, const fs::path& server_state) {
  auto paths = server::PathsFor(server_state);
  pki::CertificateAuthority ca{server.ca_cert_pem(), SecretBytes(ReadFile(paths.ca_key))};
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  EXPECT_TRUE(key.ok());
  pki::IssueOptions io;
  io.common_name = "127.0.0.1";
  io.not_before = Clock::System().Now() - std::chrono::minutes(1);
  io.server_auth = true;
  io.ip_addresses = {"127.0.0.1"};
  auto cert = pki::IssueForPublicKey(ca, key->public_pem, io);
  EXPECT_TRUE(cert.ok());
  return {cert.value_or(""), std::move(key->private_pem)};
}

// A front end that fails on purpose, then hands requests to dmserver's router with the
// client identity it verified itself (same CA), so the device's mutual TLS is real.
class FlakyFrontEnd {
 public:
  FlakyFrontEnd(server::DmServer& server, const fs::path& server_state) : server_(server) {
    FrontEndIdentity id = IssueFrontEndIdentity(server, server_state);
    transport::HttpsServerOptions o;
    o.cert_chain_pem = id.cert_pem;
    o.key_pem = std::move(id.key_pem);
    o.client_cert_mode = transport::ClientCertMode::kOptional;
    o.client_ca_pem = server.ca_cert_pem();
    auto s = transport::HttpsServer::Start(
        std::move(o), [this](const transport::HttpRequest& req, const transport::PeerInfo& peer) {
          ++requests_;
          {
            std::lock_guard<std::mutex> lock(mu_);
            bodies_.push_back(req.body);
          }
          if (failures_left_ > 0) {
            --failures_left_;
            transport::HttpResponse r;
            r.status = fail_status_;
            if (!retry_after_.empty()) r.headers.push_back({"Retry-After", retry_after_});
            r.body = "try later";
            return r;
          }
          return server_.Handle(req, peer);
        });
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    front_ = std::move(*s);
  }
  void FailNext(int n, int status, std::string retry_after = "") {
    failures_left_ = n;
    fail_status_ = status;
    retry_after_ = std::move(retry_after);
  }
  std::string Url() const { return front_->BaseUrl() + "/ManagementServer/MDM.svc"; }
  int requests() const { return requests_; }
  // The request bodies received, in order; TakeBodies() empties the list.
  std::vector<std::string> TakeBodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(bodies_, {});
  }

 private:
  server::DmServer& server_;
  std::unique_ptr<transport::HttpsServer> front_;
  std::atomic<int> failures_left_{0};
  int fail_status_ = 503;
  std::string retry_after_;
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::vector<std::string> bodies_;
};

void PointAt(agent::Device& d, const std::string& url) {
  ASSERT_TRUE(d.SetSetting("enrollment.management_url", url).ok());
}
// The same for the PIN reset service (enrollment stores its /PinReset/recover URL).
void PointPinResetAt(agent::Device& d, const std::string& base_url) {
  ASSERT_TRUE(d.SetSetting("enrollment.pin_reset_url", base_url + "/PinReset/recover").ok());
}

// Package 1's commands as the server decodes them.
std::vector<syncml::Command> GenericAlerts(const std::string& body) {
  auto m = syncml::Decode(body);
  EXPECT_TRUE(m.ok()) << body;
  std::vector<syncml::Command> out;
  if (!m.ok()) return out;
  for (const syncml::Command& c : m->commands) {
    if (c.type == syncml::CommandType::kAlert && c.data == "1226") out.push_back(c);
  }
  return out;
}

TEST_F(AgentServerTest, ReportGoesOnlyToASubscribedServer) {
  agent::Device& d = NewDevice("laptop", kAlice, /*enroll=*/false);
  ASSERT_TRUE(agent::EnrollMsMde2(d, ByToken(kAlice)).ok());
  // Before the first session the device knows no token endpoint: alice signs in on the device
  // only (as `dmagent signin` does then), so a report exists but the server hears of no user.
  ASSERT_TRUE(d.policy().OnSignIn(kAlice).ok());
  ASSERT_TRUE(d.SetSignedInUser(kAlice).ok());
  ASSERT_TRUE(d.containers().Provision(kAlice, SecretBytes("246810")).ok());
  ASSERT_TRUE(d.policy().Evaluate().ok());
  FlakyFrontEnd front(*server_, dir_ / "server");
  PointAt(d, front.Url());

  // Not subscribed yet: no 1226 in any message, though a report exists; the server's first
  // session subscribes and sets the services.
  ASSERT_EQ(d.tree().Get({}, csp::kComplianceAlertUri).value.data, "0");
  ASSERT_TRUE(Sync(d).ok());
  for (const std::string& body : front.TakeBodies()) EXPECT_TRUE(GenericAlerts(body).empty());
  EXPECT_EQ(ServerCanReset(kAlice), "none");
  EXPECT_EQ(d.tree().Get({}, csp::kComplianceAlertUri).value.data, "1");
  auto enrollment = agent::LoadEnrollment(d.db());
  ASSERT_TRUE(enrollment.ok());
  EXPECT_EQ(enrollment->pin_reset_url, server_->BaseUrl() + "/PinReset/recover");
  EXPECT_EQ(enrollment->hello_cert_url, server_->BaseUrl() + "/EnrollmentServer/hello-certificate");
  // Now it does: alice signs in at the server, so the next session may carry her report.
  Status signed_in =
      agent::SignInWithPassword(d, kAlice, SecretBytes(kPassword), SecretBytes(clock_.NextCode()));
  ASSERT_TRUE(signed_in.ok()) << signed_in.ToString();

  // Subscribed: the report is in package 1.
  ASSERT_TRUE(Sync(d).ok());
  std::vector<std::string> bodies = front.TakeBodies();
  ASSERT_FALSE(bodies.empty());
  auto alerts = GenericAlerts(bodies.front());
  ASSERT_EQ(alerts.size(), 1u);
  ASSERT_FALSE(alerts[0].items.empty());
  EXPECT_EQ(alerts[0].items[0].meta->type.value_or(""), agent::kReportAlertType);
  EXPECT_EQ(ServerCanReset(kAlice), "DestructiveOnly");

  // Unsubscribed again: a changed report stays home.
  ASSERT_EQ(d.tree().Replace({}, csp::kComplianceAlertUri, {"0", "int", "text/plain"}).code, 200);
  ASSERT_TRUE(d.policy().OnSignIn(kBob).ok());
  ASSERT_TRUE(Sync(d).ok());
  for (const std::string& body : front.TakeBodies()) EXPECT_TRUE(GenericAlerts(body).empty());
}

TEST_F(AgentServerTest, ServerErrorsAreRetriedWithBackoffAndRetryAfter) {
  agent::Device& d = NewDevice("laptop");
  FlakyFrontEnd front(*server_, dir_ / "server");
  PointAt(d, front.Url());

  front.FailNext(2, 503);
  auto r = Sync(d);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(slept_.size(), 2u);
  EXPECT_LT(slept_[0], slept_[1]) << "exponential backoff";

  slept_.clear();
  front.FailNext(1, 429, "7");
  ASSERT_TRUE(Sync(d).ok());
  ASSERT_EQ(slept_.size(), 1u);
  EXPECT_EQ(slept_[0], std::chrono::seconds(7));
}

TEST_F(AgentServerTest, ServerDownOrFailingLosesNoReport) {
  agent::Device& d = NewDevice("laptop");
  SignIn(d, kAlice, "246810");
  FlakyFrontEnd front(*server_, dir_ / "server");
  PointAt(d, front.Url());

  front.FailNext(100, 500);
  auto failed = Sync(d);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Code::kUnavailable) << failed.error().ToString();
  agent::Outbox outbox(d.db(), d.clock());
  auto pending = outbox.Pending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u) << "the report waits in the outbox";
  EXPECT_EQ((*pending)[0].alert.type, agent::kReportAlertType);

  // Nothing listening at all.
  PointAt(d, "https://127.0.0.1:1/ManagementServer/MDM.svc");
  auto down = Sync(d);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), Code::kUnavailable) << down.error().ToString();
  EXPECT_EQ(outbox.Pending()->size(), 1u);

  // Back up: delivered once, then gone from the outbox; the server has it.
  front.FailNext(0, 200);
  PointAt(d, front.Url());
  auto ok = Sync(d);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->alerts_delivered, 1);
  EXPECT_TRUE(outbox.Pending()->empty());
  EXPECT_EQ(ServerCanReset(kAlice), "DestructiveOnly");
}

// dmserver behind transport::FaultyHttpsServer: connections cut in the middle of a message, at
// the byte level, with the device's real mutual TLS (the front end hands the verified client
// certificate to dmserver's router).
class FaultFrontEnd {
 public:
  FaultFrontEnd(server::DmServer& server, const fs::path& server_state) {
    FrontEndIdentity id = IssueFrontEndIdentity(server, server_state);
    transport::FaultyHttpsServerOptions o;
    o.cert_chain_pem = id.cert_pem;
    o.key_pem = std::move(id.key_pem);
    o.client_ca_pem = server.ca_cert_pem();
    auto s = transport::FaultyHttpsServer::Start(
        std::move(o),
        [&server](const transport::HttpRequest& req, const transport::PeerInfo& peer) {
          return server.Handle(req, peer);
        });
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    front_ = std::move(*s);
  }
  transport::FaultyHttpsServer& faults() { return *front_; }
  std::string Url() const { return front_->BaseUrl() + "/ManagementServer/MDM.svc"; }

 private:
  std::unique_ptr<transport::FaultyHttpsServer> front_;
};

constexpr char kWebSignInUri[] =
    "./Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls";

class NetworkFaultTest : public AgentServerTest {
 protected:
  // An enrolled device with alice signed in (so a report waits in the outbox), a device profile
  // assigned to it (so the server has a command queued), behind the fault front end.
  agent::Device& Prepare() {
    agent::Device& d = NewDevice("laptop");
    SignIn(d, kAlice, "246810");
    std::string dev_id;
    {
      auto lock = server_->store().Lock();
      auto devices = server_->store().Devices();
      EXPECT_TRUE(devices.ok() && devices->size() == 1u);
      if (devices.ok() && !devices->empty()) dev_id = devices->front().dev_id;
    }
    Admin("group.add", {{"name", "all-devices"}, {"kind", "device"}});
    Admin("group.member", {{"group", "all-devices"}, {"member", dev_id}});
    Admin("profile.add",
          {{"name", "web-signin"},
           {"settings", json::array({{{"uri", kWebSignInUri}, {"value", "idp.fabrikam.test"}}})}});
    Admin("assign", {{"profile", "web-signin"}, {"group", "all-devices"}});
    front_ = std::make_unique<FaultFrontEnd>(*server_, dir_ / "server");
    PointAt(d, front_->Url());
    return d;
  }
  void TearDown() override {
    front_.reset();
    AgentServerTest::TearDown();
  }

  size_t OutboxSize(agent::Device& d) {
    agent::Outbox outbox(d.db(), d.clock());
    auto pending = outbox.Pending();
    EXPECT_TRUE(pending.ok());
    return pending.ok() ? pending->size() : 0;
  }
  // The device's effective web sign-in allow-list ("" when not set).
  std::string WebSignIn(agent::Device& d) {
    csp::GetResult g =
        d.tree().Get({.user = kAlice}, std::string("./Device") + (kWebSignInUri + 1));
    return g.code == 200 ? g.value.data : "";
  }
  // After a clean session or two the server sees what the device has: the setting succeeded,
  // the report arrived, nothing is left to send.
  void ExpectConverged(agent::Device& d) {
    auto again = Sync(d);
    ASSERT_TRUE(again.ok()) << again.error().ToString();
    auto quiet = Sync(d);
    ASSERT_TRUE(quiet.ok()) << quiet.error().ToString();
    EXPECT_EQ(quiet->commands_received, 0) << "the server still had commands to send";
    EXPECT_EQ(quiet->alerts_delivered, 0) << "the device still had reports to send";
    EXPECT_EQ(OutboxSize(d), 0u);
    EXPECT_EQ(WebSignIn(d), "idp.fabrikam.test");
    EXPECT_EQ(ServerStatus("", "ConfigureWebSignInAllowedUrls"), "Succeeded");
    EXPECT_EQ(ServerCanReset(kAlice), "DestructiveOnly");
  }

  std::unique_ptr<FaultFrontEnd> front_;
};

// Package 1 is dropped while dmserver reads it, then answered but cut short of its
// Content-Length: the third attempt gets through and the session completes as if nothing had
// happened, although dmserver processed package 1 twice.
TEST_F(NetworkFaultTest, DroppedAndTruncatedAnswersAreRetriedWithinTheSession) {
  agent::Device& d = Prepare();
  ASSERT_EQ(OutboxSize(d), 0u);
  front_->faults().InjectFaults(
      {transport::Fault::kResetInRequest, transport::Fault::kTruncateBody});
  auto r = Sync(d);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(slept_.size(), 2u) << "one backoff per failed attempt";
  EXPECT_LT(slept_[0], slept_[1]);
  EXPECT_EQ(r->alerts_delivered, 1);
  EXPECT_EQ(r->commands_failed, 0);
  EXPECT_GE(r->commands_received, 1);
  EXPECT_EQ(OutboxSize(d), 0u);
  EXPECT_EQ(WebSignIn(d), "idp.fabrikam.test");
  // Every message reached the handler once, plus the truncated package 1 (the reset one never
  // did).
  EXPECT_EQ(front_->faults().handler_calls(), r->messages_sent + 1);
  ASSERT_NO_FATAL_FAILURE(ExpectConverged(d));
}

// Package 1's answer never arrives whole: the session fails with a Status that says so, the
// report stays in the outbox (dmserver saw it, but the device cannot know that), no command was
// applied; the next clean session delivers both.
TEST_F(NetworkFaultTest, AnswerLostOnEveryAttemptKeepsTheReportAndTheNextSessionConverges) {
  agent::Device& d = Prepare();
  front_->faults().InjectFaults({transport::Fault::kTruncateBody,
                                 transport::Fault::kResetInResponse,
                                 transport::Fault::kTruncateBodyAbrupt});
  auto failed = Sync(d);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Code::kUnavailable) << failed.error().ToString();
  EXPECT_NE(failed.error().message().find("reading the response from 127.0.0.1:"),
            std::string::npos)
      << failed.error().ToString();
  EXPECT_NE(failed.error().message().find("gave up after 3 attempts"), std::string::npos)
      << failed.error().ToString();
  EXPECT_EQ(slept_.size(), 2u);
  EXPECT_EQ(front_->faults().handler_calls(), 3);
  EXPECT_EQ(OutboxSize(d), 1u) << "an alert leaves the outbox only on the server's 2xx";
  EXPECT_EQ(WebSignIn(d), "") << "no command arrived";

  auto ok = Sync(d);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->alerts_delivered, 1);
  EXPECT_GE(ok->commands_received, 1);
  ASSERT_NO_FATAL_FAILURE(ExpectConverged(d));
}

// The connection drops after dmserver recorded the device's Statuses (package 3), before the
// device reads the answer: what the server counts as done is done on the device, and the report
// acknowledged in the first answer has left the outbox.
TEST_F(NetworkFaultTest, DropAfterTheServerRecordedTheStatusesLosesNothing) {
  agent::Device& d = Prepare();
  front_->faults().InjectFaults({transport::Fault::kNone, transport::Fault::kResetInResponse,
                                 transport::Fault::kResetInResponse,
                                 transport::Fault::kResetInResponse});
  auto failed = Sync(d);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), Code::kUnavailable) << failed.error().ToString();
  EXPECT_EQ(ServerStatus("", "ConfigureWebSignInAllowedUrls"), "Succeeded")
      << "dmserver recorded the 200";
  EXPECT_EQ(WebSignIn(d), "idp.fabrikam.test") << "so the device must have the value";
  EXPECT_EQ(OutboxSize(d), 0u) << "the report's 200 came in the first answer";
  ASSERT_NO_FATAL_FAILURE(ExpectConverged(d));
}

// The PIN reset sign-in carries the user's one-time code, which dmserver accepts once. The
// server checks it (and so uses it up), then the connection drops mid-answer: the agent must not
// resend the code (the retry would be refused as a wrong code although the user typed
// everything right). The reset fails saying what happened and what to do, the device is as it
// was, and the next authenticator code works.
TEST_F(NetworkFaultTest, LostPinResetAnswerIsNotRetriedAndTheNextCodeWorks) {
  agent::Device& d = Prepare();
  PointPinResetAt(d, front_->faults().BaseUrl());
  auto before = d.containers().Info(kAlice);
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  auto service = agent::RemotePinResetService::Connect(d);
  ASSERT_TRUE(service.ok()) << service.error().ToString();
  const std::string code = Credentials().otp_code;
  auto with_code = [](const std::string& otp) {
    return container::ResetCredentials{.password = SecretBytes(kPassword), .otp_code = otp};
  };

  front_->faults().InjectFaults({transport::Fault::kResetInResponse});
  auto lost =
      d.containers().ResetPinDestructive(kAlice, **service, with_code(code), SecretBytes("135790"));
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code(), Code::kUnavailable) << lost.error().ToString();
  const std::string& message = lost.error().message();
  EXPECT_NE(message.find("may already have used your one-time code"), std::string::npos) << message;
  EXPECT_NE(message.find("wait for the next code"), std::string::npos) << message;
  EXPECT_NE(message.find("Nothing on this device was changed"), std::string::npos) << message;
  EXPECT_EQ(front_->faults().handler_calls(), 1) << "sent once, not retried";

  // Nothing changed on the device: same key and certificate, the old PIN still unlocks.
  auto kept = d.containers().Info(kAlice);
  ASSERT_TRUE(kept.ok()) << kept.error().ToString();
  EXPECT_EQ(kept->thumbprint, before->thumbprint);
  EXPECT_EQ(kept->certificate_pem, before->certificate_pem);
  EXPECT_EQ(kept->public_key_pem, before->public_key_pem);
  EXPECT_TRUE(d.containers().Unlock(kAlice, SecretBytes("246810")).ok());

  // The server did take the code, which is why a retry could only have failed.
  auto again =
      d.containers().ResetPinDestructive(kAlice, **service, with_code(code), SecretBytes("135790"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Code::kUnauthenticated) << again.error().ToString();
  EXPECT_EQ(front_->faults().handler_calls(), 2);

  // The next code (one TOTP step later) signs in and the reset goes through.
  auto reset =
      d.containers().ResetPinDestructive(kAlice, **service, Credentials(), SecretBytes("135790"));
  ASSERT_TRUE(reset.ok()) << reset.error().ToString();
  EXPECT_NE(reset->thumbprint, before->thumbprint);
  EXPECT_EQ(front_->faults().handler_calls(), 3);
  EXPECT_TRUE(d.containers().Unlock(kAlice, SecretBytes("135790")).ok());
}

// A copy of the state directory holds no user token in clear: it is sealed under machine.key
// (the session would carry it as the user). Sign-out forgets it.
TEST_F(AgentServerTest, UserTokensAreSealedAndForgottenAtSignOut) {
  agent::Device& d = NewDevice("laptop");
  SignIn(d, kAlice, "246810");
  auto token = agent::CurrentUserToken(d, kAlice);
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  ASSERT_GT(token->size(), 100u);
  const std::string signature = token->substr(token->rfind('.') + 1);
  for (const auto& entry : fs::recursive_directory_iterator(dir_ / "laptop")) {
    if (!entry.is_regular_file()) continue;
    const std::string bytes = ReadFile(entry.path());
    EXPECT_EQ(bytes.find(signature), std::string::npos) << entry.path();
  }
  ASSERT_TRUE(agent::ForgetUserTokens(d.db(), kAlice).ok());
  auto after = agent::CurrentUserToken(d, kAlice);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_EQ(*after, "");
}

// A `dmagent ... run` child process with its stderr in a file. It never outlives the test:
// ctest would wait on it.
class DaemonProcess {
 public:
  DaemonProcess(fs::path log, std::vector<std::string> args) : log_(std::move(log)) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(DMAGENT_BIN));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
      execv(DMAGENT_BIN, argv.data());
      _exit(127);
    }
  }
  ~DaemonProcess() {
    if (pid_ > 0 && !exited_) kill(pid_, SIGKILL), waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }
  bool Signal(int sig) const { return kill(pid_, sig) == 0; }

  std::string Log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Waits (at most 20 s) until `needle` appears `times` times in the log.
  bool WaitFor(const std::string& needle, size_t times = 1) const {
    for (int i = 0; i < 200; ++i, usleep(100'000)) {
      const std::string text = Log();
      size_t n = 0;
      for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
      if (n >= times) return true;
    }
    return false;
  }
  // The exit status, or nullopt while it still runs after 10 s.
  std::optional<int> WaitExit() {
    int status = 0;
    for (int i = 0; i < 100 && !exited_; ++i) {
      exited_ = waitpid(pid_, &status, WNOHANG) == pid_;
      if (!exited_) usleep(100'000);
    }
    if (!exited_ || !WIFEXITED(status)) return std::nullopt;
    return WEXITSTATUS(status);
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// `dmagent run`: polls, and stops cleanly between sessions on SIGTERM.
TEST_F(AgentServerTest, DaemonPollsAndStopsOnSigterm) {
  {
    agent::Device& d = NewDevice("laptop");
    (void)d;
    devices_.clear();  // the daemon process owns the state from here
  }
  DaemonProcess daemon(dir_ / "daemon.log", {"--state-dir", (dir_ / "laptop").string(),
                                             "--log-level", "info", "run", "--poll-seconds", "1"});
  ASSERT_TRUE(daemon.started());
  // NewDevice ran session 1; the daemon runs two more one second apart.
  ASSERT_TRUE(daemon.WaitFor(" done: ", 2)) << daemon.Log();
  ASSERT_TRUE(daemon.Signal(SIGTERM));
  EXPECT_EQ(daemon.WaitExit(), 0) << daemon.Log();
  EXPECT_NE(daemon.Log().find("received SIGTERM"), std::string::npos) << daemon.Log();
}

// `systemctl reload dmagent`: SIGHUP reads the configuration file again. A broken file keeps
// the running configuration; a shorter poll interval cuts the wait under way.
TEST_F(AgentServerTest, DaemonReloadsItsConfigurationOnSighup) {
  {
    agent::Device& d = NewDevice("laptop");
    (void)d;
    devices_.clear();
  }
  const fs::path config = dir_ / "dmagent.conf";
  auto write_config = [&](const std::string& text) {
    std::ofstream(config, std::ios::trunc) << text;
  };
  write_config("log-level = \"info\"\n[run]\npoll-seconds = 3600\n");
  DaemonProcess daemon(dir_ / "daemon.log", {"--config", config.string(), "--state-dir",
                                             (dir_ / "laptop").string(), "run"});
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(daemon.WaitFor(" done: ")) << daemon.Log();

  write_config("log-level = \"info\"\n[run]\npoll-seconds = \"soon\"\n");
  ASSERT_TRUE(daemon.Signal(SIGHUP));
  ASSERT_TRUE(daemon.WaitFor("configuration not reloaded")) << daemon.Log();

  write_config("log-level = \"info\"\n[run]\npoll-seconds = 1\n");
  ASSERT_TRUE(daemon.Signal(SIGHUP));
  ASSERT_TRUE(daemon.WaitFor("configuration reloaded (poll-seconds 1)")) << daemon.Log();
  // Not an hour later: the new interval applies to the wait under way.
  EXPECT_TRUE(daemon.WaitFor(" done: ", 2)) << daemon.Log();

  ASSERT_TRUE(daemon.Signal(SIGTERM));
  EXPECT_EQ(daemon.WaitExit(), 0) << daemon.Log();
}

}  // namespace
}  // namespace dm
