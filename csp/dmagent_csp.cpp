// ./Vendor/MSFT/DMAgent: the agent's own reporting CSP (ARCHITECTURE decision 6), all Get,
// device scope:
//   Report                                  xml  PolicyEngine::ReportXml()
//   Compliance/{Setting}/{State,Source,Reason,Desired,Effective,TakesEffect}
//                                                the device-level status of each setting
//   Users/{User}/CanReset                   chr  DestructiveOnly | NonDestructiveOnly |
//                                                DestructiveAndNonDestructive | Unknown
//   Users/{User}/CanResetReason             chr  why
//   Users/{User}/Compliance/{Setting}/...        that user's statuses
// {Setting} is the catalog name as one segment, its '/' percent-encoded:
//   ./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/State
// Values are as of the last evaluation (the tree evaluates after every committed message).
#include "csp/csps_internal.h"
#include "policy/catalog.h"
#include "policy/policy.h"

namespace dm::csp {
namespace {

using GetHook = std::function<Result<std::optional<std::string>>(const NodeAddress&)>;
using Field = std::function<std::optional<std::string>(const policy::SettingStatus&)>;

// addr.dynamic = {setting} for the device, {user, setting} under Users.
Result<std::vector<policy::SettingStatus>> StatusesFor(policy::PolicyEngine& engine,
                                                       const NodeAddress& a, bool per_user) {
  std::string user = per_user && !a.dynamic.empty() ? a.dynamic.front() : std::string();
  return engine.Compliance(user);
}

GetHook StatusField(policy::PolicyEngine& engine, bool per_user, Field field) {
  return [&engine, per_user, field](const NodeAddress& a) -> Result<std::optional<std::string>> {
    DM_ASSIGN_OR_RETURN(auto all, StatusesFor(engine, a, per_user));
    const std::string& setting = a.dynamic.back();
    for (const policy::SettingStatus& s : all) {
      if (s.setting == setting) return field(s);
    }
    return std::optional<std::string>();
  };
}

NodeDef SettingNode(policy::PolicyEngine& engine, bool per_user) {
  auto field = [&](const char* name, Field f) {
    return ComputedLeaf(name, Format::kChr, StatusField(engine, per_user, std::move(f)));
  };
  NodeDef node = DynamicInterior(
      Naming::kAnyName, "{Setting}", access::kGet, Storage::kComputed,
      {field("State",
             [](const policy::SettingStatus& s) {
               return std::optional<std::string>(policy::ComplianceStateName(s.state));
             }),
       field("Source", [](const policy::SettingStatus& s) { return std::optional(s.source); }),
       field("Reason", [](const policy::SettingStatus& s) { return std::optional(s.reason); }),
       field("Desired", [](const policy::SettingStatus& s) { return s.desired; }),
       field("Effective", [](const policy::SettingStatus& s) { return s.effective; }),
       field("TakesEffect", [](const policy::SettingStatus& s) {
         return std::optional<std::string>(policy::TakesEffectName(s.takes_effect));
       })});
  node.instances = [&engine,
                    per_user](const NodeAddress& parent) -> Result<std::vector<std::string>> {
    // parent: .../Compliance (device) or .../Users/{User}/Compliance.
    DM_ASSIGN_OR_RETURN(auto all, StatusesFor(engine, parent, per_user));
    std::vector<std::string> names;
    for (const auto& s : all) names.push_back(s.setting);
    return names;
  };
  return node;
}

GetHook RecoveryField(policy::PolicyEngine& engine, bool reason) {
  return [&engine, reason](const NodeAddress& a) -> Result<std::optional<std::string>> {
    DM_ASSIGN_OR_RETURN(policy::RecoveryState r, engine.Recovery(a.dynamic.front()));
    return std::optional<std::string>(reason ? r.reason
                                             : std::string(policy::CanResetName(r.can_reset)));
  };
}

}  // namespace

NodeDef DmAgentCsp(policy::PolicyEngine& engine) {
  NodeDef report = ComputedLeaf(
      "Report", Format::kXml, [&engine](const NodeAddress&) -> Result<std::optional<std::string>> {
        DM_ASSIGN_OR_RETURN(std::string xml, engine.ReportXml());
        return std::optional<std::string>(std::move(xml));
      });
  NodeDef user =
      DynamicInterior(Naming::kAnyName, "{User}", access::kGet, Storage::kComputed,
                      {ComputedLeaf("CanReset", Format::kChr, RecoveryField(engine, false)),
                       ComputedLeaf("CanResetReason", Format::kChr, RecoveryField(engine, true)),
                       Interior("Compliance", access::kGet, Storage::kPermanent,
                                {SettingNode(engine, /*per_user=*/true)})});
  user.instances = [&engine](const NodeAddress&) { return engine.Users(); };
  return std::move(
             Interior("DMAgent", access::kGet, Storage::kPermanent,
                      {std::move(report),
                       Interior("Compliance", access::kGet, Storage::kPermanent,
                                {SettingNode(engine, /*per_user=*/false)}),
                       Interior("Users", access::kGet, Storage::kPermanent, {std::move(user)})}))
      .DeviceOnly();
}

}  // namespace dm::csp
