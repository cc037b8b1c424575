// libFuzzer target: whole server messages through the session engine against the real device
// tree on a temporary SQLite file, as `dmagent exec` runs them (agent::Device wires the
// database, containers, policy engine and csp::MakeDeviceTree; agent::Session::Process).
//
// Input: one or more server messages separated by NUL bytes (XML cannot contain NUL), processed
// in order by one session, so multi-message state (large objects, Alert 1222) is reachable.
// Each input runs inside an outer transaction that is rolled back afterwards (the session's own
// transaction nests as a savepoint), so every input starts from the same device state and the
// file does not grow without bound. The device has a signed-in user with a Hello container and
// a PIN reset service key, so PassportForWork settings reach the container code.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/runtime/device.h"
#include "agent/session/session.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "fuzz_common.h"

namespace {

constexpr char kUser[] = "alice@contoso.test";
constexpr size_t kMaxMessages = 4;

struct World {
  dm::FakeClock clock;
  dm::crypto::DeterministicRandom random{7};
  std::unique_ptr<dm::agent::Device> device;
};

World& TheWorld() {
  static World* w = [] {
    auto* world = new World();
    dm::agent::DeviceOptions o;
    o.state_dir = dm::fuzz::TempDir("fuzz-session") / "state";
    o.clock = &world->clock;
    o.random = &world->random;
    o.pin_kdf = dm::crypto::ScryptParams::ForTests();
    auto device = dm::agent::Device::Open(std::move(o));
    if (!device.ok()) dm::fuzz::SetupFailed(device.error().ToString());
    world->device = std::move(*device);
    dm::agent::Device& d = *world->device;
    auto rsa = dm::crypto::GenerateRsaPrivateKey(2048);
    if (!rsa.ok()) dm::fuzz::SetupFailed(rsa.error().ToString());
    auto pub = dm::crypto::PublicKeyPem(*rsa);
    if (!pub.ok()) dm::fuzz::SetupFailed(pub.error().ToString());
    dm::Status s = d.containers().SetPinResetServiceKey(*pub);
    if (s.ok()) s = d.policy().OnSignIn(kUser);
    if (s.ok()) s = d.SetSignedInUser(kUser);
    if (s.ok())
      s = d.containers().Provision(kUser, dm::SecretBytes(std::string_view("1357"))).status();
    if (s.ok()) s = d.policy().Evaluate();
    if (!s.ok()) dm::fuzz::SetupFailed(s.ToString());
    return world;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  dm::agent::Device& device = *w.device;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  auto outer = device.db().Begin();
  if (!outer.ok()) dm::fuzz::SetupFailed(outer.error().ToString());
  {
    dm::agent::Session session(device.tree(), device.db(), dm::agent::SessionOptions{});
    session.SetUser(kUser);
    size_t start = 0;
    for (size_t n = 0; n < kMaxMessages && start <= input.size(); ++n) {
      size_t end = input.find('\0', start);
      const std::string_view message =
          input.substr(start, end == std::string_view::npos ? end : end - start);
      auto response = session.Process(message);
      if (!response.ok() || !*response || session.over()) break;
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
  }
  dm::Status rolled_back = outer->Rollback();
  if (!rolled_back.ok()) dm::fuzz::SetupFailed(rolled_back.ToString());
  return 0;
}
