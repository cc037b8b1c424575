// dmserver's admin surface (security issue #11): the admin API on its own loopback listener,
// scoped bearer tokens stored only hashed, over real TLS on 127.0.0.1 (port 0).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "samples/server/admin.h"
#include "samples/server/admin_tokens.h"
#include "samples/server/server.h"
#include "samples/server/testing/enroll_device.h"
#include "samples/server/testing/test_server.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dmserver-admin-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ASSERT_NO_FATAL_FAILURE(StartServer());
    initial_token_ = testing::InitialAdminToken(dir_ / "state");
    ASSERT_EQ(initial_token_.size(), 64u);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  ServerOptions Options() {
    ServerOptions options = testing::TestServerOptions(dir_ / "state");
    options.clock = &clock_;
    return options;
  }
  void StartServer() { StartServer(Options()); }
  void StartServer(const ServerOptions& options) {
    auto server = DmServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(*server);
  }

  json Local(const std::string& op, const json& args) {  // the CLI's way in: global
    auto r = RunAdmin(server_->store(), op, args);
    EXPECT_TRUE(r.ok()) << op << ": " << r.error().ToString();
    return r.ok() ? *r : json();
  }
  std::string NewToken(const std::string& scope, const std::string& name) {
    return Local("admin_token.create", {{"scope", scope}, {"name", name}})
        .at("token")
        .get<std::string>();
  }

  // POST `op` with `token` to the admin listener (or, with `url`, to another one).
  transport::HttpResponse Post(const std::string& op, const json& args, const std::string& token,
                               std::string url = "") {
    auto client =
        testing::TestClient(*server_, "", {}, url.empty() ? server_->AdminBaseUrl() : url);
    EXPECT_TRUE(client.ok()) << client.error().ToString();
    if (!client.ok()) return {};
    auto r = (*client)->Post("/admin/v1/" + op, args.dump(), "application/json",
                             {{"Authorization", "Bearer " + token}});
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : transport::HttpResponse{};
  }
  int StatusOf(const std::string& op, const json& args, const std::string& token) {
    return Post(op, args, token).status;
  }

  // Two tenants with an enrolled device each and a profile assigned to all their devices, so
  // the report has rows of both.
  void TwoTenantsWithDevices() {
    for (const auto& [tenant, device] :
         {std::pair{"Fabrikam", "DEV-FABRIKAM"}, std::pair{"Contoso", "DEV-CONTOSO"}}) {
      json t = Local("tenant.add", {{"name", tenant}});
      tenant_ids_[tenant] = t.at("id").get<std::string>();
      auto enrolled = testing::EnrollWithBulkToken(*server_, device,
                                                   t.at("enrollment_token").get<std::string>());
      ASSERT_TRUE(enrolled.ok()) << enrolled.error().ToString();
      Local("group.add", {{"tenant", tenant}, {"name", "All"}, {"kind", "device"}, {"all", true}});
      Local("profile.add",
            {{"tenant", tenant},
             {"name", "P"},
             {"settings",
              json::array({{{"uri", "./Device/Vendor/MSFT/Policy/Config/A/B"}, {"value", "1"}}})}});
      Local("assign", {{"tenant", tenant}, {"profile", "P"}, {"group", "All"}});
    }
  }

  FakeClock clock_{Clock::System().Now()};  // TLS checks certificates on the real clock
  fs::path dir_;
  std::unique_ptr<DmServer> server_;
  std::string initial_token_;
  std::map<std::string, std::string> tenant_ids_;
};

TEST_F(AdminApiTest, TheAdminApiHasItsOwnLoopbackListenerAndTheDeviceListener404s) {
  EXPECT_EQ(ServerOptions{}.admin_listen_address, "127.0.0.1");
  EXPECT_EQ(server_->AdminBaseUrl(), "https://127.0.0.1:" + std::to_string(server_->admin_port()));
  EXPECT_NE(server_->admin_port(), server_->port());

  // The valid global token, over the device listener: the admin API is not there.
  auto on_device = Post("tenant.list", json::object(), initial_token_, server_->BaseUrl());
  EXPECT_EQ(on_device.status, 404) << on_device.body;
  EXPECT_EQ(on_device.body.find("tenants"), std::string::npos);
  EXPECT_EQ(StatusOf("tenant.list", json::object(), initial_token_), 200);
  // And the admin listener serves nothing else.
  auto client = testing::TestClient(*server_, "", {}, server_->AdminBaseUrl());
  ASSERT_TRUE(client.ok());
  for (const char* path : {"/PinReset/publickey", "/ManagementServer/MDM.svc", "/login"}) {
    auto r = (*client)->Post(path, "", "application/json");
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_EQ(r->status, 404) << path;
  }

  // Without an admin address there is no admin listener at all.
  server_.reset();
  ServerOptions options = testing::TestServerOptions(dir_ / "state");
  options.admin_listen_address.clear();
  auto none = DmServer::Start(options);
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_EQ((*none)->admin_port(), 0);
  EXPECT_EQ((*none)->AdminBaseUrl(), "");
}

// The limits are dmserver's options, applied to both its listeners (the transport's defaults
// happen to equal dmserver's, so only a server started with others shows the wiring).
TEST_F(AdminApiTest, BothListenersCloseConnectionsOverTheServersLimits) {
  struct Limits {
    size_t in_all, per_address;
  };
  for (const Limits limits : {Limits{2, 0}, Limits{0, 2}}) {
    server_.reset();
    ServerOptions options = Options();
    options.max_connections = limits.in_all;
    options.max_connections_per_address = limits.per_address;
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    for (const bool admin : {false, true}) {
      SCOPED_TRACE(std::string(admin ? "admin" : "device") + " listener, limits " +
                   std::to_string(limits.in_all) + "/" + std::to_string(limits.per_address));
      const std::string url = admin ? server_->AdminBaseUrl() : server_->BaseUrl();
      const std::string path = admin ? "/admin/v1/tenant.list" : "/PinReset/publickey";
      // A new client's first request: its status, 0 when the connection was refused. The
      // client keeps its connection open for as long as it lives.
      auto connect = [&](std::unique_ptr<transport::HttpsClient>& client) {
        auto c = testing::TestClient(*server_, "", {}, url);
        if (!c.ok()) return -1;
        client = std::move(*c);
        auto r = client->Post(path, "{}", "application/json",
                              {{"Authorization", "Bearer " + initial_token_}});
        return r.ok() ? r->status : 0;
      };
      std::unique_ptr<transport::HttpsClient> first, second, third;
      ASSERT_EQ(connect(first), 200);
      ASSERT_EQ(connect(second), 200);
      EXPECT_EQ(connect(third), 0) << "a third connection at once";
      first->Close();
      int status = 0;  // the slot comes back once the server has seen the close
      for (int i = 0; i < 250 && status != 200; ++i) {
        status = connect(third);
        if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      EXPECT_EQ(status, 200);
    }
  }
}

TEST_F(AdminApiTest, ReadOnlyTokenReadsButCannotWrite) {
  ASSERT_NO_FATAL_FAILURE(TwoTenantsWithDevices());
  const std::string ro = NewToken("read-only", "auditor");
  auto report = Post("report", json::object(), ro);
  ASSERT_EQ(report.status, 200) << report.body;
  EXPECT_EQ(json::parse(report.body).at("devices").size(), 2u);
  EXPECT_EQ(StatusOf("tenant.list", json::object(), ro), 200);
  EXPECT_EQ(StatusOf("device.retire", {{"tenant", "Contoso"}, {"device", "DEV-CONTOSO"}}, ro), 403);
  EXPECT_EQ(StatusOf("group.add", {{"tenant", "Contoso"}, {"name", "G"}, {"kind", "user"}}, ro),
            403);
  EXPECT_EQ(StatusOf("tenant.add", {{"name", "Mine"}}, ro), 403);
  EXPECT_EQ(StatusOf("tenant.token", {{"tenant", "Contoso"}}, ro), 403);
  EXPECT_EQ(StatusOf("admin_token.create", {{"scope", "global"}}, ro), 403);
  EXPECT_EQ(StatusOf("admin_token.list", json::object(), ro), 403);
  auto device = server_->store().FindDevice("DEV-CONTOSO");
  ASSERT_TRUE(device.ok() && device->has_value());
  EXPECT_TRUE((*device)->enrolled);
  EXPECT_EQ(Local("tenant.list", json::object()).at("tenants").size(), 2u);
}

TEST_F(AdminApiTest, TenantAdminStaysInItsTenant) {
  ASSERT_NO_FATAL_FAILURE(TwoTenantsWithDevices());
  Local("user.add", {{"tenant", "Contoso"}, {"upn", "dan@contoso.test"}, {"password", "pw"}});
  const std::string fabrikam = tenant_ids_["Fabrikam"];
  const std::string admin = NewToken("tenant:Fabrikam", "fabrikam-admin");

  auto report = Post("report", json::object(), admin);
  ASSERT_EQ(report.status, 200) << report.body;
  const json r = json::parse(report.body);
  ASSERT_FALSE(r.at("rows").empty());
  ASSERT_EQ(r.at("devices").size(), 1u);
  EXPECT_EQ(r.at("devices")[0].at("device"), "DEV-FABRIKAM");
  for (const json& row : r.at("rows")) EXPECT_EQ(row.at("tenant"), fabrikam) << row.dump();
  auto tenants = Post("tenant.list", json::object(), admin);
  ASSERT_EQ(tenants.status, 200);
  ASSERT_EQ(json::parse(tenants.body).at("tenants").size(), 1u);
  EXPECT_EQ(json::parse(tenants.body).at("tenants")[0].at("id"), fabrikam);

  // Its own tenant, named or not.
  EXPECT_EQ(StatusOf("group.add", {{"name", "Mine"}, {"kind", "user"}}, admin), 200);
  EXPECT_EQ(
      StatusOf("group.add", {{"tenant", "Fabrikam"}, {"name", "Mine2"}, {"kind", "user"}}, admin),
      200);
  // Another tenant, by name, id or a name that does not exist: 403 alike.
  for (const std::string& other :
       {std::string("Contoso"), tenant_ids_["Contoso"], std::string("Nowhere")}) {
    EXPECT_EQ(StatusOf("group.add", {{"tenant", other}, {"name", "X"}, {"kind", "user"}}, admin),
              403)
        << other;
    EXPECT_EQ(StatusOf("device.retire", {{"tenant", other}, {"device", "DEV-CONTOSO"}}, admin), 403)
        << other;
  }
  EXPECT_EQ(StatusOf("device.report", {{"device", "DEV-CONTOSO"}}, admin), 403);
  EXPECT_EQ(StatusOf("user.unlock", {{"upn", "dan@contoso.test"}}, admin), 403);
  EXPECT_EQ(StatusOf("tenant.token", {{"tenant", "Contoso"}}, admin), 403);
  // Global operations.
  EXPECT_EQ(StatusOf("tenant.add", {{"name", "Third"}}, admin), 403);
  EXPECT_EQ(StatusOf("admin_token.create", {{"scope", "tenant:Contoso"}}, admin), 403);
  // Without a tenant, the device is looked for in its own tenant only.
  EXPECT_EQ(StatusOf("device.retire", {{"device", "DEV-CONTOSO"}}, admin), 404);
  auto device = server_->store().FindDevice("DEV-CONTOSO");
  ASSERT_TRUE(device.ok() && device->has_value());
  EXPECT_TRUE((*device)->enrolled);
  EXPECT_EQ(StatusOf("device.retire", {{"device", "DEV-FABRIKAM"}}, admin), 200);
}

TEST_F(AdminApiTest, RevokedAndRotatedAwayTokensAre401) {
  auto created = Post("admin_token.create", {{"scope", "global"}, {"name", "ops"}}, initial_token_);
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string first = json::parse(created.body).at("token");
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(StatusOf("tenant.list", json::object(), first), 200);

  clock_.Advance(std::chrono::minutes(1));
  auto rotated = Post("admin_token.rotate", {{"name", "ops"}}, first);
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  const std::string second = json::parse(rotated.body).at("token");
  EXPECT_NE(second, first);
  EXPECT_EQ(StatusOf("tenant.list", json::object(), first), 401);
  EXPECT_EQ(StatusOf("tenant.list", json::object(), second), 200);

  EXPECT_EQ(StatusOf("admin_token.revoke", {{"name", "ops"}}, initial_token_), 200);
  EXPECT_EQ(StatusOf("tenant.list", json::object(), second), 401);
  EXPECT_EQ(StatusOf("admin_token.rotate", {{"name", "ops"}}, initial_token_), 404);
  // A revoked name is not handed out again.
  EXPECT_EQ(StatusOf("admin_token.create", {{"scope", "global"}, {"name", "ops"}}, initial_token_),
            409);
  auto list = Post("admin_token.list", json::object(), initial_token_);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body.find(second), std::string::npos);
  const json tokens = json::parse(list.body).at("tokens");
  ASSERT_EQ(tokens.size(), 2u) << list.body;
  EXPECT_EQ(tokens[1].at("name"), "ops");
  EXPECT_EQ(tokens[1].at("revoked"), true);
  EXPECT_EQ(tokens[1].at("rotated_at").get<int64_t>(),
            tokens[1].at("created_at").get<int64_t>() + 60);

  // The initial token is an ordinary global token: revoked, it is gone, also after a restart
  // (the admin-token file is not imported again).
  Local("admin_token.revoke", {{"name", kInitialAdminTokenName}});
  EXPECT_EQ(StatusOf("tenant.list", json::object(), initial_token_), 401);
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_EQ(StatusOf("tenant.list", json::object(), initial_token_), 401);
}

TEST_F(AdminApiTest, AnAdminTokenFileFromBeforeScopedTokensIsImportedAsGlobal) {
  server_.reset();
  fs::remove_all(dir_ / "state");
  fs::create_directory(dir_ / "state", dir_);
  fs::permissions(dir_ / "state", fs::perms::owner_all);
  const std::string legacy(64, 'c');
  {
    std::ofstream(PathsFor(dir_ / "state").admin_token) << legacy << "\n";
    fs::permissions(PathsFor(dir_ / "state").admin_token,
                    fs::perms::owner_read | fs::perms::owner_write);
  }
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_EQ(StatusOf("tenant.add", {{"name", "Fabrikam"}}, legacy), 200);
}

TEST_F(AdminApiTest, TheDatabaseHoldsNoClearAdminToken) {
  ASSERT_NO_FATAL_FAILURE(TwoTenantsWithDevices());
  std::vector<std::string> tokens = {initial_token_, NewToken("global", "g"),
                                     NewToken("read-only", "ro"),
                                     NewToken("tenant:Contoso", "contoso")};
  tokens.push_back(Local("admin_token.rotate", {{"name", "g"}}).at("token"));
  server_.reset();

  // The SQLite file itself: each token in force is there as its SHA-256 and nowhere in clear.
  auto store = Store::Open(PathsFor(dir_ / "state").database, {});
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  std::vector<std::string> digests, names;
  {
    auto st = (*store)->db().Prepare(
        "SELECT name, scope, coalesce(tenant_id, ''), token_sha256 FROM admin_tokens ORDER BY "
        "name");
    ASSERT_TRUE(st.ok());
    while (*st->Step()) {
      names.push_back(st->Text(0));
      for (int col = 0; col < 4; ++col) {
        for (const std::string& t : tokens) EXPECT_EQ(st->Text(col).find(t), std::string::npos);
      }
      digests.push_back(st->Text(3));
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"contoso", "g", "initial", "ro"}));
  for (size_t i : {size_t{0}, size_t{2}, size_t{3}, size_t{4}}) {
    auto digest = Sha256Hex(tokens[i]);
    ASSERT_TRUE(digest.ok());
    EXPECT_NE(std::find(digests.begin(), digests.end(), *digest), digests.end()) << i;
  }
  store->reset();
  // And the raw bytes of the database and its WAL, in case a token sat in a freed page.
  for (const char* suffix : {"", "-wal"}) {
    const fs::path file = PathsFor(dir_ / "state").database.string() + suffix;
    if (!fs::exists(file)) continue;
    std::stringstream bytes;
    bytes << std::ifstream(file, std::ios::binary).rdbuf();
    for (const std::string& t : tokens) {
      EXPECT_EQ(bytes.str().find(t), std::string::npos) << file.string();
    }
  }
}

}  // namespace
}  // namespace dm::server
