// dmserver inputs found by fuzzing (tests/fuzz/fuzz_server_admin), and their relatives. Each one
// made a handler throw nlohmann's type_error 316 ("invalid UTF-8 byte") out of DmServer::Handle
// while rendering a JSON answer that quoted request or device data: an in-process caller died on
// it, the HTTPS server turned it into a bare 500, the `dmserver report --json` CLI aborted.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/syncml/codec.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "samples/server/admin.h"
#include "samples/server/management.h"
#include "samples/server/server.h"
#include "samples/server/testing/enroll_device.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kDevId[] = "DEV-REGRESSION";

class ServerRegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dm-regress-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    options_.state_dir = dir_ / "state";
    options_.clock = &clock_;
    options_.password_kdf = crypto::ScryptParams::ForTests();
    options_.pin_reset_rsa_bits = 2048;
    options_.threads = 1;
    auto server = DmServer::Start(options_);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(*server);
    std::ifstream in(PathsFor(options_.state_dir).admin_token);
    std::getline(in, token_);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  transport::HttpResponse Call(std::string method, std::string target, std::string body = "",
                               bool with_token = true,
                               const transport::PeerInfo& peer = transport::PeerInfo{}) {
    transport::HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    if (with_token) r.headers.emplace_back("Authorization", "Bearer " + token_);
    r.body = std::move(body);
    // Must not throw: errors are answers. The admin API has its own listener.
    if (r.target.rfind("/admin/", 0) == 0) return server_->HandleAdmin(r);
    return server_->Handle(r, peer);
  }

  static void ExpectJson(const transport::HttpResponse& r) {
    EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << r.body;
  }

  fs::path dir_;
  FakeClock clock_;
  ServerOptions options_;
  std::unique_ptr<DmServer> server_;
  std::string token_;
};

TEST_F(ServerRegressionTest, AdminErrorQuotingInvalidUtf8IsStillJson) {
  // tests/fuzz/regressions/fuzz_server_admin/crash-6e81...: GET /admin/v1/`report\xff\xff\xff\xcb
  // with the valid token; the 405 message quotes the operation.
  transport::HttpResponse r = Call("GET", "/admin/v1/`report\xff\xff\xff\xcb");
  EXPECT_EQ(r.status, 405);
  ExpectJson(r);
  // The same through POST (unknown operation, 404).
  r = Call("POST", "/admin/v1/\xc3\x28", "{}");
  EXPECT_EQ(r.status, 404);
  ExpectJson(r);
}

TEST_F(ServerRegressionTest, FederationLoginWithInvalidUtf8UpnIsStillJson) {
  // No authentication needed for this one: the answer echoes the upn of the query string.
  transport::HttpResponse r = Call("GET", "/federation/login?upn=%FF%FEalice", "", false);
  EXPECT_EQ(r.status, 200);
  ExpectJson(r);
}

TEST_F(ServerRegressionTest, DeviceReportWithInvalidUtf8DoesNotBreakTheAdminReport) {
  // An enrolled device reports a user name and reason that are not UTF-8.
  auto t = RunAdmin(server_->store(), "tenant.add", {{"name", "Fabrikam"}});
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  json tenant = *t;
  auto enrolled = server::testing::EnrollWithBulkToken(
      *server_, kDevId, tenant["enrollment_token"].get<std::string>());
  ASSERT_TRUE(enrolled.ok()) << enrolled.error().ToString();
  transport::PeerInfo device = enrolled->peer;

  syncml::Message m;
  m.header.session_id = "1";
  m.header.msg_id = "1";
  m.header.target.loc_uri = "https://127.0.0.1/ManagementServer/MDM.svc";
  m.header.source.loc_uri = kDevId;
  syncml::Item report;
  report.meta = syncml::Meta{};
  report.meta->type = kReportAlertType;
  report.meta->format = "xml";
  report.data = syncml::Data(
      "<DMAgentReport version=\"1\"><User name=\"m\xff\xfeuser\"><Recovery CanReset=\"Destructive"
      "Only\" reason=\"bad \xc3\x28 bytes\"/></User></DMAgentReport>");
  m.commands.push_back(syncml::MakeAlert("2", 1201));
  m.commands.push_back(syncml::MakeAlert("3", 1226, {report}));
  syncml::Item man;
  man.source = syncml::Location{"./DevInfo/Man", std::nullopt};
  man.data = syncml::Data("Cont\xffso");
  m.commands.push_back(syncml::MakeCommand(syncml::CommandType::kReplace, "4", {man}));
  m.final = true;
  transport::HttpResponse session =
      Call("POST", "/ManagementServer/MDM.svc", syncml::Encode(m), false, device);
  ASSERT_EQ(session.status, 200) << session.body;

  transport::HttpResponse r = Call("GET", "/admin/v1/report");
  EXPECT_EQ(r.status, 200);
  ExpectJson(r);
  EXPECT_NE(r.body.find("DestructiveOnly"), std::string::npos) << "the report lost the entry";

#ifdef DMSERVER_BIN
  // The CLI prints the same report from the state directory.
  server_.reset();
  const std::string command = std::string(DMSERVER_BIN) + " --state-dir '" +
                              options_.state_dir.string() + "' report --json >'" +
                              (dir_ / "report.json").string() + "' 2>&1";
  const int rc = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << "dmserver report --json died";
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  std::ifstream in(dir_ / "report.json");
  std::string printed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(json::parse(printed, nullptr, false).is_discarded()) << printed;
#endif
}

}  // namespace
}  // namespace dm::server
