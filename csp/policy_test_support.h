// Test fixture for the CSPs backed by the policy engine: a real database, container store and
// engine, and the full device tree built by MakeDeviceTree.
#pragma once

#include <memory>
#include <string>

#include "base/crypto.h"
#include "container/container.h"
#include "container/key_sealer_test_support.h"
#include "csp/device_tree.h"
#include "csp/test_support.h"
#include "policy/catalog.h"
#include "policy/policy.h"

namespace dm::csp::testing {

inline constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
inline constexpr char kTenant2[] = "0d1c2b3a-4958-6777-8899-aabbccddeeff";

class DeviceTreeTest : public DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    Build();
  }
  void TearDown() override {
    tree_.reset();
    engine_.reset();
    store_.reset();
    DbTest::TearDown();
  }
  void Build() {
    container::StoreOptions so;
    so.clock = &clock_;
    so.random = &random_;
    so.kdf = crypto::ScryptParams::ForTests();
    store_ = std::make_unique<container::ContainerStore>(db(), sealer_, so);
    engine_ = std::make_unique<policy::PolicyEngine>(db(), *store_, clock_);
    DeviceTreeOptions options;
    options.host_facts = [] { return HostFacts{}; };
    tree_ = MakeDeviceTree(db(), *engine_, *store_, clock_, options);
  }
  // What the session engine does after a message's transaction committed.
  void Commit() { tree_->OnCommitted(); }

  std::string Pfw(std::string_view rest, std::string_view tenant = kTenant) {
    return "./Vendor/MSFT/PassportForWork/" + std::string(tenant) + "/" + std::string(rest);
  }
  std::string UserPfw(std::string_view rest, std::string_view tenant = kTenant) {
    return "./User/Vendor/MSFT/PassportForWork/" + std::string(tenant) + "/" + std::string(rest);
  }
  std::optional<std::string> Desired(policy::Scope scope, std::string user, std::string setting) {
    auto d = engine_->Desired(policy::Source::kMdm,
                              policy::Target{scope, std::move(user), std::move(setting)});
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.value_or(std::nullopt);
  }

  crypto::DeterministicRandom random_{7};
  container::testing::FixedKeySealer sealer_;
  std::unique_ptr<container::ContainerStore> store_;
  std::unique_ptr<policy::PolicyEngine> engine_;
  std::unique_ptr<DmTree> tree_;
  Context device_;
  Context alice_{"alice"};
};

}  // namespace dm::csp::testing
