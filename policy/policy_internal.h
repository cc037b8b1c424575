// Internals of the policy engine shared with its tests: precedence resolution over the
// desired values of every source and scope. Not part of the public API.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/catalog.h"
#include "policy/policy.h"

namespace dm::policy::internal {

struct Desired {
  Source source = Source::kMdm;
  Scope scope = Scope::kDevice;
  std::string user;  // "" for device scope
  std::string setting;
  std::string value;  // canonical
};

// "MDM (device)", "LocalAdmin (user)".
std::string SourceLabel(Source source, Scope scope);

// What one scope says about one setting, after merging its sources.
struct ScopeValue {
  std::string value;      // the first source's value (the only one unless conflict)
  bool conflict = false;  // the sources at this scope disagree
  std::string label;      // "MDM (device)", "MDM (device) + LocalAdmin (device)", "... vs ..."
  std::string detail;     // "MDM (device) sets 8, LocalAdmin (device) sets 6"
};

class DesiredIndex {
 public:
  explicit DesiredIndex(std::vector<Desired> rows);
  std::optional<ScopeValue> At(Scope scope, const std::string& user,
                               std::string_view setting) const;
  bool Any(Scope scope, const std::string& user, std::string_view setting) const;

 private:
  std::vector<Desired> rows_;  // sorted by scope, user, setting, source
};

struct Resolution {
  enum Kind { kNotConfigured, kValue, kConflict } kind = kNotConfigured;
  std::optional<std::string> value;  // kValue
  std::string source;                // the label of the scope value that won
  std::string conflict_detail;       // kConflict
  std::string group_note;            // set when precedence or a group hid another scope's value
};

// The winning value for one row: the device (user "") or one user. User rows look at user
// scope first, then device scope (User MDM > Device MDM), with the PassportForWork groups
// taken whole from one scope (csp-and-container.md section 1.4).
Resolution Resolve(const DesiredIndex& index, const SettingDef& def, const std::string& user);

}  // namespace dm::policy::internal
