// The agent's DM tree: every CSP mounted, backed by the agent database and the policy engine.
//   ./DevInfo, ./DevDetail
//   ./Vendor/MSFT/{DMClient, Reboot, PassportForWork, Policy, DMAgent}
// OnCommitted() runs PolicyEngine::Evaluate(), so values a message set take effect (or become
// pending) once the message's transaction is durable.
#pragma once

#include <memory>

#include "base/clock.h"
#include "csp/dm_tree.h"
#include "csp/host_facts.h"

namespace dm::storage {
class Database;
}
namespace dm::container {
class ContainerStore;
}
namespace dm::policy {
class PolicyEngine;
}

namespace dm::csp {

struct DeviceTreeOptions {
  // What the host says about itself (DevInfo/DevDetail); default: ReadHostFacts("/").
  HostFactsSource host_facts;
};

// `containers` receives the PIN reset service key a server sets through the DMAgent CSP; it
// is the store `engine` works on.
std::unique_ptr<DmTree> MakeDeviceTree(storage::Database& db, policy::PolicyEngine& engine,
                                       container::ContainerStore& containers, const Clock& clock,
                                       DeviceTreeOptions options = {});

}  // namespace dm::csp
