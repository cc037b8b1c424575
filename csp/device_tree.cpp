#include "csp/device_tree.h"

#include <spdlog/spdlog.h>

#include "csp/csps_internal.h"
#include "csp/tree.h"
#include "policy/policy.h"

namespace dm::csp {

std::unique_ptr<DmTree> MakeDeviceTree(storage::Database& db, policy::PolicyEngine& engine,
                                       container::ContainerStore& containers, const Clock& clock,
                                       DeviceTreeOptions options) {
  HostFactsSource host = options.host_facts;
  if (!host) host = [] { return ReadHostFacts("/"); };
  auto tree = std::make_unique<Tree>(db, clock);
  tree->Mount("", DevInfoCsp(db, host));
  tree->Mount("", DevDetailCsp(db, clock, host));
  tree->Mount("Vendor/MSFT", DmClientCsp());
  tree->Mount("Vendor/MSFT", RebootCsp(db, clock));
  tree->Mount("Vendor/MSFT", CertificateStoreCsp(db));
  tree->Mount("Vendor/MSFT", PassportForWorkCsp(db, clock, engine));
  tree->Mount("Vendor/MSFT", PolicyCsp(engine));
  tree->Mount("Vendor/MSFT", DmAgentCsp(engine, db, containers));
  tree->SetOnCommitted([&engine] {
    Status s = engine.Evaluate();
    if (!s.ok()) spdlog::error("policy evaluation after commit failed: {}", s.ToString());
  });
  return tree;
}

}  // namespace dm::csp
