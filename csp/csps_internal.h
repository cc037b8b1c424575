// The CSP tables, one builder per CSP; csp/device_tree.cpp mounts them. Internal to csp/.
#pragma once

#include "base/clock.h"
#include "csp/host_facts.h"
#include "csp/node.h"

namespace dm::storage {
class Database;
}
namespace dm::policy {
class PolicyEngine;
}

namespace dm::csp {

// A Get hook: the device fact `key` if set, else the host's `field` if known, else `fallback`.
std::function<Result<std::optional<std::string>>(const NodeAddress&)> FactOr(
    storage::Database& db, const char* key, HostFactsSource host, std::string HostFacts::*field,
    std::string fallback);

// Mounted at the root: ./DevInfo, ./DevDetail.
NodeDef DevInfoCsp(storage::Database& db, HostFactsSource host);
NodeDef DevDetailCsp(storage::Database& db, const Clock& clock, HostFactsSource host);
// Mounted under Vendor/MSFT.
NodeDef DmClientCsp();
NodeDef RebootCsp(storage::Database& db, const Clock& clock);
NodeDef PassportForWorkCsp(policy::PolicyEngine& engine);
NodeDef PolicyCsp(policy::PolicyEngine& engine);
NodeDef DmAgentCsp(policy::PolicyEngine& engine);

}  // namespace dm::csp
