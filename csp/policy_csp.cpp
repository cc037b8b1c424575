// ./Vendor/MSFT/Policy (csp-and-container.md 2.1, 2.2): Config/{Area}/{Policy} is the MDM
// source's own value (Add/Delete/Get/Replace; Delete = not configured), Result/{Area}/{Policy}
// the value in force after precedence (Get only). Every catalog setting named "Area/Policy"
// outside PassportForWork is a policy here (the Authentication area today).
#include <map>

#include "csp/csps_internal.h"
#include "policy/catalog.h"
#include "policy/policy.h"

namespace dm::csp {
namespace {

NodeScope ScopeOf(const policy::SettingDef& def) {
  if (def.user_only) return NodeScope::kUser;
  if (def.device_only) return NodeScope::kDevice;
  return NodeScope::kBoth;
}

// The union of two scopes (an area is in a tree if any of its policies is).
NodeScope Union(NodeScope a, NodeScope b) { return a == b ? a : NodeScope::kBoth; }

struct Area {
  NodeScope scope;
  std::vector<const policy::SettingDef*> policies;
};

}  // namespace

NodeDef PolicyCsp(policy::PolicyEngine& engine) {
  std::map<std::string, Area> areas;  // sorted, so listings are stable
  for (const policy::SettingDef& def : policy::AllSettings()) {
    std::string_view name = def.name;
    size_t slash = name.find('/');
    if (slash == std::string_view::npos || name.find('/', slash + 1) != std::string_view::npos ||
        name.substr(0, slash) == "PassportForWork") {
      continue;
    }
    std::string area(name.substr(0, slash));
    auto [it, inserted] = areas.try_emplace(area, Area{ScopeOf(def), {}});
    if (!inserted) it->second.scope = Union(it->second.scope, ScopeOf(def));
    it->second.policies.push_back(&def);
  }

  std::vector<NodeDef> config_areas;
  std::vector<NodeDef> result_areas;
  for (const auto& [area, info] : areas) {
    std::vector<NodeDef> config_leaves;
    std::vector<NodeDef> result_leaves;
    for (const policy::SettingDef* def : info.policies) {
      std::string policy_name(def->name.substr(area.size() + 1));
      config_leaves.push_back(PolicyLeaf(engine, policy_name, FormatOf(*def), NodeScope::kBoth,
                                         *def, [](const NodeAddress& a) { return a.Uri(); }));
      std::string setting(def->name);
      NodeDef result =
          ComputedLeaf(policy_name, FormatOf(*def), [&engine, setting](const NodeAddress& a) {
            policy::Target t;
            t.scope = a.scope == UriScope::kUser ? policy::Scope::kUser : policy::Scope::kDevice;
            t.user = a.user;
            t.setting = setting;
            // The catalog default when nothing is configured; 404 for settings without one.
            return engine.Effective(t);
          });
      result.scope = ScopeOf(*def);
      result_leaves.push_back(std::move(result));
    }
    NodeDef config_area =
        Interior(area, access::kAddDeleteGet, Storage::kStored, std::move(config_leaves));
    config_area.scope = info.scope;
    config_areas.push_back(std::move(config_area));
    NodeDef result_area =
        Interior(area, access::kGet, Storage::kPermanent, std::move(result_leaves));
    result_area.scope = info.scope;
    result_areas.push_back(std::move(result_area));
  }
  return Interior("Policy", access::kGet, Storage::kPermanent,
                  {Interior("Config", access::kGet, Storage::kPermanent, std::move(config_areas)),
                   Interior("Result", access::kGet, Storage::kPermanent, std::move(result_areas))});
}

}  // namespace dm::csp
