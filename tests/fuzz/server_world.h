// A dmserver for the server fuzz targets: started in-process (its HTTPS listener binds
// 127.0.0.1 port 0 and stays idle), with one tenant, a user, a device group holding one enrolled
// device, and a profile assigned to that group, so management sessions have commands to send
// and Statuses to match. Requests go straight to DmServer::Handle, the router the HTTPS server
// calls, so no socket or TLS is involved.
#pragma once

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "fuzz_common.h"
#include "samples/server/admin.h"
#include "samples/server/server.h"
#include "samples/server/testing/enroll_device.h"
#include "samples/server/testing/test_server.h"

namespace dm::fuzz {

// The DevId of the captured Windows client (tests/fixtures/windows10-capture), so the fixture
// messages pass the certificate/Source check and reach the session code.
inline constexpr char kFuzzDevId[] = "B5B954E81FBCB94EB79BD08BE625F4EE";
inline constexpr char kFuzzTenantId[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
inline constexpr char kFuzzUpn[] = "alice@fabrikam.test";

struct ServerWorld {
  FakeClock clock;
  crypto::DeterministicRandom random{11};
  std::unique_ptr<server::DmServer> server;
  std::string admin_token;
  transport::PeerInfo device_peer;  // the enrolled device's verified client certificate
  std::string user_token;           // kFuzzUpn's, signed by the server's IdP, valid at `clock`
};

inline nlohmann::json MustAdmin(server::Store& store, const std::string& op,
                                const nlohmann::json& args) {
  auto r = server::RunAdmin(store, op, args);
  if (!r.ok()) SetupFailed(op + ": " + r.error().ToString());
  return *r;
}

inline ServerWorld& TheServer() {
  static ServerWorld* w = [] {
    auto* world = new ServerWorld();
    server::ServerOptions o;
    o.state_dir = TempDir("fuzz-server") / "state";
    o.clock = &world->clock;
    o.random = &world->random;
    o.password_kdf = crypto::ScryptParams::ForTests();
    o.pin_reset_rsa_bits = 2048;
    o.threads = 1;
    auto started = server::DmServer::Start(o);
    if (!started.ok()) SetupFailed(started.error().ToString());
    world->server = std::move(*started);
    {
      std::ifstream in(server::PathsFor(o.state_dir).admin_token);
      std::getline(in, world->admin_token);
    }
    server::Store& store = world->server->store();
    nlohmann::json tenant =
        MustAdmin(store, "tenant.add", {{"name", "Fabrikam"}, {"id", kFuzzTenantId}});
    MustAdmin(store, "user.add",
              {{"upn", kFuzzUpn}, {"password", "pass"}, {"totp_secret", "JBSWY3DPEHPK3PXP"}});
    MustAdmin(store, "group.add", {{"name", "Devices"}, {"kind", "device"}});
    MustAdmin(store, "group.add", {{"name", "Staff"}, {"kind", "user"}});
    MustAdmin(store, "group.member", {{"group", "Devices"}, {"member", kFuzzDevId}});
    MustAdmin(store, "group.member", {{"group", "Staff"}, {"member", kFuzzUpn}});
    nlohmann::json settings = nlohmann::json::array(
        {{{"uri", "./Device/Vendor/MSFT/PassportForWork/{TenantId}/Policies/EnablePinRecovery"},
          {"value", "true"},
          {"format", "bool"}},
         {{"uri",
           "./User/Vendor/MSFT/PassportForWork/{TenantId}/Policies/PINComplexity/"
           "MinimumPINLength"},
          {"value", "6"},
          {"format", "int"}},
         {{"raw",
           "<Get><CmdID>1</CmdID><Item><Target><LocURI>./Vendor/MSFT/DMAgent/Report</LocURI>"
           "</Target></Item></Get>"}}});
    MustAdmin(store, "profile.add", {{"name", "Hello"}, {"settings", settings}});
    MustAdmin(store, "assign", {{"profile", "Hello"}, {"group", "Devices"}});
    MustAdmin(store, "assign", {{"profile", "Hello"}, {"group", "Staff"}});

    // Enrollment through the real handler, as a device would do it.
    auto enrolled = server::testing::EnrollWithBulkToken(
        *world->server, kFuzzDevId, tenant.at("enrollment_token").get<std::string>());
    if (!enrolled.ok()) SetupFailed("enrollment: " + enrolled.error().ToString());
    world->device_peer = enrolled->peer;
    auto token = server::testing::UserTokenFor(*world->server, o.state_dir, kFuzzUpn);
    if (!token.ok()) SetupFailed("user token: " + token.error().ToString());
    world->user_token = std::move(*token);
    return world;
  }();
  return *w;
}

// Runs `f` inside a transaction of the server database that is rolled back afterwards, so
// every input meets the same server state (the handlers' own transactions nest as savepoints).
template <typename F>
void WithRollback(ServerWorld& w, F&& f) {
  auto tx = w.server->store().db().Begin();
  if (!tx.ok()) SetupFailed(tx.error().ToString());
  f();
  Status s = tx->Rollback();
  if (!s.ok()) SetupFailed(s.ToString());
}

}  // namespace dm::fuzz
