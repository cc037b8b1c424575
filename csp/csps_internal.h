// The CSP tables, one builder per CSP; csp/device_tree.cpp mounts them. Internal to csp/.
#pragma once

#include "base/clock.h"
#include "csp/host_facts.h"
#include "csp/node.h"

namespace dm::storage {
class Database;
}
namespace dm::container {
class ContainerStore;
}
namespace dm::policy {
class PolicyEngine;
struct SettingDef;
}  // namespace dm::policy

namespace dm::csp {

// A Get hook: the device fact `key` if set, else the host's `field` if known, else `fallback`.
std::function<Result<std::optional<std::string>>(const NodeAddress&)> FactOr(
    storage::Database& db, const char* key, HostFactsSource host, std::string HostFacts::*field,
    std::string fallback);

// A leaf whose value the policy engine holds as the MDM source's desired value for the
// catalog setting `def` (Add/Delete/Get/Replace). Its scope is `scope` narrowed by the
// catalog (device_only, user_only); values are checked and normalised by the catalog; the
// target is the URI's scope and user; `origin` names where a value came from.
NodeDef PolicyLeaf(policy::PolicyEngine& engine, std::string name, Format format, NodeScope scope,
                   const policy::SettingDef& def,
                   std::function<std::string(const NodeAddress&)> origin);
// The Meta Format of a catalog setting's values.
Format FormatOf(const policy::SettingDef& def);

// Mounted at the root: ./DevInfo, ./DevDetail.
NodeDef DevInfoCsp(storage::Database& db, HostFactsSource host);
NodeDef DevDetailCsp(storage::Database& db, const Clock& clock, HostFactsSource host);
// Mounted under Vendor/MSFT.
NodeDef DmClientCsp();
NodeDef RebootCsp(storage::Database& db, const Clock& clock);
NodeDef CertificateStoreCsp(storage::Database& db);
NodeDef PassportForWorkCsp(storage::Database& db, const Clock& clock, policy::PolicyEngine& engine);
NodeDef PolicyCsp(policy::PolicyEngine& engine);
NodeDef DmAgentCsp(policy::PolicyEngine& engine, storage::Database& db,
                   container::ContainerStore& containers);

}  // namespace dm::csp
