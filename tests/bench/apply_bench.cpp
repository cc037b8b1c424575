// Applying server commands to the device, as `dmagent exec` does (Session::Process on a Device
// opened on a temporary state directory: real SQLite file, synchronous=FULL), at 100, 1,000 and
// 10,000 settings, so the per-setting cost shows whether the path is linear.
//
//  BM_ApplyPolicy/N    N PassportForWork policy leaves (18 per tenant, N/18 tenants): URI
//                      resolution, the catalog, the policy engine's desired state, the node
//                      store, then one evaluation of the engine after the commit.
//  BM_ApplyProvider/N  N DMClient Provider leaves (9 per provider): tree and node store only.
//  BM_ApplyProfile     the 20-setting Hello profile (ProfileMessage) on a device whose user is
//                      signed in with a provisioned container: through the engine into the
//                      container's applied policy, plus the Results of a report Get.
//
// Each benchmark applies the message once untimed (creating the nodes), then every timed
// iteration applies the other value set, so every iteration changes every setting.
// Counter us_per_setting = iteration time / settings.
#include <benchmark/benchmark.h>

#include <string>

#include "container/container.h"
#include "tests/bench/bench_util.h"
#include "tests/bench/messages.h"

namespace dm::bench {
namespace {

constexpr char kUser[] = "alice@fabrikam.test";

using PackageFn = std::string (*)(size_t, bool);

void RunApply(benchmark::State& state, const std::string& a, const std::string& b, size_t settings,
              std::string_view user, agent::Device& device) {
  size_t commands = 0;
  if (Status s = ApplyMessage(device, a, user, &commands); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  bool flip = false;
  double total = 0;
  for (auto _ : state) {
    flip = !flip;
    const auto t0 = SteadyClock::now();
    Status s = ApplyMessage(device, flip ? b : a, user);
    const double t = Seconds(SteadyClock::now() - t0);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
    total += t;
    state.SetIterationTime(t);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["settings"] = static_cast<double>(settings);
  state.counters["commands"] = static_cast<double>(commands);
  state.counters["us_per_setting"] = total / n / static_cast<double>(settings) * 1e6;
  state.counters["bytes"] = static_cast<double>(a.size());
}

void BM_ApplyPackage(benchmark::State& state, PackageFn package) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::string a = package(n, false), b = package(n, true);
  TempDir dir("dm-bench-apply");
  auto device = OpenDevice(dir.path() / "device");
  if (!device.ok()) {
    state.SkipWithError(device.status().ToString().c_str());
    return;
  }
  RunApply(state, a, b, n, {}, **device);
}

void BM_ApplyProfile(benchmark::State& state) {
  const std::vector<Setting> profile = HelloProfile20();
  const std::string a = ProfileMessage(profile, false), b = ProfileMessage(profile, true);
  TempDir dir("dm-bench-profile");
  auto opened = OpenDevice(dir.path() / "device");
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  agent::Device& device = **opened;
  // A signed-in user with a Hello container, so evaluation has a container to apply to.
  Status s = device.policy().OnSignIn(kUser);
  if (s.ok()) s = device.SetSignedInUser(kUser);
  if (s.ok()) s = device.containers().Provision(kUser, SecretBytes("246810")).status();
  if (s.ok()) s = device.policy().Evaluate();
  if (!s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  RunApply(state, a, b, profile.size(), kUser, device);
}

// 10,000 settings take seconds per iteration: a few iterations are enough there.
BENCHMARK_CAPTURE(BM_ApplyPackage, policy, &PolicyPackage)
    ->Arg(100)
    ->Arg(1000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplyPackage, policy, &PolicyPackage)
    ->Arg(10000)
    ->Iterations(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplyPackage, provider, &ProviderPackage)
    ->Arg(100)
    ->Arg(1000)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ApplyPackage, provider, &ProviderPackage)
    ->Arg(10000)
    ->Iterations(3)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ApplyProfile)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dm::bench
