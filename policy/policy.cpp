#include "policy/policy.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "container/container.h"
#include "container/security_key.h"
#include "policy/policy_internal.h"
#include "storage/database.h"

namespace dm::policy {

std::string_view SourceName(Source s) {
  switch (s) {
    case Source::kMdm:
      return "MDM";
    case Source::kLocalAdmin:
      return "LocalAdmin";
  }
  return "Unknown";
}

std::string_view ComplianceStateName(ComplianceState s) {
  switch (s) {
    case ComplianceState::kSucceeded:
      return "Succeeded";
    case ComplianceState::kError:
      return "Error";
    case ComplianceState::kConflict:
      return "Conflict";
    case ComplianceState::kNotApplicable:
      return "NotApplicable";
    case ComplianceState::kPending:
      return "Pending";
    case ComplianceState::kPendingReboot:
      return "PendingReboot";
  }
  return "Unknown";
}

std::string_view JoinTypeName(JoinType j) {
  switch (j) {
    case JoinType::kAzureAdJoined:
      return "AzureAdJoined";
    case JoinType::kHybridAzureAdJoined:
      return "HybridAzureAdJoined";
    case JoinType::kDomainJoined:
      return "DomainJoined";
    case JoinType::kNotJoined:
      return "NotJoined";
  }
  return "Unknown";
}

std::string_view TrustModelName(TrustModel t) {
  switch (t) {
    case TrustModel::kCloudKerberosTrust:
      return "CloudKerberosTrust";
    case TrustModel::kKeyTrust:
      return "KeyTrust";
    case TrustModel::kCertificateTrust:
      return "CertificateTrust";
  }
  return "Unknown";
}

namespace {

using DesiredRow = internal::Desired;
using internal::DesiredIndex;
using internal::Resolution;

constexpr char kUsePassportForWork[] = "PassportForWork/UsePassportForWork";
constexpr char kEnablePinRecovery[] = "PassportForWork/EnablePinRecovery";
constexpr char kRequireSecurityDevice[] = "PassportForWork/RequireSecurityDevice";
constexpr char kMinLength[] = "PassportForWork/PINComplexity/MinimumPINLength";
constexpr char kMaxLength[] = "PassportForWork/PINComplexity/MaximumPINLength";
constexpr char kUppercase[] = "PassportForWork/PINComplexity/UppercaseLetters";
constexpr char kLowercase[] = "PassportForWork/PINComplexity/LowercaseLetters";
constexpr char kSpecial[] = "PassportForWork/PINComplexity/SpecialCharacters";
constexpr char kDigits[] = "PassportForWork/PINComplexity/Digits";
constexpr char kHistory[] = "PassportForWork/PINComplexity/History";
constexpr char kExpiration[] = "PassportForWork/PINComplexity/Expiration";
constexpr char kWebSignInUrls[] = "Authentication/ConfigureWebSignInAllowedUrls";
constexpr char kEnableWebSignIn[] = "Authentication/EnableWebSignIn";

// policy_applied items.
constexpr char kAppliedContainerPolicy[] = "container_policy";
constexpr char kAppliedWebSignIn[] = "web_signin_allowed_urls";

using RowKey = std::pair<std::string, std::string>;  // (user or "" for the device, setting)

struct EffRow {
  std::string value;
  std::string source;
  int64_t since = 0;
};

struct PendRow {
  std::optional<std::string> value;  // none = revert to not configured
  std::string source;
  TakesEffect takes_effect = TakesEffect::kNextSignIn;
  int64_t queued_at = 0;
};

struct StatusRow {
  ComplianceState state = ComplianceState::kSucceeded;
  std::optional<std::string> desired;
  std::optional<std::string> effective;
  std::string source;
  std::string reason;
  bool corrective = false;
  int64_t since = 0;
};

// What applying to the container subsystem did to one row.
struct ApplyOutcome {
  bool repaired = false;
  std::string repair_reason;
  std::optional<std::string> error;
};

struct Moment {
  enum Kind { kNone, kSignIn, kReboot } kind = kNone;
  std::string user;
};

// Statement::Bind has no std::string overload (std::string converts to both string_view and
// optional<string>), so arguments pass through Arg first.
template <typename T>
auto Arg(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string_view(v);
  } else {
    return v;
  }
}

template <typename... Args>
Status RunSql(storage::Database& db, std::string_view sql, const Args&... args) {
  return db.Run(sql, Arg(args)...);
}

template <typename... Args>
void BindArgs(storage::Statement& st, const Args&... args) {
  st.BindAll(Arg(args)...);
}

std::string_view ScopeName(Scope s) { return s == Scope::kDevice ? "device" : "user"; }

std::string_view ShortNameOf(std::string_view setting) {
  auto slash = setting.rfind('/');
  return slash == std::string_view::npos ? setting : setting.substr(slash + 1);
}

Result<Source> ParseSource(std::string_view s) {
  if (s == "MDM") return Source::kMdm;
  if (s == "LocalAdmin") return Source::kLocalAdmin;
  return Corruption("policy_desired has an unknown source '" + std::string(s) + "'");
}

Result<ComplianceState> ParseState(std::string_view s) {
  for (ComplianceState st : {ComplianceState::kSucceeded, ComplianceState::kError,
                             ComplianceState::kConflict, ComplianceState::kNotApplicable,
                             ComplianceState::kPending, ComplianceState::kPendingReboot}) {
    if (ComplianceStateName(st) == s) return st;
  }
  return Corruption("policy_status has an unknown state '" + std::string(s) + "'");
}

Result<TakesEffect> ParseTakesEffect(std::string_view s) {
  for (TakesEffect t :
       {TakesEffect::kImmediately, TakesEffect::kNextSignIn, TakesEffect::kAfterReboot}) {
    if (TakesEffectName(t) == s) return t;
  }
  return Corruption("policy_pending has an unknown moment '" + std::string(s) + "'");
}

std::string Who(const std::string& user) { return user.empty() ? "the device" : user; }

std::string ShowValue(const std::optional<std::string>& v) {
  return v ? *v : std::string("(not configured)");
}

// The container-bound fields of AppliedPolicy, as (setting, canonical value) pairs; "" = not
// configured. The same list serialises the engine's record of what it applied.
std::vector<std::pair<std::string, std::string>> Fields(const container::AppliedPolicy& p) {
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  auto i = [](const std::optional<int>& v) { return v ? std::to_string(*v) : std::string(); };
  return {
      {kUsePassportForWork, b(p.hello_enabled)},
      {kEnablePinRecovery, b(p.pin_recovery_enabled)},
      {kRequireSecurityDevice, b(p.require_security_device)},
      {kMinLength, i(p.complexity.minimum_length)},
      {kMaxLength, i(p.complexity.maximum_length)},
      {kUppercase, i(p.complexity.uppercase)},
      {kLowercase, i(p.complexity.lowercase)},
      {kSpecial, i(p.complexity.special)},
      {kDigits, i(p.complexity.digits)},
      {kHistory, i(p.complexity.history)},
      {kExpiration, i(p.complexity.expiration_days)},
  };
}

bool IsContainerField(std::string_view setting) {
  for (const auto& [name, value] : Fields(container::AppliedPolicy{})) {
    if (name == setting) return true;
  }
  return false;
}

std::string SerializeFields(const container::AppliedPolicy& p) {
  std::string out;
  for (const auto& [k, v] : Fields(p)) out += k + "=" + v + "\n";
  return out;
}

std::map<std::string, std::string> ParseFields(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
    size_t eq = line.find('=');
    if (eq != std::string_view::npos) {
      out[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::optional<int64_t> ParseInt(std::string_view v) {
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) return std::nullopt;
  return n;
}

// Stored values are canonical (LoadEffective drops any that are not), so this only fails on
// "" (not configured).
std::optional<int> OptInt(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  auto n = ParseInt(*v);
  if (!n) return std::nullopt;
  return static_cast<int>(*n);
}

// A stored value the catalog no longer accepts (the database was edited by hand) is dropped,
// so the evaluation writes the right one again.
bool StoredValueValid(std::string_view setting, const std::optional<std::string>& value) {
  const SettingDef* def = FindSetting(setting);
  if (!def) return false;
  if (!value) return true;
  auto canonical = NormalizeValue(*def, *value);
  if (canonical.ok() && *canonical == *value) return true;
  spdlog::warn("policy: ignoring stored value '{}' of {}: not canonical", *value, setting);
  return false;
}

bool IsBiometrics(std::string_view setting) {
  return setting.starts_with("PassportForWork/Biometrics/") ||
         setting == "PassportForWork/UseBiometrics";
}

bool RecoveryJoinOk(JoinType j) {
  return j == JoinType::kAzureAdJoined || j == JoinType::kHybridAzureAdJoined;
}

void AppendXmlEscaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\t':
        out += "&#9;";
        break;
      default:
        // Other control characters are not allowed in XML 1.0; they never come from the
        // catalog's validated values, but a reason could quote one.
        if (static_cast<unsigned char>(c) < 0x20) {
          out += '?';
        } else {
          out += c;
        }
    }
  }
}

void Attr(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  AppendXmlEscaped(out, value);
  out += '"';
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Resolution: precedence (User > Device), the two PassportForWork groups, and sources.

namespace internal {

std::string SourceLabel(Source source, Scope scope) {
  return std::string(SourceName(source)) + " (" + std::string(ScopeName(scope)) + ")";
}

DesiredIndex::DesiredIndex(std::vector<Desired> rows) : rows_(std::move(rows)) {
  std::sort(rows_.begin(), rows_.end(), [](const Desired& a, const Desired& b) {
    return std::tie(a.scope, a.user, a.setting, a.source) <
           std::tie(b.scope, b.user, b.setting, b.source);
  });
}

std::optional<ScopeValue> DesiredIndex::At(Scope scope, const std::string& user,
                                           std::string_view setting) const {
  std::optional<ScopeValue> out;
  std::vector<const Desired*> hits;
  for (const Desired& d : rows_) {
    if (d.scope == scope && d.user == user && d.setting == setting) hits.push_back(&d);
  }
  if (hits.empty()) return out;
  out.emplace();
  out->value = hits.front()->value;
  bool differ = false;
  for (const Desired* d : hits) differ |= d->value != hits.front()->value;
  std::string sep = differ ? " vs " : " + ";
  for (size_t i = 0; i < hits.size(); ++i) {
    if (i) out->label += sep;
    out->label += SourceLabel(hits[i]->source, hits[i]->scope);
    if (i) out->detail += ", ";
    out->detail += SourceLabel(hits[i]->source, hits[i]->scope) + " sets " + hits[i]->value;
  }
  out->conflict = differ;
  return out;
}

bool DesiredIndex::Any(Scope scope, const std::string& user, std::string_view setting) const {
  for (const Desired& d : rows_) {
    if (d.scope == scope && d.user == user && d.setting == setting) return true;
  }
  return false;
}

Resolution Resolve(const DesiredIndex& index, const SettingDef& def, const std::string& user) {
  // The scopes that can speak for this row, highest precedence first.
  std::vector<std::pair<Scope, std::string>> scopes;
  if (!user.empty()) scopes.emplace_back(Scope::kUser, user);
  if (!def.user_only) scopes.emplace_back(Scope::kDevice, std::string());

  auto sets_any_member = [&](const std::pair<Scope, std::string>& sc, Group g) {
    for (const SettingDef& m : AllSettings()) {
      if (m.group == g && index.Any(sc.first, sc.second, m.name)) return true;
    }
    return false;
  };

  const std::pair<Scope, std::string>* chosen = nullptr;
  std::string group_note;
  if (def.group == Group::kNone) {
    for (const auto& sc : scopes) {
      if (index.Any(sc.first, sc.second, def.name)) {
        chosen = &sc;
        break;
      }
    }
    if (chosen && chosen->first == Scope::kUser) {
      if (auto dev = index.At(Scope::kDevice, std::string(), def.name);
          dev && dev->value != index.At(chosen->first, chosen->second, def.name)->value) {
        group_note = "user scope overrides the device scope's " + dev->value;
      }
    }
  } else {
    if (def.group == Group::kHelloFeature) {
      for (const auto& sc : scopes) {
        if (index.Any(sc.first, sc.second, kUsePassportForWork)) {
          chosen = &sc;
          break;
        }
      }
    }
    if (!chosen) {
      for (const auto& sc : scopes) {
        if (sets_any_member(sc, def.group)) {
          chosen = &sc;
          break;
        }
      }
    }
    if (chosen && scopes.size() > 1) {
      // Say so when the group rule hides a value another scope set for this very setting.
      for (const auto& sc : scopes) {
        if (&sc == chosen) continue;
        auto other = index.At(sc.first, sc.second, def.name);
        auto mine = index.At(chosen->first, chosen->second, def.name);
        if (other && (!mine || mine->value != other->value)) {
          group_note = std::string(def.group == Group::kPinComplexity
                                       ? "the PIN complexity group (with RequireSecurityDevice)"
                                       : "the Hello feature group") +
                       " is taken whole from " + std::string(ScopeName(chosen->first)) +
                       " scope, so the " + std::string(ScopeName(sc.first)) + " scope's " +
                       other->value + " does not apply";
        }
      }
    }
  }

  Resolution r;
  r.group_note = group_note;
  if (!chosen) return r;
  auto v = index.At(chosen->first, chosen->second, def.name);
  if (!v) return r;  // the group's scope leaves this member not configured
  r.source = v->label;
  if (v->conflict) {
    r.kind = Resolution::kConflict;
    r.conflict_detail = v->detail;
  } else {
    r.kind = Resolution::kValue;
    r.value = v->value;
  }
  return r;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------

class PolicyEngine::Impl {
 public:
  Impl(storage::Database& db, container::ContainerStore& containers, const Clock& clock,
       EngineOptions options)
      : db_(db), containers_(containers), clock_(clock), options_(options) {}

  TakesEffect Timing(const SettingDef& def) const {
    if (def.name == kEnablePinRecovery && !options_.pin_recovery_needs_reboot) {
      return TakesEffect::kNextSignIn;
    }
    return def.takes_effect;
  }

  int64_t Now() const { return ToUnixSeconds(clock_.Now()); }

  // ---- reads ----
  Result<std::vector<DesiredRow>> LoadDesired() const {
    DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT source, scope, user, setting, value "
                                             "FROM policy_desired"));
    std::vector<DesiredRow> out;
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      DesiredRow d;
      DM_ASSIGN_OR_RETURN(d.source, ParseSource(st.Text(0)));
      d.scope = st.Text(1) == "user" ? Scope::kUser : Scope::kDevice;
      d.user = st.Text(2);
      d.setting = st.Text(3);
      d.value = st.Text(4);
      // A setting that left the catalog is ignored rather than failing every evaluation.
      if (FindSetting(d.setting)) out.push_back(std::move(d));
    }
    return out;
  }

  Result<std::map<RowKey, EffRow>> LoadEffective() const {
    DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT user, setting, value, source, since FROM "
                                             "policy_effective"));
    std::map<RowKey, EffRow> out;
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      if (!StoredValueValid(st.Text(1), st.Text(2))) continue;
      out[{st.Text(0), st.Text(1)}] = EffRow{st.Text(2), st.Text(3), st.Int(4)};
    }
    return out;
  }

  Result<std::map<RowKey, PendRow>> LoadPending() const {
    DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT user, setting, value, source, takes_effect, "
                                             "queued_at FROM policy_pending"));
    std::map<RowKey, PendRow> out;
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      PendRow p;
      p.value = st.OptText(2);
      p.source = st.Text(3);
      DM_ASSIGN_OR_RETURN(p.takes_effect, ParseTakesEffect(st.Text(4)));
      p.queued_at = st.Int(5);
      if (!StoredValueValid(st.Text(1), p.value)) continue;
      out[{st.Text(0), st.Text(1)}] = std::move(p);
    }
    return out;
  }

  Result<std::map<RowKey, StatusRow>> LoadStatus() const {
    DM_ASSIGN_OR_RETURN(auto st,
                        db_.Prepare("SELECT user, setting, state, desired, effective, source, "
                                    "reason, corrective, since FROM policy_status"));
    std::map<RowKey, StatusRow> out;
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      StatusRow s;
      DM_ASSIGN_OR_RETURN(s.state, ParseState(st.Text(2)));
      s.desired = st.OptText(3);
      s.effective = st.OptText(4);
      s.source = st.Text(5);
      s.reason = st.Text(6);
      s.corrective = st.Int(7) != 0;
      s.since = st.Int(8);
      out[{st.Text(0), st.Text(1)}] = std::move(s);
    }
    return out;
  }

  Result<std::optional<std::string>> GetSetting(std::string_view key) const {
    DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT value FROM settings WHERE key = ?1"));
    st.Bind(1, key);
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(st.Text(0));
  }

  Status PutSetting(std::string_view key, std::string_view value) {
    return RunSql(db_,
                  "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                  key, value);
  }

  Result<DeviceFacts> Facts() const {
    DeviceFacts f;
    auto as_bool = [](const std::optional<std::string>& v, bool fallback) {
      if (!v) return fallback;
      return *v == "true" || *v == "1" || *v == "yes";
    };
    DM_ASSIGN_OR_RETURN(auto tpm, GetSetting(kFactTpmPresent));
    f.tpm_present = as_bool(tpm, false);
    DM_ASSIGN_OR_RETURN(auto bio, GetSetting(kFactBiometricSensor));
    f.biometric_sensor = as_bool(bio, false);
    DM_ASSIGN_OR_RETURN(auto join, GetSetting(kFactJoinType));
    if (join) {
      bool found = false;
      for (JoinType j : {JoinType::kAzureAdJoined, JoinType::kHybridAzureAdJoined,
                         JoinType::kDomainJoined, JoinType::kNotJoined}) {
        if (JoinTypeName(j) == *join) {
          f.join_type = j;
          found = true;
        }
      }
      if (!found)
        return Corruption("settings " + std::string(kFactJoinType) + " = '" + *join +
                          "' is not a join type");
    }
    DM_ASSIGN_OR_RETURN(auto trust, GetSetting(kFactTrustModel));
    if (trust) {
      bool found = false;
      for (TrustModel t : {TrustModel::kCloudKerberosTrust, TrustModel::kKeyTrust,
                           TrustModel::kCertificateTrust}) {
        if (TrustModelName(t) == *trust) {
          f.trust_model = t;
          found = true;
        }
      }
      if (!found)
        return Corruption("settings " + std::string(kFactTrustModel) + " = '" + *trust +
                          "' is not a trust model");
    }
    return f;
  }

  Status SetFacts(const DeviceFacts& f) {
    DM_ASSIGN_OR_RETURN(auto tx, db_.Begin());
    DM_RETURN_IF_ERROR(PutSetting(kFactTpmPresent, f.tpm_present ? "true" : "false"));
    DM_RETURN_IF_ERROR(PutSetting(kFactBiometricSensor, f.biometric_sensor ? "true" : "false"));
    DM_RETURN_IF_ERROR(PutSetting(kFactJoinType, JoinTypeName(f.join_type)));
    DM_RETURN_IF_ERROR(PutSetting(kFactTrustModel, TrustModelName(f.trust_model)));
    return tx.Commit();
  }

  Result<BootRecord> LastBoot() const {
    BootRecord b;
    DM_ASSIGN_OR_RETURN(auto count, GetSetting(kBootCountKey));
    if (count) {
      auto n = ParseInt(*count);
      if (!n) return Corruption(std::string(kBootCountKey) + " is not a number: '" + *count + "'");
      b.count = *n;
    }
    DM_ASSIGN_OR_RETURN(auto last, GetSetting(kLastBootKey));
    if (last) {
      auto n = ParseInt(*last);
      if (!n) return Corruption(std::string(kLastBootKey) + " is not a number: '" + *last + "'");
      b.last_boot = FromUnixSeconds(*n);
    }
    return b;
  }

  // Users the engine knows without registering anyone: containers, sign-ins, user-scope
  // values and user rows.
  Result<std::set<std::string>> KnownUsers() const {
    std::set<std::string> users;
    DM_ASSIGN_OR_RETURN(auto from_containers, containers_.Users());
    users.insert(from_containers.begin(), from_containers.end());
    DM_ASSIGN_OR_RETURN(auto st,
                        db_.Prepare("SELECT name FROM policy_user UNION "
                                    "SELECT user FROM policy_desired WHERE scope = 'user' UNION "
                                    "SELECT user FROM policy_effective WHERE user <> '' UNION "
                                    "SELECT user FROM policy_pending WHERE user <> ''"));
    while (true) {
      DM_ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) break;
      users.insert(st.Text(0));
    }
    users.erase(std::string());
    return users;
  }

  Result<bool> IsRegistered(std::string_view user) const {
    DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT 1 FROM policy_user WHERE name = ?1"));
    st.Bind(1, user);
    return st.Step();
  }

  // A user the engine has not evaluated before starts from what is in force for the device:
  // a value that already took effect on the device is not pending again for a new user.
  Status Register(const std::string& user) {
    DM_ASSIGN_OR_RETURN(bool known, IsRegistered(user));
    if (known) return Status::Ok();
    DM_RETURN_IF_ERROR(
        RunSql(db_, "INSERT INTO policy_user (name, first_seen) VALUES (?1, ?2)", user, Now()));
    for (const SettingDef& def : AllSettings()) {
      if (!IsUserRelevant(def) || def.user_only) continue;
      DM_RETURN_IF_ERROR(
          RunSql(db_,
                 "INSERT OR IGNORE INTO policy_effective (user, setting, value, source, since) "
                 "SELECT ?1, setting, value, source, since FROM policy_effective "
                 "WHERE user = '' AND setting = ?2",
                 user, def.name));
    }
    return Status::Ok();
  }

  // ---- writes ----
  Status WriteEffective(const RowKey& k, const std::optional<std::string>& value,
                        const std::string& source) {
    if (!value) {
      return RunSql(db_, "DELETE FROM policy_effective WHERE user = ?1 AND setting = ?2", k.first,
                    k.second);
    }
    return RunSql(db_,
                  "INSERT INTO policy_effective (user, setting, value, source, since) "
                  "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user, setting) DO UPDATE SET "
                  "value = excluded.value, source = excluded.source, since = excluded.since",
                  k.first, k.second, *value, source, Now());
  }

  Status DeletePending(const RowKey& k) {
    return RunSql(db_, "DELETE FROM policy_pending WHERE user = ?1 AND setting = ?2", k.first,
                  k.second);
  }

  Status WritePending(const RowKey& k, const PendRow& p) {
    return RunSql(
        db_,
        "INSERT INTO policy_pending (user, setting, value, source, takes_effect, queued_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (user, setting) DO UPDATE SET "
        "value = excluded.value, source = excluded.source, takes_effect = excluded.takes_effect, "
        "queued_at = excluded.queued_at",
        k.first, k.second, p.value, p.source, TakesEffectName(p.takes_effect), p.queued_at);
  }

  Result<std::optional<std::string>> AppliedRecord(const std::string& user,
                                                   std::string_view item) const {
    DM_ASSIGN_OR_RETURN(
        auto st, db_.Prepare("SELECT value FROM policy_applied WHERE user = ?1 AND item = ?2"));
    BindArgs(st, user, item);
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(st.Text(0));
  }

  Status RecordApplied(const std::string& user, std::string_view item, std::string_view value) {
    return RunSql(db_,
                  "INSERT INTO policy_applied (user, item, value) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (user, item) DO UPDATE SET value = excluded.value",
                  user, item, value);
  }

  // ---- evaluation ----
  Status EvaluateAt(const Moment& moment);

  Status ApplyUser(const std::string& user, const std::map<RowKey, EffRow>& eff,
                   std::map<RowKey, ApplyOutcome>& outcomes);
  Status ApplyWebSignIn(const std::map<RowKey, EffRow>& eff,
                        std::map<RowKey, ApplyOutcome>& outcomes);

  Result<RecoveryState> Recovery(const std::string& user) const;
  Result<std::vector<SettingStatus>> Compliance(const std::optional<std::string>& user) const;

  storage::Database& db_;
  container::ContainerStore& containers_;
  const Clock& clock_;
  EngineOptions options_;
};

Status PolicyEngine::Impl::ApplyUser(const std::string& user, const std::map<RowKey, EffRow>& eff,
                                     std::map<RowKey, ApplyOutcome>& outcomes) {
  auto value = [&](std::string_view setting) -> std::optional<std::string> {
    auto it = eff.find({user, std::string(setting)});
    if (it == eff.end()) return std::nullopt;
    return it->second.value;
  };
  auto flag = [&](std::string_view setting, bool fallback) {
    auto v = value(setting);
    return v ? *v == "true" : fallback;
  };
  container::AppliedPolicy want;
  want.hello_enabled = flag(kUsePassportForWork, true);
  want.pin_recovery_enabled = flag(kEnablePinRecovery, false);
  want.require_security_device = flag(kRequireSecurityDevice, false);
  want.complexity.minimum_length = OptInt(value(kMinLength));
  want.complexity.maximum_length = OptInt(value(kMaxLength));
  want.complexity.uppercase = OptInt(value(kUppercase));
  want.complexity.lowercase = OptInt(value(kLowercase));
  want.complexity.special = OptInt(value(kSpecial));
  want.complexity.digits = OptInt(value(kDigits));
  want.complexity.history = OptInt(value(kHistory));
  want.complexity.expiration_days = OptInt(value(kExpiration));

  auto fail_all = [&](const std::string& why) {
    for (const auto& [setting, v] : Fields(want)) outcomes[{user, setting}].error = why;
  };

  auto current = containers_.GetAppliedPolicy(user);
  std::optional<container::AppliedPolicy> cur;
  if (current.ok()) {
    cur = *current;
  } else if (current.status().code() != Code::kNotFound) {
    fail_all("cannot read " + user + "'s applied policy: " + current.status().message());
    return Status::Ok();
  }
  DM_ASSIGN_OR_RETURN(auto record, AppliedRecord(user, kAppliedContainerPolicy));

  const auto want_fields = Fields(want);
  // Drift: the container no longer holds what the engine last applied (changed through the
  // container API or the database) and differs from what policy wants now.
  if (record) {
    auto rec = ParseFields(*record);
    auto cur_fields = Fields(cur.value_or(container::AppliedPolicy{}));
    for (size_t i = 0; i < want_fields.size(); ++i) {
      const auto& [setting, want_v] = want_fields[i];
      const std::string& cur_v = cur_fields[i].second;
      auto rec_it = rec.find(setting);
      bool drifted = !cur || rec_it == rec.end() || rec_it->second != cur_v;
      if (drifted && cur_v != want_v) {
        ApplyOutcome& o = outcomes[{user, setting}];
        o.repaired = true;
        o.repair_reason = "repaired drift: " + user + "'s container had " +
                          std::string(ShortNameOf(setting)) + "=" +
                          (cur ? (cur_v.empty() ? "(not configured)" : cur_v) : "(nothing)") +
                          ", policy requires " + (want_v.empty() ? "(not configured)" : want_v);
      }
    }
  }

  if (!cur || *cur != want) {
    auto applied = containers_.ApplyPolicy(user, want);
    if (!applied.ok()) {
      auto cur_fields = Fields(cur.value_or(container::AppliedPolicy{}));
      for (size_t i = 0; i < want_fields.size(); ++i) {
        if (!cur || cur_fields[i].second != want_fields[i].second) {
          ApplyOutcome& o = outcomes[{user, want_fields[i].first}];
          o.error = "applying to " + user + "'s container failed: " + applied.status().message();
          o.repaired = false;
        }
      }
      return Status::Ok();
    }
  }
  std::string serialized = SerializeFields(want);
  if (!record || *record != serialized) {
    DM_RETURN_IF_ERROR(RecordApplied(user, kAppliedContainerPolicy, serialized));
  }
  return Status::Ok();
}

Status PolicyEngine::Impl::ApplyWebSignIn(const std::map<RowKey, EffRow>& eff,
                                          std::map<RowKey, ApplyOutcome>& outcomes) {
  const RowKey key{"", kWebSignInUrls};
  auto it = eff.find(key);
  std::string want_raw = it == eff.end() ? std::string() : it->second.value;
  auto want = container::ParseWebSignInAllowList(want_raw);
  if (!want.ok()) {
    outcomes[key].error =
        "the container subsystem rejects the allow-list: " + want.status().message();
    return Status::Ok();
  }
  auto cur = containers_.WebSignInAllowList();
  if (!cur.ok()) {
    outcomes[key].error = "cannot read the web sign-in allow-list: " + cur.status().message();
    return Status::Ok();
  }
  DM_ASSIGN_OR_RETURN(auto record, AppliedRecord("", kAppliedWebSignIn));
  if (record && *cur != *want) {
    auto rec = container::ParseWebSignInAllowList(*record);
    if (!rec.ok() || *rec != *cur) {
      ApplyOutcome& o = outcomes[key];
      o.repaired = true;
      o.repair_reason =
          "repaired drift: the web sign-in allow-list had been changed outside policy";
    }
  }
  if (*cur != *want) {
    Status s = containers_.SetWebSignInAllowedUrls(want_raw);
    if (!s.ok()) {
      outcomes[key].error = "applying the web sign-in allow-list failed: " + s.message();
      outcomes[key].repaired = false;
      return Status::Ok();
    }
  }
  if (!record || *record != want_raw) {
    DM_RETURN_IF_ERROR(RecordApplied("", kAppliedWebSignIn, want_raw));
  }
  return Status::Ok();
}

Status PolicyEngine::Impl::EvaluateAt(const Moment& moment) {
  DM_ASSIGN_OR_RETURN(auto tx, db_.Begin());
  const int64_t now = Now();
  DM_ASSIGN_OR_RETURN(DeviceFacts facts, Facts());
  DM_ASSIGN_OR_RETURN(auto desired_rows, LoadDesired());
  DesiredIndex index(std::move(desired_rows));

  DM_ASSIGN_OR_RETURN(auto users, KnownUsers());
  if (moment.kind == Moment::kSignIn) users.insert(moment.user);
  for (const std::string& u : users) DM_RETURN_IF_ERROR(Register(u));

  DM_ASSIGN_OR_RETURN(auto eff, LoadEffective());
  DM_ASSIGN_OR_RETURN(auto pend, LoadPending());

  // Every row the engine evaluates: the device's, and each user's for user-relevant settings.
  std::vector<std::pair<std::string, const SettingDef*>> keys;
  for (const SettingDef& def : AllSettings()) {
    if (!def.user_only) keys.emplace_back(std::string(), &def);
  }
  for (const std::string& u : users) {
    for (const SettingDef& def : AllSettings()) {
      if (IsUserRelevant(def)) keys.emplace_back(u, &def);
    }
  }

  struct RowState {
    Resolution res;
    bool pending = false;
  };
  std::map<RowKey, RowState> rows;

  // 1. Desired -> effective or pending, per row.
  for (const auto& [user, def] : keys) {
    const RowKey k{user, std::string(def->name)};
    Resolution res = internal::Resolve(index, *def, user);
    auto cur_it = eff.find(k);
    std::optional<std::string> current;
    if (cur_it != eff.end()) current = cur_it->second.value;
    auto pend_it = pend.find(k);
    const TakesEffect timing = Timing(*def);

    if (res.kind == Resolution::kConflict) {
      // Nothing from either source until the conflict is resolved.
      if (pend_it != pend.end()) {
        DM_RETURN_IF_ERROR(DeletePending(k));
        pend.erase(pend_it);
      }
    } else {
      const std::optional<std::string>& target = res.value;
      const bool moment_now =
          timing == TakesEffect::kImmediately ||
          (moment.kind == Moment::kReboot && timing == TakesEffect::kAfterReboot) ||
          (moment.kind == Moment::kSignIn && timing == TakesEffect::kNextSignIn &&
           (user.empty() || user == moment.user));
      if (target == current) {
        if (pend_it != pend.end()) {
          DM_RETURN_IF_ERROR(DeletePending(k));
          pend.erase(pend_it);
        }
      } else if (moment_now) {
        std::string source = res.source.empty() ? "Default" : res.source;
        DM_RETURN_IF_ERROR(WriteEffective(k, target, source));
        if (target) {
          eff[k] = EffRow{*target, source, now};
        } else {
          eff.erase(k);
        }
        if (pend_it != pend.end()) {
          DM_RETURN_IF_ERROR(DeletePending(k));
          pend.erase(pend_it);
        }
      } else {
        PendRow p;
        p.value = target;
        p.source = res.source.empty() ? "Default" : res.source;
        p.takes_effect = timing;
        p.queued_at = now;
        if (pend_it != pend.end() && pend_it->second.value == target &&
            pend_it->second.takes_effect == timing) {
          p.queued_at = pend_it->second.queued_at;
        }
        if (pend_it == pend.end() || pend_it->second.value != p.value ||
            pend_it->second.source != p.source || pend_it->second.takes_effect != timing) {
          DM_RETURN_IF_ERROR(WritePending(k, p));
        }
        pend[k] = p;
      }
    }
    rows[k] = RowState{std::move(res), pend.count(k) > 0};
  }

  // 2. Effective -> the container subsystem, repairing drift.
  std::map<RowKey, ApplyOutcome> outcomes;
  for (const std::string& u : users) DM_RETURN_IF_ERROR(ApplyUser(u, eff, outcomes));
  DM_RETURN_IF_ERROR(ApplyWebSignIn(eff, outcomes));

  // 3. Compliance per row.
  DM_ASSIGN_OR_RETURN(auto previous, LoadStatus());
  std::map<std::string, container::ContainerInfo> infos;
  auto info_of = [&](const std::string& u) -> const container::ContainerInfo* {
    auto it = infos.find(u);
    if (it != infos.end()) return &it->second;
    auto r = containers_.Info(u);
    if (!r.ok()) return nullptr;
    return &infos.emplace(u, std::move(r).value()).first->second;
  };
  auto in_force = [&](const std::string& u, std::string_view setting) {
    auto it = eff.find({u, std::string(setting)});
    if (it != eff.end()) return std::optional<std::string>(it->second.value);
    const SettingDef* d = FindSetting(setting);
    if (d && d->default_value) return std::optional<std::string>(std::string(*d->default_value));
    return std::optional<std::string>();
  };

  std::set<RowKey> written;
  for (const auto& [user, def] : keys) {
    const RowKey k{user, std::string(def->name)};
    const RowState& rs = rows[k];
    const Resolution& res = rs.res;
    auto out_it = outcomes.find(k);
    const ApplyOutcome* outcome = out_it == outcomes.end() ? nullptr : &out_it->second;
    auto prev_it = previous.find(k);
    const StatusRow* prev = prev_it == previous.end() ? nullptr : &prev_it->second;

    const bool configured = res.kind != Resolution::kNotConfigured;
    const bool has_eff = eff.count(k) > 0;
    const bool repaired = outcome && outcome->repaired;
    // A group rule that hides another scope's value is worth a row even when it leaves the
    // setting not configured for this user.
    // A repaired row stays while nothing about it changes (see SettingStatus::corrective).
    const bool still_repaired = prev && prev->corrective && prev->desired == res.value &&
                                prev->effective == in_force(user, def->name);
    const bool relevant = configured || has_eff || rs.pending || repaired ||
                          !res.group_note.empty() || (outcome && outcome->error) || still_repaired;
    if (!relevant) continue;

    StatusRow s;
    s.desired = res.value;
    s.effective = in_force(user, def->name);
    s.source = res.source.empty() ? "Default" : res.source;
    const std::string who = Who(user);
    std::string note = res.group_note.empty() ? std::string() : "; " + res.group_note;

    if (res.kind == Resolution::kConflict) {
      s.state = ComplianceState::kConflict;
      s.reason = "conflicting values: " + res.conflict_detail +
                 "; nothing is applied from either source until the conflict is resolved, " +
                 ShowValue(s.effective) + " stays in force";
    } else if (rs.pending) {
      const PendRow& p = pend.at(k);
      std::string what = p.value ? "becomes " + *p.value : "reverts to not configured";
      if (p.takes_effect == TakesEffect::kAfterReboot) {
        s.state = ComplianceState::kPendingReboot;
        s.reason = what + " after the reboot step";
      } else {
        s.state = ComplianceState::kPending;
        s.reason =
            what + (user.empty() ? " at the next user sign-in" : " at " + user + "'s next sign-in");
      }
      s.reason += note;
    } else if (outcome && outcome->error) {
      s.state = ComplianceState::kError;
      s.reason = *outcome->error;
    } else {
      s.state = ComplianceState::kSucceeded;
      const std::string_view name = def->name;
      const std::optional<std::string> v = s.effective;
      if (name == kRequireSecurityDevice && v == "true" && !facts.tpm_present) {
        s.state = ComplianceState::kNotApplicable;
        s.reason =
            "RequireSecurityDevice=true needs a TPM and this device has none: Windows "
            "Hello cannot provision here";
      } else if (IsBiometrics(name) && configured && !facts.biometric_sensor) {
        s.state = ComplianceState::kNotApplicable;
        s.reason = "this device has no biometric sensor";
      } else if (name == kEnablePinRecovery && v == "true" && !RecoveryJoinOk(facts.join_type)) {
        s.state = ComplianceState::kNotApplicable;
        s.reason = "PIN recovery needs an Entra-joined or hybrid-joined device; this one is " +
                   std::string(JoinTypeName(facts.join_type));
      } else if (name == kEnableWebSignIn && configured &&
                 facts.join_type != JoinType::kAzureAdJoined) {
        s.state = ComplianceState::kNotApplicable;
        s.reason = "web sign-in is only available on Entra-joined devices; this one is " +
                   std::string(JoinTypeName(facts.join_type));
      } else if ((name == kMinLength || name == kMaxLength) &&
                 OptInt(in_force(user, kMinLength)) > OptInt(in_force(user, kMaxLength))) {
        s.state = ComplianceState::kError;
        s.reason = "MinimumPINLength " + *in_force(user, kMinLength) +
                   " is greater than MaximumPINLength " + *in_force(user, kMaxLength) +
                   ": both fall back to their defaults (4 and 127)";
      } else if (def->group == Group::kPinComplexity && name != kRequireSecurityDevice) {
        container::PinComplexity c;
        c.uppercase = OptInt(in_force(user, kUppercase));
        c.lowercase = OptInt(in_force(user, kLowercase));
        c.special = OptInt(in_force(user, kSpecial));
        c.digits = OptInt(in_force(user, kDigits));
        auto rules = container::ResolvePinRules(c);
        if (!rules.ok()) {
          s.state = ComplianceState::kError;
          s.reason = "the PIN complexity cannot be enforced: " + rules.status().message();
        }
      } else if (name == kEnablePinRecovery && v == "true" && !user.empty()) {
        const container::ContainerInfo* info = info_of(user);
        if (!info) {
          s.state = ComplianceState::kError;
          s.reason = "cannot read " + user + "'s container";
        } else if (!info->exists) {
          s.state = ComplianceState::kPending;
          s.reason = user +
                     " has no Hello container yet: sign in to provision, then unlock "
                     "with the PIN once";
        } else if (!info->protector_present) {
          s.state = ComplianceState::kPending;
          s.reason = info->can_reset_reason.find("service key") != std::string::npos
                         ? "PIN reset service key missing: the protector is created at the "
                           "first PIN unlock after the device has it"
                         : "no PIN reset protector yet: sign in and unlock with the PIN once";
        }
      }
      if (s.state == ComplianceState::kSucceeded) {
        if (!configured) {
          s.reason = "not configured: the default is in force";
        } else if (!user.empty() && IsContainerField(name)) {
          s.reason = "applied to " + user + "'s container";
          if (name == kUsePassportForWork && v == "false") {
            const container::ContainerInfo* info = info_of(user);
            s.reason += info && info->exists
                            ? ": new provisioning is blocked; the enrolled container is kept"
                            : ": provisioning is blocked";
          }
        } else if (name == kWebSignInUrls) {
          s.reason = "applied to the web sign-in allow-list";
        } else {
          s.reason = "in force for " + who;
        }
        s.reason += note;
      } else if (s.state != ComplianceState::kPending) {
        s.reason += note;
      }
    }

    if (repaired) {
      s.corrective = true;
      s.reason = s.state == ComplianceState::kSucceeded ? outcome->repair_reason
                                                        : outcome->repair_reason + "; " + s.reason;
    } else if (prev && prev->corrective && prev->state == s.state &&
               prev->effective == s.effective && prev->desired == s.desired) {
      s.corrective = true;
      s.reason = prev->reason;
    }

    const bool unchanged_state = prev && prev->state == s.state && prev->effective == s.effective;
    s.since = unchanged_state ? prev->since : now;
    const bool identical = prev && unchanged_state && prev->desired == s.desired &&
                           prev->source == s.source && prev->reason == s.reason &&
                           prev->corrective == s.corrective;
    if (!identical) {
      if (!unchanged_state || s.corrective != (prev && prev->corrective)) {
        // Policy values are not secrets; this is the per-setting history an admin asks for.
        auto level = s.state == ComplianceState::kConflict || s.state == ComplianceState::kError ||
                             s.corrective
                         ? spdlog::level::warn
                         : spdlog::level::info;
        spdlog::log(level, "policy: {} for {}: {} ({})", def->name, who,
                    ComplianceStateName(s.state), s.reason);
      }
      DM_RETURN_IF_ERROR(RunSql(
          db_,
          "INSERT INTO policy_status (user, setting, state, desired, effective, source, reason, "
          "corrective, since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
          "ON CONFLICT (user, setting) DO UPDATE SET state = excluded.state, "
          "desired = excluded.desired, effective = excluded.effective, source = "
          "excluded.source, reason = excluded.reason, corrective = excluded.corrective, "
          "since = excluded.since",
          user, def->name, ComplianceStateName(s.state), s.desired, s.effective, s.source, s.reason,
          s.corrective, s.since));
    }
    written.insert(k);
  }
  for (const auto& [k, prev] : previous) {
    if (!written.count(k)) {
      DM_RETURN_IF_ERROR(RunSql(db_, "DELETE FROM policy_status WHERE user = ?1 AND setting = ?2",
                                k.first, k.second));
    }
  }
  return tx.Commit();
}

Result<RecoveryState> PolicyEngine::Impl::Recovery(const std::string& user) const {
  RecoveryState r;
  r.user = user;
  // Errors reading state make the answer Unknown (as dsregcmd does), with the reason.
  auto unknown = [&](const std::string& why) {
    r.can_reset = CanReset::kUnknown;
    r.reason = why;
    return r;
  };
  auto info = containers_.Info(user);
  if (!info.ok())
    return unknown("cannot read " + user + "'s container: " + info.status().message());
  if (!info->exists) {
    return unknown(user + " has no Windows Hello container (NgcSet NO): there is no PIN to reset");
  }
  auto facts = Facts();
  if (!facts.ok()) return unknown("cannot read the device facts: " + facts.status().message());
  auto registered = IsRegistered(user);
  if (!registered.ok()) {
    return unknown("cannot read the policy state: " + registered.status().message());
  }
  // The user's rows once the engine has evaluated this user, else the device's.
  const std::string row_user = *registered ? user : std::string();
  auto in_force = [&](std::string_view setting, bool fallback) -> Result<bool> {
    DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT value FROM policy_effective WHERE user = ?1 "
                                             "AND setting = ?2"));
    BindArgs(st, row_user, setting);
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? st.Text(0) == "true" : fallback;
  };
  auto recovery_on = in_force(kEnablePinRecovery, false);
  auto hello_on = in_force(kUsePassportForWork, true);
  auto require_tpm = in_force(kRequireSecurityDevice, false);
  if (!recovery_on.ok() || !hello_on.ok() || !require_tpm.ok()) {
    return unknown("cannot read the policy state");
  }
  const bool hybrid_key_trust = facts->join_type == JoinType::kHybridAzureAdJoined &&
                                facts->trust_model == TrustModel::kKeyTrust;

  // Non-destructive: recovery in force and applied, on a joined device, with the protector.
  std::string why_not_nd;
  if (!*recovery_on) {
    std::optional<TakesEffect> pending;
    auto st = db_.Prepare(
        "SELECT takes_effect FROM policy_pending WHERE user = ?1 AND "
        "setting = ?2 AND value = 'true'");
    if (!st.ok()) return unknown("cannot read the policy state: " + st.status().message());
    BindArgs(*st, row_user, std::string_view(kEnablePinRecovery));
    auto row = st->Step();
    if (!row.ok()) return unknown("cannot read the policy state: " + row.status().message());
    if (*row) {
      auto t = ParseTakesEffect(st->Text(0));
      if (t.ok()) pending = *t;
    }
    if (pending == TakesEffect::kAfterReboot) {
      why_not_nd = "EnablePinRecovery is pending a reboot";
    } else if (pending == TakesEffect::kNextSignIn) {
      why_not_nd = "EnablePinRecovery is pending " + user + "'s next sign-in";
    } else {
      why_not_nd = "EnablePinRecovery is not enabled for " + user;
    }
  } else if (!RecoveryJoinOk(facts->join_type)) {
    why_not_nd = "PIN recovery needs an Entra-joined or hybrid-joined device; this one is " +
                 std::string(JoinTypeName(facts->join_type));
  } else {
    auto applied = containers_.GetAppliedPolicy(user);
    if (!applied.ok() || !applied->pin_recovery_enabled) {
      why_not_nd = "EnablePinRecovery is in force but not applied to " + user +
                   "'s container yet: the next evaluation applies it";
    } else if (!info->protector_present) {
      // The container knows when it cannot create one for want of the service's key.
      why_not_nd = info->can_reset_reason.find("service key") != std::string::npos
                       ? "PIN reset service key missing: the protector cannot be created until "
                         "the device has the PIN reset service's public key"
                       : "no PIN reset protector yet: sign in and unlock with the PIN once";
    }
  }
  const bool nd = why_not_nd.empty();

  // Destructive: a new container must be provisionable.
  std::string why_not_d;
  if (!*hello_on) {
    why_not_d = "UsePassportForWork=false: a destructive reset could not provision a new container";
  } else if (*require_tpm && !facts->tpm_present) {
    why_not_d =
        "RequireSecurityDevice=true and the device has no TPM: a destructive reset could "
        "not provision a new container";
  }
  const bool d = why_not_d.empty();

  if (nd && hybrid_key_trust) {
    r.can_reset = CanReset::kNonDestructiveOnly;
    r.reason =
        "hybrid key trust: the destructive reset is not supported above the lock screen; "
        "the PIN reset protector exists";
  } else if (nd && d) {
    r.can_reset = CanReset::kDestructiveAndNonDestructive;
    r.reason = "PIN recovery is on and the PIN reset protector exists";
  } else if (nd) {
    r.can_reset = CanReset::kNonDestructiveOnly;
    r.reason = why_not_d + "; the PIN reset protector exists";
  } else if (d) {
    r.can_reset = CanReset::kDestructiveOnly;
    r.reason = why_not_nd;
    if (hybrid_key_trust) {
      r.reason +=
          "; hybrid key trust: the destructive reset works only from Settings with "
          "domain controller connectivity";
    }
  } else {
    return unknown("no reset is possible: " + why_not_nd + "; " + why_not_d);
  }
  return r;
}

Result<std::vector<SettingStatus>> PolicyEngine::Impl::Compliance(
    const std::optional<std::string>& user) const {
  std::string sql =
      "SELECT s.user, s.setting, s.state, s.desired, s.effective, s.source, s.reason, "
      "s.corrective, s.since FROM policy_status s";
  if (user) sql += " WHERE s.user = ?1";
  sql += " ORDER BY s.user, s.setting";
  DM_ASSIGN_OR_RETURN(auto st, db_.Prepare(sql));
  if (user) st.Bind(1, std::string_view(*user));
  std::vector<SettingStatus> out;
  while (true) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    SettingStatus s;
    s.user = st.Text(0);
    s.scope = s.user.empty() ? Scope::kDevice : Scope::kUser;
    s.setting = st.Text(1);
    DM_ASSIGN_OR_RETURN(s.state, ParseState(st.Text(2)));
    s.desired = st.OptText(3);
    s.effective = st.OptText(4);
    s.source = st.Text(5);
    s.reason = st.Text(6);
    s.corrective = st.Int(7) != 0;
    s.since = FromUnixSeconds(st.Int(8));
    if (const SettingDef* def = FindSetting(s.setting)) s.takes_effect = Timing(*def);
    out.push_back(std::move(s));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

PolicyEngine::PolicyEngine(storage::Database& db, container::ContainerStore& containers,
                           const Clock& clock, EngineOptions options)
    : impl_(std::make_unique<Impl>(db, containers, clock, options)) {}

PolicyEngine::~PolicyEngine() = default;

namespace {

struct CheckedTarget {
  const SettingDef* def;
  std::string scope;
  std::string user;
};

Result<CheckedTarget> CheckTarget(const Target& target) {
  const SettingDef* def = FindSetting(target.setting);
  if (!def) return NotFound("unknown setting '" + target.setting + "'");
  if (target.scope == Scope::kUser) {
    if (target.user.empty()) {
      return InvalidArgument(target.setting + ": user scope needs a user");
    }
    if (def->device_only) {
      return PermissionDenied(target.setting + " is device-only: it cannot be set under ./User");
    }
    return CheckedTarget{def, "user", target.user};
  }
  if (def->user_only) {
    return PermissionDenied(target.setting + " is user-only: it cannot be set under ./Device");
  }
  return CheckedTarget{def, "device", std::string()};
}

}  // namespace

Status PolicyEngine::SetDesired(Source source, const Target& target, std::string_view value,
                                std::string_view origin) {
  DM_ASSIGN_OR_RETURN(CheckedTarget t, CheckTarget(target));
  DM_ASSIGN_OR_RETURN(std::string canonical, NormalizeValue(*t.def, value));
  const int64_t now = impl_->Now();
  return RunSql(
      impl_->db_,
      "INSERT INTO policy_desired (source, scope, user, setting, value, origin, created_at, "
      "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) "
      "ON CONFLICT (source, scope, user, setting) DO UPDATE SET value = excluded.value, "
      "origin = excluded.origin, updated_at = excluded.updated_at",
      SourceName(source), t.scope, t.user, t.def->name, canonical, origin, now);
}

Status PolicyEngine::ClearDesired(Source source, const Target& target) {
  DM_ASSIGN_OR_RETURN(CheckedTarget t, CheckTarget(target));
  DM_RETURN_IF_ERROR(RunSql(
      impl_->db_,
      "DELETE FROM policy_desired WHERE source = ?1 AND scope = ?2 AND user = ?3 AND setting = ?4",
      SourceName(source), t.scope, t.user, t.def->name));
  if (impl_->db_.Changes() == 0) {
    return NotFound(std::string(SourceName(source)) + " has no value for " + target.setting +
                    (t.user.empty() ? "" : " (user " + t.user + ")"));
  }
  return Status::Ok();
}

Result<std::optional<std::string>> PolicyEngine::Desired(Source source,
                                                         const Target& target) const {
  DM_ASSIGN_OR_RETURN(CheckedTarget t, CheckTarget(target));
  DM_ASSIGN_OR_RETURN(auto st,
                      impl_->db_.Prepare("SELECT value FROM policy_desired WHERE source = ?1 AND "
                                         "scope = ?2 AND user = ?3 AND setting = ?4"));
  BindArgs(st, SourceName(source), t.scope, t.user, t.def->name);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Result<std::optional<std::string>> PolicyEngine::DesiredOrigin(Source source,
                                                               const Target& target) const {
  DM_ASSIGN_OR_RETURN(CheckedTarget t, CheckTarget(target));
  DM_ASSIGN_OR_RETURN(auto st,
                      impl_->db_.Prepare("SELECT origin FROM policy_desired WHERE source = ?1 AND "
                                         "scope = ?2 AND user = ?3 AND setting = ?4"));
  BindArgs(st, SourceName(source), t.scope, t.user, t.def->name);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Result<std::optional<std::string>> PolicyEngine::Effective(const Target& target) const {
  const SettingDef* def = FindSetting(target.setting);
  if (!def) return NotFound("unknown setting '" + target.setting + "'");
  std::string row_user;
  if (target.scope == Scope::kUser) {
    if (target.user.empty()) return InvalidArgument(target.setting + ": user scope needs a user");
    if (IsUserRelevant(*def)) {
      DM_ASSIGN_OR_RETURN(bool known, impl_->IsRegistered(target.user));
      // A user the engine has not evaluated yet gets what the device has.
      if (known || def->user_only) row_user = target.user;
    }
  } else if (def->user_only) {
    return PermissionDenied(target.setting + " is user-only: it has no device value");
  }
  DM_ASSIGN_OR_RETURN(auto st, impl_->db_.Prepare("SELECT value FROM policy_effective WHERE "
                                                  "user = ?1 AND setting = ?2"));
  BindArgs(st, row_user, def->name);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (row) return std::optional<std::string>(st.Text(0));
  if (def->default_value) return std::optional<std::string>(std::string(*def->default_value));
  return std::optional<std::string>();
}

Status PolicyEngine::Evaluate() { return impl_->EvaluateAt(Moment{}); }

Status PolicyEngine::OnSignIn(std::string_view user) {
  if (user.empty()) return InvalidArgument("OnSignIn needs a user name");
  DM_ASSIGN_OR_RETURN(auto tx, impl_->db_.Begin());
  DM_RETURN_IF_ERROR(impl_->Register(std::string(user)));
  DM_RETURN_IF_ERROR(RunSql(impl_->db_, "UPDATE policy_user SET last_sign_in = ?2 WHERE name = ?1",
                            user, impl_->Now()));
  DM_RETURN_IF_ERROR(impl_->EvaluateAt(Moment{Moment::kSignIn, std::string(user)}));
  return tx.Commit();
}

Status PolicyEngine::CompleteReboot() {
  DM_ASSIGN_OR_RETURN(auto tx, impl_->db_.Begin());
  DM_ASSIGN_OR_RETURN(BootRecord boot, impl_->LastBoot());
  DM_RETURN_IF_ERROR(impl_->PutSetting(kBootCountKey, std::to_string(boot.count + 1)));
  DM_RETURN_IF_ERROR(impl_->PutSetting(kLastBootKey, std::to_string(impl_->Now())));
  // Every reboot-pending item takes the value it was queued with...
  DM_ASSIGN_OR_RETURN(auto pending, impl_->LoadPending());
  for (const auto& [k, p] : pending) {
    if (p.takes_effect != TakesEffect::kAfterReboot) continue;
    DM_RETURN_IF_ERROR(impl_->WriteEffective(k, p.value, p.source));
    DM_RETURN_IF_ERROR(impl_->DeletePending(k));
  }
  spdlog::info("policy: reboot step {} completed", boot.count + 1);
  // ...and the evaluation at the reboot moment applies it and anything queued since.
  DM_RETURN_IF_ERROR(impl_->EvaluateAt(Moment{Moment::kReboot, {}}));
  return tx.Commit();
}

Result<std::vector<SettingStatus>> PolicyEngine::PendingReboot() const {
  DM_ASSIGN_OR_RETURN(auto all, impl_->Compliance(std::nullopt));
  std::vector<SettingStatus> out;
  for (auto& s : all) {
    if (s.state == ComplianceState::kPendingReboot) out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<SettingStatus>> PolicyEngine::Compliance(std::optional<std::string> user) const {
  return impl_->Compliance(user);
}

Result<RecoveryState> PolicyEngine::Recovery(std::string_view user) const {
  if (user.empty()) return InvalidArgument("Recovery needs a user name");
  return impl_->Recovery(std::string(user));
}

Result<std::vector<RecoveryState>> PolicyEngine::RecoveryAll() const {
  DM_ASSIGN_OR_RETURN(auto users, impl_->KnownUsers());
  std::vector<RecoveryState> out;
  for (const std::string& u : users) {
    DM_ASSIGN_OR_RETURN(RecoveryState r, impl_->Recovery(u));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::string> PolicyEngine::ReportXml() const {
  DM_ASSIGN_OR_RETURN(DeviceFacts facts, impl_->Facts());
  DM_ASSIGN_OR_RETURN(auto rows, impl_->Compliance(std::nullopt));
  DM_ASSIGN_OR_RETURN(auto recovery, RecoveryAll());

  auto setting_xml = [](std::string& out, const SettingStatus& s) {
    out += "    <Setting";
    Attr(out, "name", s.setting);
    Attr(out, "state", ComplianceStateName(s.state));
    Attr(out, "source", s.source);
    if (s.desired) Attr(out, "desired", *s.desired);
    if (s.effective) Attr(out, "effective", *s.effective);
    Attr(out, "takesEffect", TakesEffectName(s.takes_effect));
    Attr(out, "corrective", s.corrective ? "true" : "false");
    Attr(out, "reason", s.reason);
    out += "/>\n";
  };

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DMAgentReport version=\"1\">\n";
  out += "  <Device";
  Attr(out, "joinType", JoinTypeName(facts.join_type));
  Attr(out, "trustModel", TrustModelName(facts.trust_model));
  Attr(out, "tpm", facts.tpm_present ? "true" : "false");
  Attr(out, "biometricSensor", facts.biometric_sensor ? "true" : "false");
  out += ">\n";
  std::map<std::string, std::vector<const SettingStatus*>> by_user;
  for (const SettingStatus& s : rows) {
    if (s.user.empty()) {
      setting_xml(out, s);
    } else {
      by_user[s.user].push_back(&s);
    }
  }
  out += "  </Device>\n";
  std::map<std::string, const RecoveryState*> rec_by_user;
  for (const RecoveryState& r : recovery) rec_by_user[r.user] = &r;
  // Each user's FIDO2 security keys and their PIN state, so a help desk sees a blocked key.
  // Listing needs no key file, only the sealer that verifies each key's PIN state.
  container::SecurityKeyStore key_store(impl_->db_, {.sealer = &impl_->containers_.sealer()});
  DM_ASSIGN_OR_RETURN(auto keys, key_store.ListAll());
  std::map<std::string, std::vector<const container::SecurityKeyInfo*>> keys_by_user;
  for (const auto& k : keys) keys_by_user[k.user].push_back(&k);
  std::set<std::string> users;
  for (const auto& [u, v] : by_user) users.insert(u);
  for (const auto& [u, r] : rec_by_user) users.insert(u);
  for (const auto& [u, k] : keys_by_user) users.insert(u);
  for (const std::string& u : users) {
    out += "  <User";
    Attr(out, "name", u);
    out += ">\n";
    for (const SettingStatus* s : by_user[u]) setting_xml(out, *s);
    if (auto it = rec_by_user.find(u); it != rec_by_user.end()) {
      out += "    <Recovery";
      Attr(out, "CanReset", CanResetName(it->second->can_reset));
      Attr(out, "reason", it->second->reason);
      out += "/>\n";
    }
    auto sorted_keys = keys_by_user[u];
    std::sort(sorted_keys.begin(), sorted_keys.end(),
              [](const auto* a, const auto* b) { return a->key_id < b->key_id; });
    for (const container::SecurityKeyInfo* k : sorted_keys) {
      out += "    <SecurityKey";
      Attr(out, "id", k->key_id);
      Attr(out, "label", k->label);
      Attr(out, "pinSet", k->pin_set ? "true" : "false");
      Attr(out, "pinRetries", std::to_string(k->pin_retries));
      Attr(out, "blocked", container::PinBlockStateName(k->blocked));
      Attr(out, "minPinLength", std::to_string(k->min_pin_length));
      Attr(out, "forcePinChange", k->force_pin_change ? "true" : "false");
      Attr(out, "credentials", std::to_string(k->credential_count));
      out += "/>\n";
    }
    out += "  </User>\n";
  }
  out += "</DMAgentReport>\n";
  return out;
}

Result<DeviceFacts> PolicyEngine::Facts() const { return impl_->Facts(); }
Status PolicyEngine::SetFacts(const DeviceFacts& facts) { return impl_->SetFacts(facts); }
Result<BootRecord> PolicyEngine::LastBoot() const { return impl_->LastBoot(); }

Result<std::vector<std::string>> PolicyEngine::Users() const {
  DM_ASSIGN_OR_RETURN(auto users, impl_->KnownUsers());
  return std::vector<std::string>(users.begin(), users.end());
}

}  // namespace dm::policy
