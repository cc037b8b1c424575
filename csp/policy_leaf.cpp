// Leaves backed by the policy engine (PassportForWork, Policy/Config).
#include "csp/csps_internal.h"
#include "policy/catalog.h"
#include "policy/policy.h"

namespace dm::csp {
namespace {

policy::Target TargetFor(const NodeAddress& a, std::string_view setting) {
  policy::Target t;
  t.scope = a.scope == UriScope::kUser ? policy::Scope::kUser : policy::Scope::kDevice;
  t.user = a.scope == UriScope::kUser ? a.user : std::string();
  t.setting = std::string(setting);
  return t;
}

}  // namespace

Format FormatOf(const policy::SettingDef& def) {
  switch (def.type) {
    case policy::ValueType::kBool:
      return Format::kBool;
    case policy::ValueType::kInt:
      return Format::kInt;
    case policy::ValueType::kString:
      return Format::kChr;
  }
  return Format::kChr;
}

NodeDef PolicyLeaf(policy::PolicyEngine& engine, std::string name, Format format, NodeScope scope,
                   const policy::SettingDef& def,
                   std::function<std::string(const NodeAddress&)> origin) {
  NodeDef leaf = Leaf(std::move(name), format, access::kAddDeleteGetReplace, Storage::kExternal);
  leaf.scope = scope;
  if (def.device_only) leaf.scope = NodeScope::kDevice;
  if (def.user_only) leaf.scope = NodeScope::kUser;
  const std::string setting(def.name);
  const policy::SettingDef* d = &def;
  leaf.normalize = [d](const NodeAddress&, std::string_view v) {
    return policy::NormalizeValue(*d, v);
  };
  leaf.read = [&engine, setting](const NodeAddress& a) {
    return engine.Desired(policy::Source::kMdm, TargetFor(a, setting));
  };
  leaf.write = [&engine, setting, origin = std::move(origin)](const NodeAddress& a,
                                                              std::string_view v) {
    return engine.SetDesired(policy::Source::kMdm, TargetFor(a, setting), v,
                             origin ? origin(a) : std::string());
  };
  leaf.clear = [&engine, setting](const NodeAddress& a) {
    return engine.ClearDesired(policy::Source::kMdm, TargetFor(a, setting));
  };
  return leaf;
}

}  // namespace dm::csp
