// ./Vendor/MSFT/DMAgent: the agent's own reporting CSP (ARCHITECTURE decision 6), device
// scope; these are Get only:
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
// What the server configures here (Subscriptions, Services) is described in csp/dmagent_csp.h.
#include "csp/dmagent_csp.h"

#include <cctype>

#include "base/crypto.h"
#include "container/container.h"
#include "csp/csps_internal.h"
#include "csp/device_facts.h"
#include "csp/node_store.h"
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

constexpr char kComplianceAlertPath[] = "Vendor/MSFT/DMAgent/Subscriptions/ComplianceAlert";

Status ZeroOrOne(const NodeAddress& a, std::string_view v) {
  if (v == "0" || v == "1") return Status::Ok();
  return InvalidArgument(a.Uri() + " takes 0 or 1, got " + std::string(v));
}

// An absolute https URL with a host, printable ASCII without spaces, of bounded length: the
// agent POSTs to it with the device's credentials, so nothing else is taken.
Status HttpsUrl(const NodeAddress& a, std::string_view v) {
  constexpr std::string_view kScheme = "https://";
  if (v.size() > kMaxServiceUrlLength) {
    return InvalidArgument(a.Uri() + ": the URL is longer than " +
                           std::to_string(kMaxServiceUrlLength) + " characters");
  }
  if (v.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument(a.Uri() + " takes an https:// URL");
  }
  std::string_view host = v.substr(kScheme.size());
  host = host.substr(0, host.find_first_of("/?#"));
  if (host.empty() || host.front() == ':' || host.find('@') != std::string_view::npos) {
    return InvalidArgument(a.Uri() + ": the URL has no host (or carries credentials)");
  }
  for (char c : v) {
    if (!std::isgraph(static_cast<unsigned char>(c))) {
      return InvalidArgument(a.Uri() + ": the URL contains a space or control character");
    }
  }
  return Status::Ok();
}

Status RsaPublicKey(const NodeAddress& a, std::string_view v) {
  if (v.size() > kMaxPublicKeyPemLength) {
    return InvalidArgument(a.Uri() + ": the key is longer than " +
                           std::to_string(kMaxPublicKeyPemLength) + " characters");
  }
  // Usable means a protector can be encrypted to it (what the container store requires too).
  Status usable = crypto::RsaOaepEncrypt(v, Bytes(32)).status();
  if (!usable.ok()) {
    return InvalidArgument(a.Uri() + " takes an RSA public key (SPKI PEM): " + usable.message());
  }
  return Status::Ok();
}

// A Services leaf: its value lives in the settings table under `key`; `also` runs with every
// write ("" on Delete) inside the command's transaction.
NodeDef ServiceLeaf(storage::Database& db, const char* name, const char* key,
                    std::function<Status(const NodeAddress&, std::string_view)> validate,
                    std::function<Status(std::string_view)> also = {}) {
  NodeDef d = std::move(Leaf(name, Format::kChr, access::kDelete | access::kGet | access::kReplace,
                             Storage::kExternal))
                  .Validate(std::move(validate));
  d.read = [&db, key](const NodeAddress&) -> Result<std::optional<std::string>> {
    DM_ASSIGN_OR_RETURN(auto v, ReadFact(db, key));
    if (v && v->empty()) return std::optional<std::string>();
    return v;
  };
  d.write = [&db, key, also](const NodeAddress&, std::string_view v) -> Status {
    if (also) DM_RETURN_IF_ERROR(also(v));
    return WriteFact(db, key, v);
  };
  d.clear = [&db, key, also](const NodeAddress&) -> Status {
    if (also) DM_RETURN_IF_ERROR(also(""));
    return WriteFact(db, key, "");
  };
  return d;
}

}  // namespace

Result<bool> ComplianceAlertSubscribed(storage::Database& db) {
  NodeStore store(db, Clock::System());
  DM_ASSIGN_OR_RETURN(auto row, store.Find(NodeKey{UriScope::kDevice, "", kComplianceAlertPath}));
  return row && row->value == "1";
}

NodeDef DmAgentCsp(policy::PolicyEngine& engine, storage::Database& db,
                   container::ContainerStore& containers) {
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
  NodeDef alert = std::move(Leaf("ComplianceAlert", Format::kInt, access::kGet | access::kReplace,
                                 Storage::kStored))
                      .Default("0")
                      .Validate(ZeroOrOne);
  auto install_key = [&containers](std::string_view pem) {
    return containers.SetPinResetServiceKey(pem);
  };
  return std::move(
             Interior(
                 "DMAgent", access::kGet, Storage::kPermanent,
                 {std::move(report),
                  Interior("Compliance", access::kGet, Storage::kPermanent,
                           {SettingNode(engine, /*per_user=*/false)}),
                  Interior("Users", access::kGet, Storage::kPermanent, {std::move(user)}),
                  Interior("Subscriptions", access::kGet, Storage::kPermanent, {std::move(alert)}),
                  Interior("Services", access::kGet, Storage::kPermanent,
                           {ServiceLeaf(db, "PinResetUrl", kPinResetUrlKey, HttpsUrl),
                            ServiceLeaf(db, "PinResetPublicKey", kPinResetPublicKeyKey,
                                        RsaPublicKey, install_key),
                            ServiceLeaf(db, "HelloCertificateUrl", kHelloCertUrlKey, HttpsUrl),
                            ServiceLeaf(db, "FederationLoginUrl", kFederationLoginUrlKey, HttpsUrl),
                            ServiceLeaf(db, "UserTokenUrl", kUserTokenUrlKey, HttpsUrl)})}))
      .DeviceOnly();
}

}  // namespace dm::csp
