// Full OMA-DM sessions (agent::RunSession: report refresh, package 1, the server's commands,
// our Statuses, until the server is done) between an enrolled device and an in-process
// dmserver over mutual TLS on loopback, with the 20-setting Hello profile assigned to the
// device. Before each iteration (untimed) the profile is replaced by its other value set, so
// every session carries and applies all 20 settings, like a changed Intune profile.
//
// The floors are measured in the same iterations, against the same server, with the device's
// own certificate: one HTTPS POST to a trivial endpoint (/PinReset/publickey) on a new
// connection (client created, TCP + TLS handshake, request, close: what a session pays once),
// and one on a kept-alive connection (the request/response cost alone). Counters:
// floor_new_conn_ms, floor_keepalive_ms, ratio_new_conn and ratio_keepalive (session time /
// floor time), sessions_per_s, messages (POSTs per session).
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agent/runtime/enrollment.h"
#include "agent/runtime/sync.h"
#include "agent/transport/https_client.h"
#include "base/crypto.h"
#include "samples/server/admin.h"
#include "samples/server/server.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/messages.h"

namespace dm::bench {
namespace {

using nlohmann::json;

constexpr char kProfile[] = "hello-20";
constexpr char kFloorPath[] = "/PinReset/publickey";

struct World {
  TempDir dir{"dm-bench-session"};
  std::unique_ptr<server::DmServer> server;
  std::unique_ptr<agent::Device> device;
  bool alternate = false;

  Result<json> Admin(const std::string& op, const json& args) {
    return server::RunAdmin(server->store(), op, args);
  }

  Status AssignProfile(bool replace) {
    json settings = json::array();
    for (const Setting& s : HelloProfile20()) {
      settings.push_back(
          {{"uri", s.uri}, {"value", alternate ? s.value_b : s.value_a}, {"format", s.format}});
    }
    return Admin("profile.add", {{"name", kProfile}, {"replace", replace}, {"settings", settings}})
        .status();
  }

  Status Setup() {
    server::ServerOptions so;
    so.state_dir = dir.path() / "server";
    so.port = 0;
    so.password_kdf = crypto::ScryptParams::ForTests();
    so.pin_reset_rsa_bits = 2048;
    DM_ASSIGN_OR_RETURN(server, server::DmServer::Start(so));
    DM_ASSIGN_OR_RETURN(json tenant, Admin("tenant.add", {{"name", "Fabrikam"}, {"id", kTenant}}));
    const std::string token = tenant.at("enrollment_token").get<std::string>();
    DM_RETURN_IF_ERROR(
        Admin("group.add", {{"name", "bench-devices"}, {"kind", "device"}}).status());

    DM_ASSIGN_OR_RETURN(device, OpenDevice(dir.path() / "device"));
    agent::MsMde2EnrollRequest enroll;
    enroll.email = "bench@fabrikam.test";
    enroll.discovery_url = server->BaseUrl() + "/EnrollmentServer/Discovery.svc";
    enroll.ca_bundle_pem = server->ca_cert_pem();
    enroll.auth = "token";
    enroll.token = SecretBytes(std::string_view(token));
    DM_RETURN_IF_ERROR(agent::EnrollMsMde2(*device, enroll));
    csp::GetResult dev_id = device->tree().Get({}, "./DevInfo/DevId");
    if (!csp::IsSuccess(dev_id.code)) return Internal("no DevId: " + dev_id.reason);
    DM_RETURN_IF_ERROR(
        Admin("group.member", {{"group", "bench-devices"}, {"member", dev_id.value.data}})
            .status());
    DM_RETURN_IF_ERROR(AssignProfile(/*replace=*/false));
    DM_RETURN_IF_ERROR(
        Admin("assign", {{"profile", kProfile}, {"group", "bench-devices"}}).status());
    // The first session creates the tenant's nodes; later ones change existing settings.
    return agent::RunSession(*device).status();
  }

  // An HTTPS client as RunSession builds one, aimed at the floor endpoint.
  Result<std::unique_ptr<transport::HttpsClient>> FloorClient() {
    DM_ASSIGN_OR_RETURN(agent::EnrollmentState e, agent::LoadEnrollment(device->db()));
    DM_ASSIGN_OR_RETURN(SecretBytes key, agent::LoadDeviceKey(*device));
    transport::HttpsClientOptions o;
    o.server_url = server->BaseUrl() + kFloorPath;
    o.ca_bundle_pem = e.ca_pem;
    o.client_cert_pem = e.device_cert_pem;
    o.client_key_pem = std::move(key);
    return transport::HttpsClient::Create(std::move(o));
  }
};

Result<World*> GetWorld() {
  static World* world = nullptr;
  static Status setup = [] {
    auto* w = new World();
    Status s = w->Setup();
    world = w;
    AtTeardown([w] { delete w; });
    return s;
  }();
  if (!setup.ok()) return setup;
  return world;
}

Status PostFloor(transport::HttpsClient& client) {
  DM_ASSIGN_OR_RETURN(transport::HttpResponse r, client.PostOnce("", "{}", "application/json"));
  return transport::HttpStatusToStatus(r);
}

void BM_Session(benchmark::State& state) {
  Result<World*> got = GetWorld();
  if (!got.ok()) {
    state.SkipWithError(got.status().ToString().c_str());
    return;
  }
  World& w = **got;
  auto kept = w.FloorClient();
  if (!kept.ok()) {
    state.SkipWithError(kept.status().ToString().c_str());
    return;
  }
  if (Status s = PostFloor(**kept); !s.ok()) {  // opens the kept-alive connection
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  double session_total = 0, new_conn_total = 0, kept_total = 0;
  int64_t messages = 0;
  for (auto _ : state) {
    w.alternate = !w.alternate;
    if (Status s = w.AssignProfile(/*replace=*/true); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }

    auto t0 = SteadyClock::now();
    Status floor_status = [&]() -> Status {
      DM_ASSIGN_OR_RETURN(auto client, w.FloorClient());
      DM_RETURN_IF_ERROR(PostFloor(*client));
      client->Close();
      return Status::Ok();
    }();
    const double t_new = Seconds(SteadyClock::now() - t0);

    t0 = SteadyClock::now();
    if (floor_status.ok()) floor_status = PostFloor(**kept);
    const double t_kept = Seconds(SteadyClock::now() - t0);

    t0 = SteadyClock::now();
    Result<agent::SyncResult> r = agent::RunSession(*w.device);
    const double t_session = Seconds(SteadyClock::now() - t0);

    if (!floor_status.ok() || !r.ok()) {
      state.SkipWithError((!floor_status.ok() ? floor_status : r.status()).ToString().c_str());
      return;
    }
    if (r->commands_received < static_cast<int>(HelloProfile20().size()) ||
        r->commands_failed != 0) {
      state.SkipWithError(("session applied " + std::to_string(r->commands_received) +
                           " command(s), " + std::to_string(r->commands_failed) + " failed")
                              .c_str());
      return;
    }
    messages += r->messages_sent;
    session_total += t_session;
    new_conn_total += t_new;
    kept_total += t_kept;
    state.SetIterationTime(t_session);
  }
  (*kept)->Close();
  const double n = static_cast<double>(state.iterations());
  state.counters["floor_new_conn_ms"] = new_conn_total / n * 1e3;
  state.counters["floor_keepalive_ms"] = kept_total / n * 1e3;
  state.counters["ratio_new_conn"] = session_total / new_conn_total;
  state.counters["ratio_keepalive"] = session_total / kept_total;
  state.counters["sessions_per_s"] = n / session_total;
  state.counters["messages"] = static_cast<double>(messages) / n;
  state.counters["settings"] = static_cast<double>(HelloProfile20().size());
}

BENCHMARK(BM_Session)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace dm::bench
