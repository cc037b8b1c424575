// ./Vendor/MSFT/PassportForWork (csp-and-container.md 1.1-1.3): the device and user trees.
// Interior nodes ({TenantId}, Policies, PINComplexity, ExcludeSecurityDevices, Remote) live in
// the node store; every leaf is a catalog setting the policy engine holds for source MDM,
// scope from the URI, origin = the tenant id.
#include "csp/csps_internal.h"
#include "csp/node_store.h"
#include "policy/catalog.h"
#include "policy/policy.h"
#include "storage/database.h"

namespace dm::csp {
namespace {

constexpr size_t kTenantSegment = 3;  // Vendor/MSFT/PassportForWork/{TenantId}/...

struct LeafSpec {
  const char* name;
  Format format;
  NodeScope scope;  // from the tree in 1.1; the catalog can only narrow it
};

std::string TenantOrigin(const NodeAddress& a) {
  return a.dynamic.empty() ? std::string() : a.dynamic.front();
}

class Builder {
 public:
  Builder(storage::Database& db, const Clock& clock, policy::PolicyEngine& engine)
      : db_(db), clock_(clock), engine_(engine) {}

  // A leaf for catalog setting "PassportForWork/<setting_suffix>".
  NodeDef Leaf(const LeafSpec& spec, const std::string& setting_suffix, bool under_tenant) {
    std::string setting = "PassportForWork/" + setting_suffix;
    const policy::SettingDef* def = policy::FindSetting(setting);
    if (def == nullptr) {
      // Every PassportForWork leaf is in the catalog (a test checks it); should one be
      // missing, its value still lives in the tree rather than the node disappearing.
      NodeDef d = csp::Leaf(spec.name, spec.format, access::kAddDeleteGetReplace, Storage::kStored);
      d.scope = spec.scope;
      return d;
    }
    NodeDef d =
        PolicyLeaf(engine_, spec.name, spec.format, spec.scope, *def,
                   under_tenant ? TenantOrigin : std::function<std::string(const NodeAddress&)>());
    if (under_tenant) d.write = OneTenantOwns(std::move(d.write), setting);
    return d;
  }

  std::vector<NodeDef> Leaves(std::initializer_list<LeafSpec> specs, const std::string& prefix,
                              bool under_tenant) {
    std::vector<NodeDef> out;
    for (const LeafSpec& s : specs) out.push_back(Leaf(s, prefix + s.name, under_tenant));
    return out;
  }

 private:
  // The engine holds one MDM value per setting and scope, so one tenant node owns a leaf: the
  // one that wrote it last. Writing EnablePinRecovery under tenant B removes the leaf under
  // tenant A, so a later Delete of A does not clear B's value.
  //
  // The previous owner is the origin the engine recorded with the value (every write of this
  // leaf goes through here, and a Delete clears value and leaf together), so removing it is one
  // keyed delete. A pattern delete over every tenant's rows made each write cost O(tenants),
  // and a package spanning many tenants quadratic (dm_bench BM_ApplyPackage/policy). Only a
  // value without a recorded origin falls back to the pattern.
  std::function<Status(const NodeAddress&, std::string_view)> OneTenantOwns(
      std::function<Status(const NodeAddress&, std::string_view)> write, std::string setting) {
    // Captures the database, clock and engine, not the Builder: the builder is gone once the
    // table is.
    return [&db = db_, &clock = clock_, &engine = engine_, write = std::move(write),
            setting = std::move(setting)](const NodeAddress& a, std::string_view v) -> Status {
      if (a.segments.size() <= kTenantSegment + 1) return write(a, v);
      policy::Target target;
      target.scope = a.scope == UriScope::kUser ? policy::Scope::kUser : policy::Scope::kDevice;
      target.user = a.scope == UriScope::kUser ? a.user : std::string();
      target.setting = setting;
      DM_ASSIGN_OR_RETURN(std::optional<std::string> previous,
                          engine.DesiredOrigin(policy::Source::kMdm, target));
      DM_RETURN_IF_ERROR(write(a, v));
      const std::string tenant = TenantOrigin(a);
      if (!previous || *previous == tenant) return Status::Ok();
      NodeStore store(db, clock);
      const NodeKey self{a.scope, a.user, a.Path()};
      if (previous->empty()) {
        std::vector<std::string> prefix(a.segments.begin(),
                                        a.segments.begin() + static_cast<long>(kTenantSegment));
        std::vector<std::string> rest(a.segments.begin() + static_cast<long>(kTenantSegment) + 1,
                                      a.segments.end());
        // Static names only below the tenant, so the pattern has no GLOB metacharacters there.
        return store.RemoveMatchingExcept(self, JoinPath(prefix) + "/*/" + JoinPath(rest));
      }
      std::vector<std::string> owner = a.segments;
      owner[kTenantSegment] = *previous;
      return store.Remove(NodeKey{a.scope, a.user, JoinPath(owner)});
    };
  }

  storage::Database& db_;
  const Clock& clock_;
  policy::PolicyEngine& engine_;
};

constexpr NodeScope kBoth = NodeScope::kBoth;
constexpr NodeScope kDevice = NodeScope::kDevice;

}  // namespace

NodeDef PassportForWorkCsp(storage::Database& db, const Clock& clock,
                           policy::PolicyEngine& engine) {
  Builder b(db, clock, engine);
  const unsigned kNodeAccess = access::kAddDeleteGet;

  std::vector<NodeDef> policies = b.Leaves(
      {
          {"DisablePostLogonProvisioning", Format::kBool, kDevice},
          {"EnablePinRecovery", Format::kBool, kBoth},
          {"EnableWindowsHelloProvisioningForSecurityKeys", Format::kBool, kDevice},
          {"RequireSecurityDevice", Format::kBool, kBoth},
          {"UseCertificateForOnPremAuth", Format::kBool, kDevice},
          {"UseCloudTrustForOnPremAuth", Format::kBool, kDevice},
          {"UseHelloCertificatesAsSmartCardCertificates", Format::kBool, kDevice},
          {"UsePassportForWork", Format::kBool, kBoth},
      },
      "", true);
  policies.push_back(std::move(Interior("ExcludeSecurityDevices", kNodeAccess, Storage::kStored,
                                        b.Leaves({{"TPM12", Format::kBool, kDevice}},
                                                 "ExcludeSecurityDevices/", true)))
                         .DeviceOnly());
  policies.push_back(Interior("PINComplexity", kNodeAccess, Storage::kStored,
                              b.Leaves(
                                  {
                                      {"Digits", Format::kInt, kBoth},
                                      {"Expiration", Format::kInt, kBoth},
                                      {"History", Format::kInt, kBoth},
                                      {"LowercaseLetters", Format::kInt, kBoth},
                                      {"MaximumPINLength", Format::kInt, kBoth},
                                      {"MinimumPINLength", Format::kInt, kBoth},
                                      {"SpecialCharacters", Format::kInt, kBoth},
                                      {"UppercaseLetters", Format::kInt, kBoth},
                                  },
                                  "PINComplexity/", true)));
  policies.push_back(std::move(Interior("Remote", kNodeAccess, Storage::kStored,
                                        b.Leaves({{"UseRemotePassport", Format::kBool, kDevice}},
                                                 "Remote/", true)))
                         .DeviceOnly());

  NodeDef tenant =
      DynamicInterior(Naming::kGuid, "{TenantId}", kNodeAccess, Storage::kStored,
                      {Interior("Policies", kNodeAccess, Storage::kStored, std::move(policies))});

  // Root-level groups: Get-only, permanent, device only; their leaves are writable.
  auto group = [&](const char* name, std::initializer_list<LeafSpec> leaves) {
    return std::move(Interior(name, access::kGet, Storage::kPermanent,
                              b.Leaves(leaves, std::string(name) + "/", false)))
        .DeviceOnly();
  };
  std::vector<NodeDef> root;
  root.push_back(std::move(tenant));
  root.push_back(
      group("Biometrics", {{"EnableESSwithSupportedPeripherals", Format::kInt, kDevice},
                           {"FacialFeaturesUseEnhancedAntiSpoofing", Format::kBool, kDevice},
                           {"UseBiometrics", Format::kBool, kDevice}}));
  root.push_back(group("DeviceUnlock", {{"GroupA", Format::kChr, kDevice},
                                        {"GroupB", Format::kChr, kDevice},
                                        {"Plugins", Format::kChr, kDevice}}));
  root.push_back(group("DynamicLock", {{"DynamicLock", Format::kBool, kDevice},
                                       {"Plugins", Format::kChr, kDevice}}));
  root.push_back(group("SecurityKey", {{"UseSecurityKeyForSignin", Format::kInt, kDevice}}));
  // Deprecated in favour of Biometrics/UseBiometrics; still accepted (its own catalog entry).
  root.push_back(b.Leaf({"UseBiometrics", Format::kBool, kDevice}, "UseBiometrics", false));

  return Interior("PassportForWork", access::kGet, Storage::kPermanent, std::move(root));
}

}  // namespace dm::csp
