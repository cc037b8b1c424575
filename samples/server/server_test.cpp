// dmserver end to end over real TLS on 127.0.0.1 (port 0), with the project's HTTPS client and
// SyncML codec playing the device.
#include "samples/server/server.h"
#include "samples/server/testing/enroll_device.h"
#include "samples/server/testing/test_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/enroll/mde2_client.h"
#include "agent/enroll/provisioning_doc.h"
#include "agent/syncml/codec.h"
#include "agent/transport/https_client.h"
#include "base/crypto.h"
#include "base/jws.h"
#include "base/log_capture_test_support.h"
#include "base/pki.h"
#include "container/container.h"
#include "samples/server/admin.h"
#include "samples/server/agent_services.h"
#include "samples/server/management.h"
#include "samples/server/report.h"
#include "samples/server/server_internal.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using syncml::Command;
using syncml::CommandType;
using syncml::Item;
using syncml::Message;

constexpr char kTenantId[] = "6c9f0a2e-3b1d-4e8f-9a7c-2d5e8f1b3c4a";
constexpr char kHelloUri[] =
    "./Device/Vendor/MSFT/PassportForWork/{TenantId}/Policies/EnablePinRecovery";
constexpr char kWebSignInUri[] =
    "./Device/Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls";
constexpr char kUserPinUri[] =
    "./User/Vendor/MSFT/PassportForWork/{TenantId}/Policies/PINComplexity/MinimumPINLength";

std::string Expanded(std::string uri) {
  auto pos = uri.find("{TenantId}");
  if (pos != std::string::npos) uri.replace(pos, 10, kTenantId);
  return uri;
}

// A simulated device: its key, its certificate and a mutual-TLS client.
struct TestDevice {
  std::string dev_id;
  std::string cert_pem;
  SecretBytes key_pem;
  std::unique_ptr<transport::HttpsClient> client;
  int session = 0;
  int msg = 0;
};

Item LocItem(std::string loc, std::string data, std::optional<std::string> type = std::nullopt) {
  Item item;
  item.source = syncml::Location{.loc_uri = std::move(loc), .loc_name = std::nullopt};
  item.data = syncml::Data(std::move(data));
  if (type) {
    item.meta = syncml::Meta{};
    item.meta->type = *type;
  }
  return item;
}

Item AlertItem(std::string type, std::string data, std::string format = "chr") {
  Item item;
  item.meta = syncml::Meta{};
  item.meta->type = std::move(type);
  item.meta->format = std::move(format);
  item.data = syncml::Data(std::move(data));
  return item;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dmserver-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ServerOptions options = testing::TestServerOptions(dir_ / "state");
    options.clock = &clock_;
    auto server = DmServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(*server);
    auto token = ReadToken();
    admin_token_ = token;
    json tenant = AdminOk("tenant.add", {{"name", "Fabrikam"}, {"id", kTenantId}});
    enrollment_token_ = tenant.at("enrollment_token").get<std::string>();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  std::string ReadToken() {
    std::ifstream in(PathsFor(dir_ / "state").admin_token);
    std::string token;
    std::getline(in, token);
    return token;
  }

  json AdminOk(const std::string& op, json args) {
    auto result = RunAdmin(server_->store(), op, args);
    EXPECT_TRUE(result.ok()) << op << ": " << result.error().ToString();
    return result.ok() ? *result : json();
  }

  void AddUser(const std::string& upn, const std::string& password) {
    passwords_[upn] = password;
    AdminOk("user.add", {{"tenant", "Fabrikam"},
                         {"upn", upn},
                         {"password", password},
                         {"totp_secret", kTotpBase32}});
  }
  std::string TotpNow() {
    auto secret = crypto::Base32Decode(kTotpBase32);
    auto code = crypto::Totp(*secret, clock_.Now());
    return *code;
  }

  std::unique_ptr<transport::HttpsClient> Client(std::string cert = "", SecretBytes key = {},
                                                 std::string url = "") {
    auto client = testing::TestClient(*server_, std::move(cert), std::move(key), std::move(url));
    EXPECT_TRUE(client.ok()) << client.error().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  Result<transport::HttpResponse> PostJson(transport::HttpsClient& client, const std::string& path,
                                           const json& body) {
    return client.Post(path, body.dump(), "application/json");
  }

  // The MS-WSTEP request for `dev_id` with a CSR whose subject says `csr_cn`: the user's
  // password when `upn` was added with AddUser, else the tenant's bulk token.
  std::string RstBody(const std::string& dev_id, const std::string& upn, const std::string& csr_cn,
                      const SecretBytes& key_pem) {
    enroll::Credential cred;
    auto pw = passwords_.find(upn);
    if (pw != passwords_.end()) {
      cred.kind = enroll::Credential::Kind::kUsernameToken;
      cred.username = upn;
      cred.secret = SecretBytes(std::string_view(pw->second));
    } else {
      cred.kind = enroll::Credential::Kind::kBinaryToken;
      cred.secret = SecretBytes(std::string_view(enrollment_token_));
    }
    enroll::DeviceContext dc;
    dc.email = upn.empty() ? "device@fabrikam.test" : upn;
    dc.device_id = dev_id;
    dc.hw_dev_id = "0123456789ABCDEF";
    auto body = testing::RstBody(*server_, cred, dc, key_pem, csr_cn);
    EXPECT_TRUE(body.ok()) << body.error().ToString();
    return body.ok() ? *body : "";
  }

  // Enrolls `dev_id` through MS-WSTEP. A device enrolled before in this test re-enrolls over
  // mutual TLS with its current certificate, as renewal does.
  TestDevice Enroll(const std::string& dev_id, const std::string& upn = "",
                    const std::string& csr_cn = "") {
    TestDevice d;
    d.dev_id = dev_id;
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    EXPECT_TRUE(key.ok());
    std::unique_ptr<transport::HttpsClient> client;
    if (auto it = enrolled_.find(dev_id); it != enrolled_.end()) {
      client = Client(it->second.first, it->second.second.Clone());
    } else {
      client = Client();
    }
    auto resp = client->Post("/EnrollmentServer/Enrollment.svc",
                             RstBody(dev_id, upn, csr_cn, key->private_pem),
                             "application/soap+xml; charset=utf-8");
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    EXPECT_EQ(resp->status, 200) << resp->body;
    auto doc_xml = enroll::ParseRstResponse(resp->body);
    EXPECT_TRUE(doc_xml.ok()) << doc_xml.error().ToString();
    auto doc = enroll::ParseProvisioningDoc(doc_xml.ok() ? *doc_xml : "");
    EXPECT_TRUE(doc.ok()) << doc.error().ToString();
    if (!doc.ok()) return d;
    d.cert_pem = doc->device_cert_pem;
    d.key_pem = key->private_pem.Clone();
    d.client = Client(d.cert_pem, std::move(key->private_pem), doc->management_url);
    enrolled_[dev_id] = {d.cert_pem, d.key_pem.Clone()};
    last_doc_ = std::move(*doc);
    return d;
  }

  // What GET /PinReset/publickey serves.
  std::string PinResetPublicKey() {
    auto r = server_->Handle({.method = "GET",
                              .target = "/PinReset/publickey",
                              .headers = {{"Host", "127.0.0.1"}},
                              .body = ""},
                             {});
    return json::parse(r.body).at("public_key").get<std::string>();
  }

  Message Header(TestDevice& d, const std::string& source) {
    Message m;
    m.header.session_id = std::to_string(d.session);
    m.header.msg_id = std::to_string(++d.msg);
    m.header.target.loc_uri = server_->BaseUrl() + "/ManagementServer/MDM.svc";
    m.header.source.loc_uri = source;
    m.final = true;
    return m;
  }

  // Package 1 of a new session.
  Message Pkg1(TestDevice& d, const std::string& login_status, const std::string& upn = "",
               std::vector<Item> generic_alerts = {}, const std::string& source = "") {
    ++d.session;
    d.msg = 0;
    Message m = Header(d, source.empty() ? d.dev_id : source);
    int id = 2;
    m.commands.push_back(syncml::MakeAlert(std::to_string(id++), 1201));
    std::vector<Item> login = {AlertItem(kLoginStatusType, login_status)};
    m.commands.push_back(syncml::MakeAlert(std::to_string(id++), 1224, login));
    if (!upn.empty()) {
      // The user's token, as the IdP signs it; an unknown user has none, and the bare name is
      // what a device claiming them would send.
      auto token = testing::UserTokenFor(*server_, dir_ / "state", upn);
      m.commands.push_back(syncml::MakeAlert(
          std::to_string(id++), 1224, {AlertItem(kUserAlertType, token.ok() ? *token : upn)}));
    }
    if (!generic_alerts.empty()) {
      m.commands.push_back(syncml::MakeAlert(std::to_string(id++), 1226, generic_alerts));
    }
    m.commands.push_back(syncml::MakeCommand(
        CommandType::kReplace, std::to_string(id++),
        {LocItem("./DevInfo/DevId", d.dev_id), LocItem("./DevInfo/Man", "Contoso"),
         LocItem("./DevInfo/Mod", "Virtual"), LocItem("./DevInfo/DmV", "1.3"),
         LocItem("./DevInfo/Lang", "en-US")}));
    return m;
  }

  // Answers every command of `reply` with `code_for(command)`.
  Message Answer(TestDevice& d, const Message& reply,
                 const std::function<int(const Command&)>& code_for) {
    Message m = Header(d, d.dev_id);
    int id = 1;
    m.commands.push_back(
        syncml::MakeStatus(std::to_string(id++), reply.header.msg_id, "0", "SyncHdr", 200));
    for (const Command& c : reply.commands) {
      if (c.type == CommandType::kStatus) continue;
      m.commands.push_back(syncml::MakeStatus(std::to_string(id++), reply.header.msg_id, c.cmd_id,
                                              syncml::CommandName(c.type), code_for(c)));
    }
    return m;
  }

  struct Exchange {
    int http = 0;
    Message reply;
  };
  Exchange Send(TestDevice& d, const Message& m) {
    auto resp = d.client->Post("", syncml::Encode(m));
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    Exchange ex;
    if (!resp.ok()) return ex;
    ex.http = resp->status;
    auto decoded = syncml::Decode(resp->body);
    EXPECT_TRUE(decoded.ok()) << resp->body;
    if (decoded.ok()) ex.reply = *decoded;
    return ex;
  }

  static std::string TargetOf(const Command& c) {
    return c.items.empty() || !c.items[0].target ? "" : c.items[0].target->loc_uri;
  }
  static bool IsAgentServices(const Command& c) {
    return TargetOf(c).rfind("./Vendor/MSFT/DMAgent/", 0) == 0 && c.type == CommandType::kReplace;
  }
  // The management commands (not Statuses) of a server reply, without the DMAgent CSP
  // settings every device gets at its first session (AgentServicesOps).
  static std::vector<Command> Ops(const Message& reply) {
    std::vector<Command> out;
    for (const Command& c : reply.commands) {
      if (c.type != CommandType::kStatus && !IsAgentServices(c)) out.push_back(c);
    }
    return out;
  }
  static std::vector<Command> AgentServicesOps(const Message& reply) {
    std::vector<Command> out;
    for (const Command& c : reply.commands) {
      if (IsAgentServices(c)) out.push_back(c);
    }
    return out;
  }

  json Report() {
    auto lock = server_->store().Lock();
    auto r = BuildReport(server_->store());
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : json();
  }
  // The report row for (device, user, setting URI); null when absent.
  json Row(const std::string& device, const std::string& user, const std::string& uri) {
    const json report = Report();
    for (const json& row : report.at("rows")) {
      if (row.at("device") == device && row.at("user") == user && row.at("setting") == uri) {
        return row;
      }
    }
    return nullptr;
  }

  static constexpr char kTotpBase32[] = "JBSWY3DPEHPK3PXPJBSWY3DP";
  FakeClock clock_{Clock::System().Now()};
  fs::path dir_;
  std::unique_ptr<DmServer> server_;
  std::string admin_token_;
  std::string enrollment_token_;
  std::map<std::string, std::string> passwords_;  // upn -> password (AddUser)
  std::map<std::string, std::pair<std::string, SecretBytes>> enrolled_;  // dev_id -> cert, key
  enroll::ProvisioningDoc last_doc_;
};

// ---- enrollment ----

TEST_F(ServerTest, EnrollmentIssuesCertificateWithDevIdAsCnWhateverTheCsrSays) {
  TestDevice d = Enroll("DEV-AAAA", "", /*csr_cn=*/"DEV-SOMEONE-ELSE");
  auto info = pki::ParseCertificate(d.cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "DEV-AAAA");
  EXPECT_TRUE(pki::VerifyCertificate(d.cert_pem, server_->ca_cert_pem(), clock_.Now()).ok());
  EXPECT_EQ(last_doc_.management_url, server_->BaseUrl() + "/ManagementServer/MDM.svc");
  ASSERT_EQ(last_doc_.root_anchors_pem.size(), 1u);
  EXPECT_EQ(last_doc_.root_anchors_pem[0], server_->ca_cert_pem());
  EXPECT_EQ(last_doc_.provider_id, "dmserver");
  EXPECT_EQ(last_doc_.device_cert_store, "User");
  auto dev = server_->store().FindDevice("DEV-AAAA");
  ASSERT_TRUE(dev.ok() && dev->has_value());
  EXPECT_EQ((*dev)->tenant_id, kTenantId);
  EXPECT_EQ((*dev)->hw_dev_id, "0123456789ABCDEF");
  EXPECT_EQ((*dev)->enrollment_type, "Full");
}

TEST_F(ServerTest, EnrollmentRefusesAWrongToken) {
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  enrollment_token_ = "nope";
  auto client = Client();
  auto resp =
      client->Post("/EnrollmentServer/Enrollment.svc", RstBody("DEV-X", "", "", key->private_pem),
                   "application/soap+xml; charset=utf-8");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 401) << resp->body;
  EXPECT_NE(resp->body.find("authentication"), std::string::npos) << resp->body;
  auto dev = server_->store().FindDevice("DEV-X");
  ASSERT_TRUE(dev.ok());
  EXPECT_FALSE(dev->has_value());
}

// ---- management: identity ----

TEST_F(ServerTest, ManagementNeedsTheClientCertificate) {
  auto client = Client();
  TestDevice d;
  d.dev_id = "DEV-NOCERT";
  auto resp = client->Post("/ManagementServer/MDM.svc", syncml::Encode(Pkg1(d, "none")));
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 401);
}

TEST_F(ServerTest, DeviceCannotFetchAnotherDevicesCommands) {
  AdminOk("group.add", {{"name", "Kiosks"}, {"kind", "device"}});
  AdminOk("group.member", {{"group", "Kiosks"}, {"member", "DEV-BBBB"}});
  AdminOk(
      "profile.add",
      {{"name", "Web"}, {"settings", {{{"uri", kWebSignInUri}, {"value", "idp.fabrikam.test"}}}}});
  AdminOk("assign", {{"profile", "Web"}, {"group", "Kiosks"}});
  TestDevice a = Enroll("DEV-AAAA");
  TestDevice b = Enroll("DEV-BBBB");

  // A presents its own certificate but claims to be B.
  Exchange forged = Send(a, Pkg1(a, "none", "", {}, /*source=*/"DEV-BBBB"));
  EXPECT_EQ(forged.http, 403);
  ASSERT_EQ(forged.reply.commands.size(), 1u);
  EXPECT_EQ(forged.reply.commands[0].cmd, "SyncHdr");
  EXPECT_EQ(forged.reply.commands[0].data, "403");
  EXPECT_TRUE(Ops(forged.reply).empty());

  // As itself, A has nothing; B gets its command.
  EXPECT_TRUE(Ops(Send(a, Pkg1(a, "none")).reply).empty());
  Exchange own = Send(b, Pkg1(b, "none"));
  ASSERT_EQ(Ops(own.reply).size(), 1u);
  EXPECT_EQ(TargetOf(Ops(own.reply)[0]), kWebSignInUri);
}

// Red-team finding: every generic alert type a device invented got a row of its own, forever.
TEST_F(ServerTest, StoredAlertsPerDeviceAreBounded) {
  TestDevice d = Enroll("DEV-ALERTS");
  std::vector<Item> alerts;
  for (int i = 0; i < 2 * kMaxReportTypesPerDevice; ++i) {
    alerts.push_back(AlertItem("com.example/made-up-" + std::to_string(i), "x"));
  }
  Send(d, Pkg1(d, "none", "", alerts));
  auto count = [&](const std::string& extra) {
    auto lock = server_->store().Lock();
    auto st = server_->store().db().Prepare(
        "SELECT COUNT(*) FROM device_reports WHERE dev_id = 'DEV-ALERTS'" + extra);
    EXPECT_TRUE(st.ok());
    EXPECT_TRUE(st->Step().value_or(false));
    return st->Int(0);
  };
  EXPECT_EQ(count(""), kMaxReportTypesPerDevice - 1);
  const std::string newest =
      " AND type = 'com.example/made-up-" + std::to_string(2 * kMaxReportTypesPerDevice - 1) + "'";
  EXPECT_EQ(count(newest), 1);
  EXPECT_EQ(count(" AND type = 'com.example/made-up-0'"), 0);
}

TEST_F(ServerTest, ReplyEchoesTheHeaderAndAnswersEveryClientCommand) {
  TestDevice d = Enroll("DEV-HDR");
  Message pkg1 = Pkg1(d, "none");
  Exchange ex = Send(d, pkg1);
  ASSERT_EQ(ex.http, 200);
  const auto& h = ex.reply.header;
  EXPECT_EQ(h.session_id, pkg1.header.session_id);
  EXPECT_EQ(h.msg_id, pkg1.header.msg_id);
  EXPECT_EQ(h.target.loc_uri, "DEV-HDR");
  EXPECT_EQ(h.source.loc_uri, pkg1.header.target.loc_uri);
  ASSERT_TRUE(h.meta && h.meta->max_msg_size);
  EXPECT_EQ(*h.meta->max_msg_size, 524288u);
  // SyncHdr first, then one Status per client command in order; then only the DMAgent CSP
  // settings of a first session.
  ASSERT_EQ(ex.reply.commands.size(), pkg1.commands.size() + 1 + AgentServicesOps(ex.reply).size());
  EXPECT_TRUE(Ops(ex.reply).empty());
  EXPECT_EQ(ex.reply.commands[0].cmd_ref, "0");
  for (size_t i = 0; i < pkg1.commands.size(); ++i) {
    EXPECT_EQ(ex.reply.commands[i + 1].cmd_ref, pkg1.commands[i].cmd_id);
    EXPECT_EQ(ex.reply.commands[i + 1].data, "200");
  }
  EXPECT_TRUE(ex.reply.final);
}

// ---- the DMAgent CSP settings (agent_services.h) ----

TEST_F(ServerTest, AgentServicesAreSentAtTheFirstSessionWithTheirStatusesRecorded) {
  TestDevice d = Enroll("DEV-SVC");
  Exchange first = Send(d, Pkg1(d, "none"));
  ASSERT_EQ(first.http, 200);
  std::map<std::string, std::pair<std::string, std::string>> got;  // uri -> format, value
  for (const Command& c : AgentServicesOps(first.reply)) {
    EXPECT_EQ(c.cmd_id.size(), 36u) << "a UUID CmdID, as for profiles";
    ASSERT_EQ(c.items.size(), 1u);
    const Item& item = c.items[0];
    got[TargetOf(c)] = {item.meta && item.meta->format ? *item.meta->format : "",
                        item.data ? item.data->text : ""};
  }
  const std::string base = server_->BaseUrl();
  const std::map<std::string, std::pair<std::string, std::string>> want = {
      {kComplianceAlertNode, {"int", "1"}},
      {kPinResetUrlNode, {"chr", base + "/PinReset/recover"}},
      {kPinResetPublicKeyNode, {"chr", PinResetPublicKey()}},
      {kHelloCertificateUrlNode, {"chr", base + "/EnrollmentServer/hello-certificate"}},
      {kFederationLoginUrlNode, {"chr", base + "/federation/login"}},
      {kUserTokenUrlNode, {"chr", base + "/oauth2/token"}}};
  EXPECT_EQ(got, want);

  // Statuses land in the command table like a profile's; 405 from an older agent is kept.
  Exchange end = Send(d, Answer(d, first.reply, [](const Command& c) {
                        return TargetOf(c) == kFederationLoginUrlNode ? 405 : 200;
                      }));
  EXPECT_TRUE(AgentServicesOps(end.reply).empty());
  {
    auto lock = server_->store().Lock();
    auto st = server_->store().db().Prepare(
        "SELECT loc_uri, state, status_code FROM commands WHERE dev_id = 'DEV-SVC'");
    ASSERT_TRUE(st.ok());
    std::map<std::string, int> codes;
    while (*st->Step()) {
      EXPECT_EQ(st->Text(1), "acked") << st->Text(0);
      codes[st->Text(0)] = static_cast<int>(st->Int(2));
    }
    EXPECT_EQ(codes.size(), 6u);
    EXPECT_EQ(codes[kComplianceAlertNode], 200);
    EXPECT_EQ(codes[kFederationLoginUrlNode], 405);
  }

  // A later session: the device has them, nothing is re-sent (not even the failed one).
  Exchange second = Send(d, Pkg1(d, "none"));
  EXPECT_TRUE(AgentServicesOps(second.reply).empty());
}

TEST_F(ServerTest, ChangedAgentServicesAreSentAgainAfterARestart) {
  TestDevice d = Enroll("DEV-SVC");
  Exchange first = Send(d, Pkg1(d, "none"));
  Send(d, Answer(d, first.reply, [](const Command&) { return 200; }));
  const std::string old_base = server_->BaseUrl();

  // The server restarts on the same state under another port: its URLs change, its key and
  // the subscription do not; only what changed goes out, once.
  server_.reset();
  ServerOptions options;
  options.state_dir = dir_ / "state";
  options.clock = &clock_;
  options.password_kdf = crypto::ScryptParams::ForTests();
  options.pin_reset_rsa_bits = 2048;
  auto restarted = DmServer::Start(options);
  ASSERT_TRUE(restarted.ok()) << restarted.error().ToString();
  server_ = std::move(*restarted);
  ASSERT_NE(server_->BaseUrl(), old_base);
  d.client =
      Client(d.cert_pem, d.key_pem.Clone(), server_->BaseUrl() + "/ManagementServer/MDM.svc");

  Exchange next = Send(d, Pkg1(d, "none"));
  std::map<std::string, std::string> got;
  for (const Command& c : AgentServicesOps(next.reply)) got[TargetOf(c)] = c.items[0].data->text;
  const std::string base = server_->BaseUrl();
  EXPECT_EQ(got, (std::map<std::string, std::string>{
                     {kPinResetUrlNode, base + "/PinReset/recover"},
                     {kHelloCertificateUrlNode, base + "/EnrollmentServer/hello-certificate"},
                     {kFederationLoginUrlNode, base + "/federation/login"},
                     {kUserTokenUrlNode, base + "/oauth2/token"}}));
  Send(d, Answer(d, next.reply, [](const Command&) { return 200; }));
  EXPECT_TRUE(AgentServicesOps(Send(d, Pkg1(d, "none")).reply).empty());
}

// ---- targeting ----

class TargetingTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    AddUser("alice@fabrikam.test", "alice-pw");
    AddUser("bob@fabrikam.test", "bob-pw");
    AddUser("carol@fabrikam.test", "carol-pw");
    AdminOk("group.add", {{"name", "Staff"}, {"kind", "user"}});
    AdminOk("group.add", {{"name", "Contractors"}, {"kind", "user"}});
    AdminOk("group.member", {{"group", "Staff"}, {"member", "alice@fabrikam.test"}});
    AdminOk("group.member", {{"group", "Staff"}, {"member", "carol@fabrikam.test"}});
    AdminOk("group.member", {{"group", "Contractors"}, {"member", "carol@fabrikam.test"}});
    AdminOk("profile.add",
            {{"name", "PIN"},
             {"settings", {{{"uri", kUserPinUri}, {"value", "6"}, {"format", "int"}}}}});
    AdminOk("assign", {{"profile", "PIN"}, {"group", "Staff"}});
    AdminOk("assign", {{"profile", "PIN"}, {"group", "Contractors"}, {"mode", "exclude"}});
  }
};

TEST_F(TargetingTest, UserSettingsOnlyReachTheSignedInUserOfTheGroup) {
  TestDevice d = Enroll("DEV-SHARED", "alice@fabrikam.test");
  // Nobody signed in: nothing, and the report says what it waits for.
  EXPECT_TRUE(Ops(Send(d, Pkg1(d, "none")).reply).empty());
  json row = Row("DEV-SHARED", "alice@fabrikam.test", Expanded(kUserPinUri));
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row.at("status"), "Pending");
  EXPECT_NE(row.at("reason").get<std::string>().find("alice@fabrikam.test to sign in"),
            std::string::npos);

  // Bob is outside the group: nothing.
  EXPECT_TRUE(Ops(Send(d, Pkg1(d, "user", "bob@fabrikam.test")).reply).empty());
  EXPECT_TRUE(Row("DEV-SHARED", "bob@fabrikam.test", Expanded(kUserPinUri)).is_null());

  // Another user signed in on the device: "others" holds user-targeted settings too.
  EXPECT_TRUE(Ops(Send(d, Pkg1(d, "others", "alice@fabrikam.test")).reply).empty());

  // Alice signed in: her setting, with the tenant id filled in.
  auto ops = Ops(Send(d, Pkg1(d, "user", "alice@fabrikam.test")).reply);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(TargetOf(ops[0]), Expanded(kUserPinUri));
  EXPECT_EQ(ops[0].type, CommandType::kReplace);
}

TEST_F(TargetingTest, UserSectionOfTheReportUpdatesThatUsersSettings) {
  TestDevice d = Enroll("DEV-SHARED", "alice@fabrikam.test");
  Exchange ex = Send(d, Pkg1(d, "user", "alice@fabrikam.test"));
  ASSERT_EQ(Ops(ex.reply).size(), 1u);
  Send(d, Answer(d, ex.reply, [](const Command&) { return 200; }));
  EXPECT_EQ(Row("DEV-SHARED", "alice@fabrikam.test", Expanded(kUserPinUri)).at("status"),
            "Succeeded");
  // The device names the user by account name; its device section says nothing about ./User/.
  const std::string report =
      "<DMAgentReport version=\"1\"><Device><Setting "
      "name=\"PassportForWork/PINComplexity/MinimumPINLength\" state=\"Error\"/></Device>"
      "<User name=\"alice\"><Setting name=\"PassportForWork/PINComplexity/MinimumPINLength\" "
      "state=\"Pending\" reason=\"takes effect at alice's next sign-in\"/>"
      "<Recovery CanReset=\"NonDestructiveOnly\" reason=\"\"/></User></DMAgentReport>";
  Send(d, Pkg1(d, "user", "alice@fabrikam.test", {AlertItem(kReportAlertType, report, "xml")}));
  json row = Row("DEV-SHARED", "alice@fabrikam.test", Expanded(kUserPinUri));
  EXPECT_EQ(row.at("status"), "Pending");
  EXPECT_EQ(row.at("reason"), "takes effect at alice's next sign-in");
  EXPECT_EQ(row.at("can_reset"), "NonDestructiveOnly");
}

TEST_F(TargetingTest, ExcludeWinsOverInclude) {
  TestDevice d = Enroll("DEV-CAROL", "carol@fabrikam.test");
  EXPECT_TRUE(Ops(Send(d, Pkg1(d, "user", "carol@fabrikam.test")).reply).empty());
  EXPECT_TRUE(Row("DEV-CAROL", "carol@fabrikam.test", Expanded(kUserPinUri)).is_null());
  // Out of the excluding group, the include applies.
  AdminOk("group.member",
          {{"group", "Contractors"}, {"member", "carol@fabrikam.test"}, {"remove", true}});
  EXPECT_EQ(Ops(Send(d, Pkg1(d, "user", "carol@fabrikam.test")).reply).size(), 1u);
}

TEST_F(TargetingTest, DeviceGroupExclusionAlsoStopsUserTargetedProfiles) {
  AdminOk("group.add", {{"name", "Labs"}, {"kind", "device"}});
  AdminOk("group.member", {{"group", "Labs"}, {"member", "DEV-LAB"}});
  AdminOk("assign", {{"profile", "PIN"}, {"group", "Labs"}, {"mode", "exclude"}});
  TestDevice d = Enroll("DEV-LAB", "alice@fabrikam.test");
  EXPECT_TRUE(Ops(Send(d, Pkg1(d, "user", "alice@fabrikam.test")).reply).empty());
}

TEST_F(TargetingTest, AllDevicesGroupHoldsEveryDeviceOfTheTenant) {
  AdminOk("group.add", {{"name", "All devices"}, {"kind", "device"}, {"all", true}});
  AdminOk("profile.add",
          {{"name", "Web"}, {"settings", {{{"uri", kWebSignInUri}, {"value", "idp.test"}}}}});
  AdminOk("assign", {{"profile", "Web"}, {"group", "All devices"}});
  // Devices enrolled before and after the assignment both get it, listed nowhere.
  TestDevice a = Enroll("DEV-ALL-A");
  TestDevice b = Enroll("DEV-ALL-B");
  for (TestDevice* d : {&a, &b}) {
    auto ops = Ops(Send(*d, Pkg1(*d, "none")).reply);
    ASSERT_EQ(ops.size(), 1u) << d->dev_id;
    EXPECT_EQ(TargetOf(ops[0]), kWebSignInUri);
  }
  // Its membership is not a list: adding a member is refused, and an exclude still wins.
  auto add = RunAdmin(server_->store(), "group.member",
                      {{"group", "All devices"}, {"member", "DEV-ALL-C"}});
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(add.error().code(), Code::kFailedPrecondition);
  AdminOk("group.add", {{"name", "Kiosks"}, {"kind", "device"}});
  AdminOk("group.member", {{"group", "Kiosks"}, {"member", "DEV-ALL-C"}});
  AdminOk("assign", {{"profile", "Web"}, {"group", "Kiosks"}, {"mode", "exclude"}});
  TestDevice c = Enroll("DEV-ALL-C");
  EXPECT_TRUE(Ops(Send(c, Pkg1(c, "none")).reply).empty());
}

// Red-team finding: the Alert 1224 user was a bare UPN, so any device could claim any user of
// its tenant and receive that user's settings.
TEST_F(TargetingTest, ABareUserNameOrAnInvalidTokenGetsNoUserSettings) {
  TestDevice d = Enroll("DEV-CLAIM", "alice@fabrikam.test");
  auto claiming = [&](const std::string& data) {
    Message m = Pkg1(d, "user");
    m.commands.insert(m.commands.begin() + 2,
                      syncml::MakeAlert("9", 1224, {AlertItem(kUserAlertType, data)}));
    return Ops(Send(d, m).reply);
  };
  EXPECT_TRUE(claiming("alice@fabrikam.test").empty());
  // Signed by another key under the IdP's name.
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  auto impostor = UserTokenSigner::Create(std::move(key->private_pem), server_->IdpBaseUrl());
  ASSERT_TRUE(impostor.ok());
  auto forged = impostor->Issue(kTenantId, "alice@fabrikam.test", server_->store().Now(),
                                std::chrono::minutes(10), crypto::OsRandom());
  ASSERT_TRUE(forged.ok());
  EXPECT_TRUE(claiming(*forged).empty());
  // A real token, expired.
  auto real = testing::UserTokenFor(*server_, dir_ / "state", "alice@fabrikam.test");
  ASSERT_TRUE(real.ok());
  clock_.Advance(std::chrono::hours(2));
  EXPECT_TRUE(claiming(*real).empty());
  {
    auto lock = server_->store().Lock();
    auto device = server_->store().FindDevice("DEV-CLAIM");
    ASSERT_TRUE(device.ok() && *device);
    EXPECT_EQ((*device)->signed_in_upn, "");
  }
  // A valid one: her setting.
  auto fresh = testing::UserTokenFor(*server_, dir_ / "state", "alice@fabrikam.test");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(claiming(*fresh).size(), 1u);
}

TEST_F(TargetingTest, UserOfAnotherTenantIsNotTreatedAsSignedIn) {
  AdminOk("tenant.add", {{"name", "Other"}});
  AdminOk("user.add", {{"tenant", "Other"},
                       {"upn", "mallory@other.test"},
                       {"password", "x"},
                       {"totp_secret", kTotpBase32}});
  TestDevice d = Enroll("DEV-T");
  EXPECT_TRUE(Ops(Send(d, Pkg1(d, "user", "mallory@other.test")).reply).empty());
  EXPECT_TRUE(Report().at("rows").empty());
}

// ---- statuses, retries, reports ----

class DeliveryTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    AdminOk("group.add", {{"name", "All"}, {"kind", "device"}});
    AdminOk("group.member", {{"group", "All"}, {"member", "DEV-1"}});
  }
  void Assign(const std::string& name, json settings) {
    AdminOk("profile.add", {{"name", name}, {"settings", settings}});
    AdminOk("assign", {{"profile", name}, {"group", "All"}});
  }
};

TEST_F(DeliveryTest, StatusesBecomePerSettingStatus) {
  Assign("Hello", {{{"uri", kHelloUri}, {"value", "true"}, {"format", "bool"}},
                   {{"uri", kWebSignInUri}, {"value", "idp.fabrikam.test"}}});
  TestDevice d = Enroll("DEV-1");
  Exchange ex = Send(d, Pkg1(d, "none"));
  auto ops = Ops(ex.reply);
  ASSERT_EQ(ops.size(), 2u);
  // UUID CmdIDs, one command per setting.
  EXPECT_EQ(ops[0].cmd_id.size(), 36u);
  EXPECT_NE(ops[0].cmd_id, ops[1].cmd_id);
  EXPECT_EQ(Row("DEV-1", "", Expanded(kHelloUri)).at("status"), "Pending");

  Exchange end = Send(d, Answer(d, ex.reply, [](const Command& c) {
                        return TargetOf(c) == kWebSignInUri ? 405 : 200;
                      }));
  EXPECT_TRUE(Ops(end.reply).empty());  // nothing left: the session ends
  json hello = Row("DEV-1", "", Expanded(kHelloUri));
  EXPECT_EQ(hello.at("status"), "Succeeded");
  EXPECT_EQ(hello.at("code"), 200);
  json web = Row("DEV-1", "", kWebSignInUri);
  EXPECT_EQ(web.at("status"), "Failed");
  EXPECT_EQ(web.at("code"), 405);

  // The device's report (1226, the agent's format): the applied setting waits for a reboot;
  // the user's CanReset.
  auto agent_report = [](const std::string& state, const std::string& can_reset) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DMAgentReport version=\"1\">\n"
           "  <Device joinType=\"AzureAdJoined\" trustModel=\"CloudKerberos\" tpm=\"true\" "
           "biometricSensor=\"false\">\n"
           "    <Setting name=\"PassportForWork/EnablePinRecovery\" state=\"" +
           state +
           "\" source=\"MDM (device)\" desired=\"true\" takesEffect=\"AfterReboot\" "
           "corrective=\"false\" reason=\"takes effect after the reboot step\"/>\n"
           "    <Setting name=\"Authentication/ConfigureWebSignInAllowedUrls\" "
           "state=\"Succeeded\" source=\"MDM (device)\" takesEffect=\"Immediately\" "
           "corrective=\"false\" reason=\"\"/>\n"
           "  </Device>\n  <User name=\"alice@fabrikam.test\">\n    <Recovery CanReset=\"" +
           can_reset + "\" reason=\"no protector yet\"/>\n  </User>\n</DMAgentReport>\n";
  };
  Send(
      d,
      Pkg1(d, "none", "",
           {AlertItem(kReportAlertType, agent_report("PendingReboot", "DestructiveOnly"), "xml")}));
  hello = Row("DEV-1", "", Expanded(kHelloUri));
  EXPECT_EQ(hello.at("status"), "PendingReboot");
  EXPECT_EQ(hello.at("reason"), "takes effect after the reboot step");
  // A report cannot turn the failed setting into a success.
  EXPECT_EQ(Row("DEV-1", "", kWebSignInUri).at("status"), "Failed");
  json recovery = Row("DEV-1", "alice@fabrikam.test", "");
  ASSERT_FALSE(recovery.is_null());
  EXPECT_EQ(recovery.at("can_reset"), "DestructiveOnly");

  // After the reboot the device reports success and the user can reset without losing keys.
  Send(d, Pkg1(d, "none", "",
               {AlertItem(kReportAlertType,
                          agent_report("Succeeded", "DestructiveAndNonDestructive"), "xml")}));
  EXPECT_EQ(Row("DEV-1", "", Expanded(kHelloUri)).at("status"), "Succeeded");
  EXPECT_EQ(Row("DEV-1", "alice@fabrikam.test", "").at("can_reset"),
            "DestructiveAndNonDestructive");
  std::string table = FormatReportTable(Report());
  EXPECT_NE(table.find("CANRESET"), std::string::npos);
  EXPECT_NE(table.find("405 405 command not allowed"), std::string::npos);
}

// The operator's view of a session: one line when it ends, with device, session, user,
// duration and what the commands did, however many messages it took.
TEST_F(DeliveryTest, EachSessionIsLoggedOnceWhenItEnds) {
  Assign("Hello", {{{"uri", kHelloUri}, {"value", "true"}, {"format", "bool"}},
                   {{"uri", kWebSignInUri}, {"value", "idp.fabrikam.test"}}});
  TestDevice d = Enroll("DEV-1");
  ::dm::testing::LogCapture log(spdlog::level::info);
  Exchange ex = Send(d, Pkg1(d, "none"));
  EXPECT_EQ(log.Count("OMA-DM session ended"), 0u) << "the session is not over yet";
  clock_.Advance(std::chrono::milliseconds(1250));
  Exchange end = Send(d, Answer(d, ex.reply, [](const Command& c) {
                        return TargetOf(c) == kWebSignInUri ? 405 : 200;
                      }));
  // Two settings and the six DMAgent service settings of a first session; one refused.
  ASSERT_TRUE(Ops(end.reply).empty());
  EXPECT_EQ(log.Count("OMA-DM session ended"), 1u) << log.text();
  EXPECT_EQ(log.Count("OMA-DM session ended: user (none), 1250 ms, 2 message(s), 8 command(s) "
                      "sent, 1 failed, 7 acknowledged, HTTP 200 device_id=DEV-1 session_id="),
            1u)
      << log.text();
  // The next session starts its own tally.
  Send(d, Pkg1(d, "none"));
  EXPECT_EQ(log.Count("1 message(s), 0 command(s) sent, 0 failed, 0 acknowledged, HTTP 200"), 1u)
      << log.text();
}

// SIGTERM: a session under way is served to its end; a new one is told to come back later.
TEST_F(DeliveryTest, DrainFinishesSessionsUnderWayAndRefusesNewOnes) {
  Assign("Hello", {{{"uri", kHelloUri}, {"value", "true"}, {"format", "bool"}}});
  TestDevice busy = Enroll("DEV-1");  // the fixture's group holds DEV-1
  TestDevice late = Enroll("DEV-2");
  Exchange ex = Send(busy, Pkg1(busy, "none"));
  ASSERT_FALSE(Ops(ex.reply).empty());
  size_t cut_short = 99;
  std::thread drain([&] { cut_short = server_->Drain(std::chrono::seconds(20)); });
  // Refused until BeginDrain has run; the drain thread starts at once.
  std::optional<transport::HttpResponse> refused;
  for (int i = 0; i < 200 && !refused; ++i) {
    auto r = late.client->PostOnce("", syncml::Encode(Pkg1(late, "none")));
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    if (r->status == 503) refused = *r;
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(refused) << "a new session was still served while draining";
  EXPECT_EQ(refused->Header("Retry-After").value_or(""), std::to_string(kDrainRetryAfterSeconds));
  // The busy device's session goes on to its end.
  Exchange end = Send(busy, Answer(busy, ex.reply, [](const Command&) { return 200; }));
  EXPECT_EQ(end.http, 200);
  EXPECT_TRUE(Ops(end.reply).empty());
  drain.join();
  EXPECT_EQ(cut_short, 0u);
  EXPECT_EQ(Row("DEV-1", "", Expanded(kHelloUri)).at("status"), "Succeeded");
}

// A device that never answers holds the stop only for the grace period.
TEST_F(DeliveryTest, DrainGivesUpOnASilentSessionAfterTheGrace) {
  Assign("Hello", {{{"uri", kHelloUri}, {"value", "true"}, {"format", "bool"}}});
  TestDevice d = Enroll("DEV-1");
  ASSERT_FALSE(Ops(Send(d, Pkg1(d, "none")).reply).empty());
  EXPECT_EQ(server_->Drain(std::chrono::milliseconds(100)), 1u);
}

// Red-team finding: device-supplied strings reached the admin's terminal raw.
TEST(ReportTableTest, DeviceSuppliedStringsAreEscaped) {
  const json report = {{"rows",
                        {{{"device", "DEV-1"},
                          {"user", "eve\x1b]0;owned\x07"},
                          {"profile", "P"},
                          {"setting", "./Vendor/MSFT/Policy/Config/A/B"},
                          {"status", "Failed"},
                          {"code", 500},
                          {"reason", "bad\nDEV-2  (device)  P  S  Succeeded"},
                          {"can_reset", nullptr}}}},
                       {"devices", json::array()}};
  const std::string table = FormatReportTable(report);
  EXPECT_EQ(table.find('\x1b'), std::string::npos) << table;
  EXPECT_EQ(table.find('\x07'), std::string::npos) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2) << table;  // header and one row
  EXPECT_NE(table.find("eve\\x1b]0;owned\\x07"), std::string::npos) << table;
}

TEST_F(DeliveryTest, ConflictFromTheDmAgentReportResults) {
  Assign("Hello", {{{"uri", kHelloUri}, {"value", "true"}, {"format", "bool"}},
                   {{"raw", "<Get><CmdID>1</CmdID><Item><Target><LocURI>" +
                                std::string(kReportUri) + "</LocURI></Target></Item></Get>"}}});
  TestDevice d = Enroll("DEV-1");
  Exchange ex = Send(d, Pkg1(d, "none"));
  auto ops = Ops(ex.reply);
  ASSERT_EQ(ops.size(), 2u);
  Message answer = Answer(d, ex.reply, [](const Command&) { return 200; });
  Command results = syncml::MakeCommand(CommandType::kResults, "99");
  results.msg_ref = ex.reply.header.msg_id;
  results.cmd_ref = ops[1].cmd_id;
  results.cmd = "Get";
  Item item = LocItem(kReportUri, "<DMAgentReport><Setting uri=\"" + Expanded(kHelloUri) +
                                      "\" state=\"Conflict\" reason=\"LocalAdmin sets false\"/>"
                                      "</DMAgentReport>");
  results.items.push_back(item);
  answer.commands.push_back(results);
  Send(d, answer);
  json hello = Row("DEV-1", "", Expanded(kHelloUri));
  EXPECT_EQ(hello.at("status"), "Conflict");
  EXPECT_EQ(hello.at("reason"), "LocalAdmin sets false");
  auto lock = server_->store().Lock();
  auto xml = LatestDeviceReport(server_->store(), "DEV-1");
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("Conflict"), std::string::npos);
}

TEST_F(DeliveryTest, UnansweredCommandsAreResentNextSessionNotInTheSameOne) {
  Assign("Web", {{{"uri", kWebSignInUri}, {"value", "idp.fabrikam.test"}}});
  TestDevice d = Enroll("DEV-1");
  auto first = Ops(Send(d, Pkg1(d, "none")).reply);
  ASSERT_EQ(first.size(), 1u);
  // The device answers only the SyncHdr: the command stays pending but is not re-sent in this
  // session (that would keep the session open forever).
  Message only_hdr = Header(d, d.dev_id);
  only_hdr.commands.push_back(syncml::MakeStatus("1", "1", "0", "SyncHdr", 200));
  EXPECT_TRUE(Ops(Send(d, only_hdr).reply).empty());
  // Next session: re-sent with the same CmdID.
  auto again = Ops(Send(d, Pkg1(d, "none")).reply);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].cmd_id, first[0].cmd_id);
}

TEST_F(DeliveryTest, AddAnswered418IsRetriedAsReplace) {
  Assign("Hello", {{{"uri", kHelloUri}, {"value", "true"}, {"format", "bool"}, {"verb", "Add"}}});
  TestDevice d = Enroll("DEV-1");
  Exchange ex = Send(d, Pkg1(d, "none"));
  auto ops = Ops(ex.reply);
  ASSERT_EQ(ops.size(), 1u);
  ASSERT_EQ(ops[0].type, CommandType::kAdd);
  Exchange retry = Send(d, Answer(d, ex.reply, [](const Command&) { return 418; }));
  auto replace = Ops(retry.reply);
  ASSERT_EQ(replace.size(), 1u);
  EXPECT_EQ(replace[0].type, CommandType::kReplace);
  EXPECT_NE(replace[0].cmd_id, ops[0].cmd_id);
  EXPECT_EQ(TargetOf(replace[0]), Expanded(kHelloUri));
  ASSERT_TRUE(replace[0].items[0].data);
  EXPECT_EQ(replace[0].items[0].data->text, "true");
  EXPECT_EQ(Row("DEV-1", "", Expanded(kHelloUri)).at("status"), "Pending");
  Send(d, Answer(d, retry.reply, [](const Command&) { return 200; }));
  EXPECT_EQ(Row("DEV-1", "", Expanded(kHelloUri)).at("status"), "Succeeded");
}

TEST_F(DeliveryTest, FailedAtomicNamesTheCulprit) {
  const std::string raw =
      "<Atomic><CmdID>1</CmdID><Replace><CmdID>2</CmdID><Item><Target><LocURI>./Device/Vendor/"
      "MSFT/Policy/Config/A/One</LocURI></Target><Data>1</Data></Item></Replace><Replace><CmdID>"
      "3</CmdID><Item><Target><LocURI>./Device/Vendor/MSFT/Policy/Config/A/Two</LocURI></Target>"
      "<Data>2</Data></Item></Replace></Atomic>";
  Assign("Atomic", {{{"raw", raw}}});
  TestDevice d = Enroll("DEV-1");
  Exchange ex = Send(d, Pkg1(d, "none"));
  auto ops = Ops(ex.reply);
  ASSERT_EQ(ops.size(), 1u);
  ASSERT_EQ(ops[0].children.size(), 2u);
  Message answer = Header(d, d.dev_id);
  answer.commands.push_back(syncml::MakeStatus("1", "1", "0", "SyncHdr", 200));
  answer.commands.push_back(syncml::MakeStatus("2", "1", ops[0].cmd_id, "Atomic", 507));
  answer.commands.push_back(
      syncml::MakeStatus("3", "1", ops[0].children[0].cmd_id, "Replace", 216));
  answer.commands.push_back(
      syncml::MakeStatus("4", "1", ops[0].children[1].cmd_id, "Replace", 500));
  Send(d, answer);
  json row = Row("DEV-1", "", "./Device/Vendor/MSFT/Policy/Config/A/One");
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row.at("status"), "Failed");
  EXPECT_EQ(row.at("code"), 507);
  EXPECT_NE(row.at("reason").get<std::string>().find("A/Two: 500"), std::string::npos);
}

TEST_F(DeliveryTest, UnenrollmentAlertEndsManagement) {
  Assign("Web", {{{"uri", kWebSignInUri}, {"value", "idp.fabrikam.test"}}});
  TestDevice d = Enroll("DEV-1");
  ASSERT_EQ(Ops(Send(d, Pkg1(d, "none")).reply).size(), 1u);  // delivered, never answered
  Exchange ex = Send(
      d,
      Pkg1(d, "none", "", {AlertItem("com.microsoft:mdm.unenrollment.userrequest", "1", "int")}));
  EXPECT_TRUE(Ops(ex.reply).empty());
  EXPECT_EQ(Send(d, Pkg1(d, "none")).http, 403);
  EXPECT_EQ(Row("DEV-1", "", kWebSignInUri).at("reason"), "device unenrolled");
  // Enrolled again, the device gets everything assigned to it again.
  TestDevice again = Enroll("DEV-1");
  auto ops = Ops(Send(again, Pkg1(again, "none")).reply);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(TargetOf(ops[0]), kWebSignInUri);
}

TEST_F(DeliveryTest, ChangedProfileSupersedesTheCommandInFlight) {
  Assign("Web", {{{"uri", kWebSignInUri}, {"value", "old.fabrikam.test"}, {"verb", "Add"}}});
  TestDevice d = Enroll("DEV-1");
  Exchange ex = Send(d, Pkg1(d, "none"));
  ASSERT_EQ(Ops(ex.reply).size(), 1u);
  AdminOk("profile.add",
          {{"name", "Web"},
           {"replace", true},
           {"settings", {{{"uri", kWebSignInUri}, {"value", "new.fabrikam.test"}}}}});
  // The old Add is answered 418 after the change: no retry of the stale value; the new value
  // goes out instead.
  auto ops = Ops(Send(d, Answer(d, ex.reply, [](const Command&) { return 418; })).reply);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].type, CommandType::kReplace);
  ASSERT_TRUE(ops[0].items[0].data);
  EXPECT_EQ(ops[0].items[0].data->text, "new.fabrikam.test");
  EXPECT_EQ(Row("DEV-1", "", kWebSignInUri).at("status"), "Pending");
}

// ---- PIN reset service ----

class PinResetTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    AddUser("alice@fabrikam.test", "alice-pw");
    device_ = Enroll("DEV-PIN", "alice@fabrikam.test");
    std::string public_key = PinResetPublicKey();
    auto random = crypto::OsRandom().Secret(32);
    ASSERT_TRUE(random.ok());
    protector_ = std::move(*random);
    auto encrypted = crypto::RsaOaepEncrypt(
        public_key, protector_.span(), container::PinResetProtectorLabel("alice@fabrikam.test"));
    ASSERT_TRUE(encrypted.ok()) << encrypted.error().ToString();
    encrypted_b64_ = crypto::Base64Encode(*encrypted);
  }
  transport::HttpResponse Recover(const std::string& password, const std::string& totp,
                                  transport::HttpsClient* client = nullptr) {
    auto resp = PostJson(client ? *client : *device_.client, "/PinReset/recover",
                         {{"upn", "alice@fabrikam.test"},
                          {"password", password},
                          {"totp", totp},
                          {"encrypted_protector", encrypted_b64_}});
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    return resp.ok() ? *resp : transport::HttpResponse{};
  }
  TestDevice device_;
  SecretBytes protector_;
  std::string encrypted_b64_;
};

TEST_F(PinResetTest, RecoversTheProtectorWithBothConsentsPasswordAndTotp) {
  AdminOk("consent", {{"app", "service"}});
  AdminOk("consent", {{"app", "client"}});
  auto resp = Recover("alice-pw", TotpNow());
  ASSERT_EQ(resp.status, 200) << resp.body;
  auto protector = crypto::Base64Decode(json::parse(resp.body).at("protector").get<std::string>());
  ASSERT_TRUE(protector.ok());
  EXPECT_EQ(SecretBytes(protector->data(), protector->size()), protector_);
  // The same code is not accepted twice.
  EXPECT_EQ(Recover("alice-pw", TotpNow()).status, 401);
  clock_.Advance(std::chrono::seconds(30));
  EXPECT_EQ(Recover("alice-pw", TotpNow()).status, 200);
}

// Bob signing in on Alice's device cannot release Alice's protector: it is labelled with her.
TEST_F(PinResetTest, AnotherUsersSignInDoesNotReleaseTheProtector) {
  AdminOk("consent", {{"app", "service"}});
  AdminOk("consent", {{"app", "client"}});
  AddUser("bob@fabrikam.test", "bob-pw");
  auto resp = PostJson(*device_.client, "/PinReset/recover",
                       {{"upn", "bob@fabrikam.test"},
                        {"password", "bob-pw"},
                        {"totp", TotpNow()},
                        {"encrypted_protector", encrypted_b64_}});
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->status, 400) << resp->body;
  EXPECT_EQ(json::parse(resp->body).value("error", ""), "invalid_protector");
}

TEST_F(PinResetTest, OneMissingConsentIsNamed) {
  AdminOk("consent", {{"app", "service"}});
  auto resp = Recover("alice-pw", TotpNow());
  EXPECT_EQ(resp.status, 403);
  json body = json::parse(resp.body);
  EXPECT_EQ(body.at("error"), "AADSTS650052");
  std::string message = body.at("message");
  EXPECT_NE(message.find("Microsoft Pin Reset Client Production"), std::string::npos) << message;
  EXPECT_NE(message.find("9115dd05-fad5-4f9c-acc7-305d08b1b04e"), std::string::npos);
  EXPECT_EQ(message.find("Microsoft Pin Reset Service Production"), std::string::npos);
  EXPECT_EQ(body.find("protector"), body.end());

  AdminOk("consent", {{"app", "client"}});
  AdminOk("consent", {{"app", "service"}, {"granted", false}});
  message = json::parse(Recover("alice-pw", TotpNow()).body).at("message");
  EXPECT_NE(message.find("Microsoft Pin Reset Service Production"), std::string::npos);
  EXPECT_NE(message.find("b8456c59-1230-44c7-a4a2-99b085333e84"), std::string::npos);
}

TEST_F(PinResetTest, WrongTotpOrWrongPasswordGetsNothing) {
  AdminOk("consent", {{"app", "service"}});
  AdminOk("consent", {{"app", "client"}});
  std::string code = TotpNow();
  std::string wrong_code = code == "000000" ? "000001" : "000000";
  auto bad_totp = Recover("alice-pw", wrong_code);
  EXPECT_EQ(bad_totp.status, 401);
  EXPECT_EQ(json::parse(bad_totp.body).at("error"), "invalid_grant");
  EXPECT_EQ(bad_totp.body.find("protector\""), std::string::npos);
  auto bad_password = Recover("alice-PW", code);
  EXPECT_EQ(bad_password.status, 401);
  EXPECT_EQ(json::parse(bad_password.body).at("error"), "invalid_grant");
  // The code was not used up by the failed attempts.
  EXPECT_EQ(Recover("alice-pw", code).status, 200);
}

TEST_F(PinResetTest, NeedsAnEnrolledDeviceCertificate) {
  AdminOk("consent", {{"app", "service"}});
  AdminOk("consent", {{"app", "client"}});
  auto anonymous = Client();
  EXPECT_EQ(Recover("alice-pw", TotpNow(), anonymous.get()).status, 401);
  // A certificate the CA issued but whose enrollment was replaced is revoked: it does not get
  // through the TLS handshake.
  std::string old_cert = device_.cert_pem;
  SecretBytes old_key = device_.key_pem.Clone();
  Enroll("DEV-PIN", "alice@fabrikam.test");
  auto stale = Client(old_cert, std::move(old_key));
  auto refused = PostJson(*stale, "/PinReset/recover", {{"upn", "alice@fabrikam.test"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("the server rejected the client certificate"),
            std::string::npos)
      << refused.error().ToString();
}

TEST_F(PinResetTest, SignInForADestructiveResetNeedsNoConsent) {
  auto sign_in = [&](const std::string& password, const std::string& totp) {
    auto resp = PostJson(*device_.client, "/PinReset/authenticate",
                         {{"upn", "alice@fabrikam.test"}, {"password", password}, {"totp", totp}});
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    return resp.ok() ? *resp : transport::HttpResponse{};
  };
  EXPECT_EQ(sign_in("alice-pw", "000000" == TotpNow() ? "000001" : "000000").status, 401);
  EXPECT_EQ(sign_in("wrong", TotpNow()).status, 401);
  auto ok = sign_in("alice-pw", TotpNow());
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body).at("authenticated"), true);
  // Recovering the protector still needs the consents.
  EXPECT_EQ(Recover("alice-pw", TotpNow()).status, 403);
}

// ---- user tokens (token_service.cpp) and Hello certificates ----

class UserTokenTest : public PinResetTest {
 protected:
  transport::HttpResponse Token(transport::HttpsClient& client, const std::string& form) {
    auto resp = client.PostOnce("/oauth2/token", form, "application/x-www-form-urlencoded");
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    return resp.ok() ? *resp : transport::HttpResponse{};
  }
  json PasswordGrant(transport::HttpsClient& client, const std::string& upn,
                     const std::string& password) {
    auto resp = Token(client, "grant_type=password&username=" + UrlEncode(upn) +
                                  "&password=" + UrlEncode(password) + "&otp=" + TotpNow());
    EXPECT_EQ(resp.status, 200) << resp.body;
    clock_.Advance(std::chrono::seconds(30));  // the next sign-in needs a fresh code
    return json::parse(resp.body, nullptr, false);
  }
  transport::HttpResponse HelloCertificate(transport::HttpsClient& client,
                                           const std::string& public_pem, const std::string& token,
                                           const json& extra = {}) {
    json body{{"public_key", public_pem}};
    if (extra.is_object()) body.update(extra);
    auto resp = client.Post("/EnrollmentServer/hello-certificate", body.dump(), "application/json",
                            {{"Authorization", "Bearer " + token}});
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    return resp.ok() ? *resp : transport::HttpResponse{};
  }
  // An assertion as the agent signs it with a Hello key (agent/runtime/user_tokens.cpp).
  std::string Assertion(const SecretBytes& key, const std::string& cert_pem, const std::string& sub,
                        const std::string& jti, int64_t lifetime = 300) {
    const int64_t now = ToUnixSeconds(clock_.Now());
    auto token =
        jws::SignEs256(key, {{"alg", "ES256"}, {"x5c", json::array({pki::PemBase64(cert_pem)})}},
                       {{"sub", sub},
                        {"aud", server_->BaseUrl() + "/oauth2/token"},
                        {"iat", now},
                        {"exp", now + lifetime},
                        {"jti", jti}});
    EXPECT_TRUE(token.ok());
    return token.ok() ? *token : "";
  }
  std::string UpnOf(const std::string& access_token) {
    auto parsed = jws::Parse(access_token);
    return parsed.ok() ? parsed->claims.value("sub", "") : "";
  }
};

// Red-team finding: anyone with an enrolled device got a certificate with CN=<any user>.
TEST_F(UserTokenTest, HelloCertificatesAreNamedAfterTheUserToken) {
  AddUser("bob@fabrikam.test", "bob-pw");
  auto hello = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(hello.ok());
  json alice = PasswordGrant(*device_.client, "alice@fabrikam.test", "alice-pw");
  const std::string token = alice.value("access_token", "");
  EXPECT_EQ(UpnOf(token), "alice@fabrikam.test");
  // The request may name Bob: the certificate still names the token's user.
  auto resp =
      HelloCertificate(*device_.client, hello->public_pem, token, {{"upn", "bob@fabrikam.test"}});
  ASSERT_EQ(resp.status, 200) << resp.body;
  auto info = pki::ParseCertificate(json::parse(resp.body).at("certificate").get<std::string>());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "alice@fabrikam.test");
  EXPECT_EQ(info->public_key_pem, hello->public_pem);
  // No token, a forged one, or an expired one: 401; no device certificate: 403.
  EXPECT_EQ(HelloCertificate(*device_.client, hello->public_pem, "").status, 401);
  EXPECT_EQ(HelloCertificate(*device_.client, hello->public_pem, "bob@fabrikam.test").status, 401);
  std::string forged = token;
  forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(HelloCertificate(*device_.client, hello->public_pem, forged).status, 401);
  EXPECT_EQ(HelloCertificate(*Client(), hello->public_pem, token).status, 403);
  clock_.Advance(std::chrono::hours(2));
  EXPECT_EQ(HelloCertificate(*device_.client, hello->public_pem, token).status, 401);
}

TEST_F(UserTokenTest, PasswordGrantThenRefreshOnThisDeviceOnly) {
  json first = PasswordGrant(*device_.client, "alice@fabrikam.test", "alice-pw");
  ASSERT_TRUE(first.contains("refresh_token"));
  EXPECT_EQ(first.at("expires_in"), 3600);
  const std::string refresh = first.at("refresh_token");
  // Only the digest is stored.
  {
    auto lock = server_->store().Lock();
    auto st = server_->store().db().Prepare("SELECT token_sha256 FROM refresh_tokens");
    ASSERT_TRUE(st.ok());
    ASSERT_TRUE(*st->Step());
    EXPECT_EQ(st->Text(0), *Sha256Hex(refresh));
  }
  auto renewed = Token(*device_.client, "grant_type=refresh_token&refresh_token=" + refresh);
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_EQ(UpnOf(json::parse(renewed.body).at("access_token")), "alice@fabrikam.test");
  EXPECT_FALSE(json::parse(renewed.body).contains("refresh_token"));

  // Another device of the tenant cannot use it, nor can anyone without a device.
  TestDevice other = Enroll("DEV-OTHER");
  auto stolen = Token(*other.client, "grant_type=refresh_token&refresh_token=" + refresh);
  EXPECT_EQ(stolen.status, 400);
  EXPECT_EQ(json::parse(stolen.body).value("error", ""), "invalid_grant");
  EXPECT_EQ(Token(*Client(), "grant_type=refresh_token&refresh_token=" + refresh).status, 403);

  // Wrong factors, unknown grants.
  auto wrong = Token(*device_.client,
                     "grant_type=password&username=alice%40fabrikam.test"
                     "&password=nope&otp=" +
                         TotpNow());
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(Token(*device_.client, "grant_type=client_credentials").status, 400);
  EXPECT_EQ(Token(*device_.client, "").status, 400);

  // Retiring the device ends its users' refresh tokens.
  AdminOk("device.retire", {{"device", "DEV-PIN"}});
  auto lock = server_->store().Lock();
  EXPECT_EQ(server_->store().RedeemRefreshToken(refresh, "DEV-PIN").status().code(),
            Code::kUnauthenticated);
}

// A PIN sign-in: the Hello key proves the user, once per assertion, on its own device only.
TEST_F(UserTokenTest, HelloKeyAssertionSignsTheUserIn) {
  auto hello = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(hello.ok());
  json alice = PasswordGrant(*device_.client, "alice@fabrikam.test", "alice-pw");
  auto issued = HelloCertificate(*device_.client, hello->public_pem, alice.at("access_token"));
  ASSERT_EQ(issued.status, 200) << issued.body;
  const std::string cert = json::parse(issued.body).at("certificate");
  const std::string grant = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

  const std::string assertion = Assertion(hello->private_pem, cert, "alice@fabrikam.test", "j1");
  auto resp = Token(*device_.client, grant + "&assertion=" + assertion);
  ASSERT_EQ(resp.status, 200) << resp.body;
  EXPECT_EQ(UpnOf(json::parse(resp.body).at("access_token")), "alice@fabrikam.test");
  EXPECT_TRUE(json::parse(resp.body).contains("refresh_token"));

  // Replayed, from another device, for another user, signed by another key, too long-lived.
  EXPECT_EQ(Token(*device_.client, grant + "&assertion=" + assertion).status, 400);
  TestDevice other = Enroll("DEV-OTHER");
  EXPECT_EQ(
      Token(*other.client, grant + "&assertion=" +
                               Assertion(hello->private_pem, cert, "alice@fabrikam.test", "j2"))
          .status,
      400);
  AddUser("bob@fabrikam.test", "bob-pw");
  EXPECT_EQ(
      Token(*device_.client,
            grant + "&assertion=" + Assertion(hello->private_pem, cert, "bob@fabrikam.test", "j3"))
          .status,
      400);
  auto stranger = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(Token(*device_.client,
                  grant + "&assertion=" +
                      Assertion(stranger->private_pem, cert, "alice@fabrikam.test", "j4"))
                .status,
            400);
  EXPECT_EQ(Token(*device_.client,
                  grant + "&assertion=" +
                      Assertion(hello->private_pem, cert, "alice@fabrikam.test", "j5", 3600))
                .status,
            400);
  // A self-made certificate for the same key is not one this server issued.
  pki::IssueOptions self;
  self.common_name = "alice@fabrikam.test";
  self.not_before = clock_.Now() - std::chrono::minutes(1);
  auto self_signed = pki::SelfSign(hello->private_pem, self);
  ASSERT_TRUE(self_signed.ok());
  EXPECT_EQ(Token(*device_.client,
                  grant + "&assertion=" +
                      Assertion(hello->private_pem, *self_signed, "alice@fabrikam.test", "j6"))
                .status,
            400);
}

TEST_F(PinResetTest, PublicKeyEndpointServesTheEnrollmentKey) {
  auto lock_free = server_->Handle({.method = "GET",
                                    .target = "/PinReset/publickey",
                                    .headers = {{"Host", "127.0.0.1"}},
                                    .body = ""},
                                   {});
  ASSERT_EQ(lock_free.status, 200);
  std::ifstream in(PathsFor(dir_ / "state").pin_reset_key);
  std::string key_pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto expected = crypto::PublicKeyPem(SecretBytes(std::string_view(key_pem)));
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(json::parse(lock_free.body).at("public_key"), *expected);
  EXPECT_EQ(json::parse(lock_free.body).at("algorithm"), "RSA-OAEP-256");
}

// ---- admin API ----

TEST_F(ServerTest, AdminApiRequiresTheBearerToken) {
  auto client = Client("", {}, server_->AdminBaseUrl());
  auto none = client->Post("/admin/v1/tenant.list", "{}", "application/json");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 401);
  auto wrong = client->Post("/admin/v1/tenant.list", "{}", "application/json",
                            {{"Authorization", "Bearer " + std::string(64, 'a')}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);
  auto almost = client->Post("/admin/v1/tenant.list", "{}", "application/json",
                             {{"Authorization", "Bearer " + admin_token_ + "x"}});
  ASSERT_TRUE(almost.ok());
  EXPECT_EQ(almost->status, 401);

  auto ok = client->Post("/admin/v1/group.add", R"({"name": "Staff", "kind": "user"})",
                         "application/json", {{"Authorization", "Bearer " + admin_token_}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto dup = client->Post("/admin/v1/group.add", R"({"name": "Staff", "kind": "user"})",
                          "application/json", {{"Authorization", "Bearer " + admin_token_}});
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup->status, 409);
  auto report = client->Post("/admin/v1/report", "", "application/json",
                             {{"Authorization", "Bearer " + admin_token_}});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->status, 200);
  EXPECT_TRUE(json::parse(report->body).contains("rows"));
}

// Red-team findings: JSON bodies were parsed whatever their size and depth; HTML pages could be
// framed by another site.
TEST_F(ServerTest, JsonBodiesAreBoundedBeforeParsingAndPagesRefuseFraming) {
  auto client = Client("", {}, server_->AdminBaseUrl());
  const std::vector<std::pair<std::string, std::string>> auth = {
      {"Authorization", "Bearer " + admin_token_}};
  auto deep =
      client->Post("/admin/v1/tenant.list", std::string(10000, '[') + std::string(10000, ']'),
                   "application/json", auth);
  ASSERT_TRUE(deep.ok());
  EXPECT_EQ(deep->status, 400) << deep->body;
  EXPECT_NE(deep->body.find("nests deeper"), std::string::npos) << deep->body;
  const std::string big = "{\"name\": \"" + std::string(300 * 1024, 'a') + "\"}";
  auto large = client->Post("/admin/v1/tenant.add", big, "application/json", auth);
  ASSERT_TRUE(large.ok());
  EXPECT_EQ(large->status, 413) << large->body;
  // Brackets inside strings are text, not nesting.
  auto text = client->Post("/admin/v1/group.add",
                           R"({"name": ")" + std::string(100, '[') + R"(", "kind": "user"})",
                           "application/json", auth);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->status, 200) << text->body;

  auto page = server_->Handle(
      {.method = "GET", .target = "/login", .headers = {{"Host", "127.0.0.1"}}, .body = ""}, {});
  EXPECT_EQ(page.Header("X-Frame-Options").value_or(""), "DENY");
  EXPECT_NE(page.Header("Content-Security-Policy").value_or("").find("frame-ancestors 'none'"),
            std::string::npos);
}

TEST_F(ServerTest, StateFilesWithSecretsArePrivate) {
  const StatePaths paths = PathsFor(dir_ / "state");
  for (const fs::path& p :
       {paths.ca_key, paths.server_key, paths.pin_reset_key, paths.admin_token, paths.database}) {
    auto perms = fs::status(p).permissions();
    EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none)
        << p.string();
  }
}

// ---- identity ----

// Red-team finding: passwords and one-time codes could be guessed at /login without limit.
TEST_F(ServerTest, SignInIsThrottledPerUserAndPerAddressThenLocked) {
  AddUser("alice@fabrikam.test", "alice-pw");
  auto login = [&](const std::string& user, const std::string& pw, const std::string& otp,
                   const std::string& from = "192.0.2.7") {
    transport::PeerInfo peer;
    peer.remote_address = from;
    return server_
        ->Handle({.method = "POST",
                  .target = "/login",
                  .headers = {{"Host", "127.0.0.1"}},
                  .body = "username=" + user + "&password=" + pw + "&otp=" + otp},
                 peer)
        .status;
  };
  const std::string alice = "alice%40fabrikam.test";
  for (int i = 0; i < kSignInFreeFailures; ++i) EXPECT_EQ(login(alice, "wrong", "000000"), 401);
  // Now even the right password and code wait, and the answer does not say which was wrong.
  EXPECT_EQ(login(alice, "alice-pw", TotpNow()), 429);
  clock_.Advance(std::chrono::seconds(SignInDelaySeconds(kSignInFreeFailures)));
  EXPECT_EQ(login(alice, "alice-pw", TotpNow()), 200);  // and the count starts again
  EXPECT_EQ(login(alice, "wrong", "000000"), 401);

  // Per address: failures for many names from one source slow that source down, not others.
  for (int i = 0; i < kSignInFreeFailures; ++i) {
    EXPECT_EQ(login("u" + std::to_string(i) + "%40fabrikam.test", "x", "1", "198.51.100.9"), 401);
  }
  EXPECT_EQ(login("nobody%40fabrikam.test", "x", "1", "198.51.100.9"), 429);
  // An unknown name is throttled exactly like a known one.
  for (int i = 0; i < kSignInFreeFailures; ++i) {
    clock_.Advance(std::chrono::hours(1));
    EXPECT_EQ(login("ghost%40fabrikam.test", "x", "1", "203.0.113." + std::to_string(i)), 401);
  }
  EXPECT_EQ(login("ghost%40fabrikam.test", "x", "1", "203.0.113.99"), 429);

  // Enough failures lock the user until the admin lifts it; waiting does not help.
  for (int i = 0; i < kSignInLockAfter; ++i) {
    clock_.Advance(std::chrono::hours(1));
    login(alice, "wrong", "000000", "203.0.113." + std::to_string(10 + i));
  }
  clock_.Advance(std::chrono::hours(24));
  EXPECT_EQ(login(alice, "alice-pw", TotpNow()), 429);
  AdminOk("user.unlock", {{"upn", "alice@fabrikam.test"}});
  EXPECT_EQ(login(alice, "alice-pw", TotpNow()), 200);
}

TEST_F(ServerTest, FederatedUsersSignInAtTheIdpHostOnly) {
  AdminOk("tenant.add", {{"name", "Contoso"}, {"federated", true}});
  AdminOk("user.add", {{"tenant", "Contoso"},
                       {"upn", "dan@contoso.test"},
                       {"password", "dan-pw"},
                       {"totp_secret", kTotpBase32}});
  AddUser("alice@fabrikam.test", "alice-pw");
  auto get = [&](const std::string& host, const std::string& target) {
    return server_->Handle(
        {.method = "GET", .target = target, .headers = {{"Host", host}}, .body = ""}, {});
  };
  json fed = json::parse(get("127.0.0.1", "/federation/login?upn=dan%40contoso.test").body);
  EXPECT_EQ(fed.at("federated"), true);
  EXPECT_EQ(fed.at("login_host"), "idp.fabrikam.test");
  EXPECT_EQ(fed.at("login_url").get<std::string>().rfind(server_->IdpBaseUrl() + "/adfs/ls/", 0),
            0u);
  json managed = json::parse(get("127.0.0.1", "/federation/login?upn=alice@fabrikam.test").body);
  EXPECT_EQ(managed.at("federated"), false);
  EXPECT_EQ(managed.at("login_host"), "127.0.0.1");
  // Red-team finding: the answer told who exists. An unknown user of a domain now gets the
  // known user's answer, byte for byte but the name.
  for (const auto& [known, unknown] : {std::pair{"dan@contoso.test", "nobody@contoso.test"},
                                       std::pair{"alice@fabrikam.test", "nobody@fabrikam.test"}}) {
    std::string a = get("127.0.0.1", std::string("/federation/login?upn=") + known).body;
    std::string b = get("127.0.0.1", std::string("/federation/login?upn=") + unknown).body;
    const std::string ka = known, ub = unknown;
    for (size_t p; (p = a.find(ka)) != std::string::npos;) a.replace(p, ka.size(), "U");
    for (size_t p; (p = b.find(ub)) != std::string::npos;) b.replace(p, ub.size(), "U");
    EXPECT_EQ(a, b) << known;
  }

  // The IdP host serves its page and nothing else; the main host does not serve the IdP page.
  auto page = get("idp.fabrikam.test:443", "/adfs/ls/?username=dan%40contoso.test");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("value=\"dan@contoso.test\""), std::string::npos);
  EXPECT_EQ(get("idp.fabrikam.test", "/EnrollmentServer/Discovery.svc").status, 404);
  EXPECT_EQ(get("127.0.0.1", "/adfs/ls/").status, 404);

  auto post = [&](const std::string& host, const std::string& target, const std::string& form) {
    return server_->Handle(
        {.method = "POST", .target = target, .headers = {{"Host", host}}, .body = form}, {});
  };
  EXPECT_EQ(post("idp.fabrikam.test", "/adfs/ls/",
                 "username=dan%40contoso.test&password=dan-pw&otp=" + TotpNow())
                .status,
            200);
  clock_.Advance(std::chrono::seconds(30));
  // A federated user cannot use the managed page, nor a managed user the IdP.
  EXPECT_EQ(
      post("127.0.0.1", "/login", "username=dan%40contoso.test&password=dan-pw&otp=" + TotpNow())
          .status,
      401);
  EXPECT_EQ(post("idp.fabrikam.test", "/adfs/ls/",
                 "username=alice%40fabrikam.test&password=alice-pw&otp=" + TotpNow())
                .status,
            401);
  EXPECT_EQ(post("127.0.0.1", "/login",
                 "username=alice%40fabrikam.test&password=alice-pw&otp=" + TotpNow())
                .status,
            200);
}

}  // namespace
}  // namespace dm::server
