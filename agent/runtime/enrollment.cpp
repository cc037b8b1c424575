#include "agent/runtime/enrollment.h"

#include <spdlog/spdlog.h>

#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "agent/enroll/mde2_client.h"
#include "agent/enroll/provisioning_doc.h"
#include "agent/runtime/machine_key.h"
#include "agent/transport/https_client.h"
#include "base/pki.h"
#include "csp/certificate_store.h"
#include "csp/device_facts.h"
#include "csp/dmagent_csp.h"
#include "csp/node_store.h"
#include "csp/uri.h"
#include "storage/database.h"

namespace dm::agent {
namespace {

constexpr char kDeviceKeyPurpose[] = "dmagent/enrollment/device-key";

// settings-table keys
constexpr char kManagementUrl[] = "enrollment.management_url";
constexpr char kTenantId[] = "enrollment.tenant_id";
constexpr char kTenantName[] = "enrollment.tenant_name";
constexpr char kCaPem[] = "enrollment.ca_pem";
constexpr const char* kDeviceCert = csp::kEnrollmentDeviceCertKey;
constexpr char kDeviceKeySealed[] = "enrollment.device_key_sealed";  // hex
// The service URLs and key are DMAgent CSP leaves (Services/*) as well.
constexpr const char* kPinResetUrl = csp::kPinResetUrlKey;
constexpr const char* kPinResetKey = csp::kPinResetPublicKeyKey;
constexpr const char* kFederationUrl = csp::kFederationLoginUrlKey;
constexpr const char* kHelloCertUrl = csp::kHelloCertUrlKey;
constexpr const char* kUserTokenUrl = csp::kUserTokenUrlKey;
constexpr char kKind[] = "enrollment.kind";
constexpr char kProviderId[] = "enrollment.provider_id";
constexpr const char* kAnchorPem = csp::kEnrollmentAnchorKey;
constexpr char kTrustSystemStore[] = "enrollment.trust_system_store";
constexpr char kHwDevId[] = "enrollment.hw_dev_id";
constexpr const char* kEnrollmentType = csp::kEnrollmentTypeKey;
constexpr char kEnrolledAt[] = "enrollment.enrolled_at";
constexpr char kRenewPeriod[] = "enrollment.renew_period_days";
constexpr char kRenewRetry[] = "enrollment.renew_retry_days";

constexpr const char* kAllKeys[] = {
    kManagementUrl, kTenantId,         kTenantName,  kCaPem,
    kDeviceCert,    kDeviceKeySealed,  kPinResetUrl, kPinResetKey,
    kFederationUrl, kHelloCertUrl,     kKind,        kProviderId,
    kAnchorPem,     kTrustSystemStore, kHwDevId,     kEnrollmentType,
    kEnrolledAt,    kRenewPeriod,      kRenewRetry,  kUserTokenUrl};

constexpr char kDmClientProviders[] = "Vendor/MSFT/DMClient/Provider";

Result<std::string> Get(storage::Database& db, std::string_view key) {
  DM_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT value FROM settings WHERE key = ?"));
  st.Bind(1, key);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Text(0) : std::string();
}

Status Put(storage::Database& db, std::string_view key, std::string_view value) {
  return db.Run(
      "INSERT INTO settings (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key, value);
}

// Everything of one enrollment in one transaction: a half-written enrollment would leave a
// device that neither works nor re-enrolls cleanly.
// `extra` runs inside the same transaction (the MS-MDE2 path writes the DMClient nodes there).
Status Store(Device& device, const EnrollmentState& s, const SecretBytes& device_key,
             const std::function<Status()>& extra = {}) {
  DM_ASSIGN_OR_RETURN(MachineKey mk, MachineKey::LoadOrCreate(device.state_dir()));
  DM_ASSIGN_OR_RETURN(Bytes sealed, mk.Seal(device_key, kDeviceKeyPurpose));
  storage::Database& db = device.db();
  DM_ASSIGN_OR_RETURN(auto tx, db.Begin());
  DM_RETURN_IF_ERROR(Put(db, kManagementUrl, s.management_url));
  DM_RETURN_IF_ERROR(Put(db, kTenantId, s.tenant_id));
  DM_RETURN_IF_ERROR(Put(db, kTenantName, s.tenant_name));
  DM_RETURN_IF_ERROR(Put(db, kCaPem, s.ca_pem));
  DM_RETURN_IF_ERROR(Put(db, kDeviceCert, s.device_cert_pem));
  DM_RETURN_IF_ERROR(Put(db, kDeviceKeySealed, crypto::HexEncode(sealed)));
  DM_RETURN_IF_ERROR(Put(db, kPinResetUrl, s.pin_reset_url));
  DM_RETURN_IF_ERROR(Put(db, kPinResetKey, s.pin_reset_public_key_pem));
  DM_RETURN_IF_ERROR(Put(db, kFederationUrl, s.federation_login_url));
  DM_RETURN_IF_ERROR(Put(db, kHelloCertUrl, s.hello_cert_url));
  DM_RETURN_IF_ERROR(Put(db, kUserTokenUrl, s.user_token_url));
  DM_RETURN_IF_ERROR(Put(db, kKind, s.kind));
  DM_RETURN_IF_ERROR(Put(db, kProviderId, s.provider_id));
  DM_RETURN_IF_ERROR(Put(db, kAnchorPem, s.anchor_pem));
  DM_RETURN_IF_ERROR(Put(db, kTrustSystemStore, s.trust_system_store ? "1" : ""));
  DM_RETURN_IF_ERROR(Put(db, kHwDevId, s.hw_dev_id));
  DM_RETURN_IF_ERROR(Put(db, kEnrollmentType, s.enrollment_type));
  DM_RETURN_IF_ERROR(Put(db, kEnrolledAt, s.enrolled_at ? std::to_string(s.enrolled_at) : ""));
  DM_RETURN_IF_ERROR(Put(db, kRenewPeriod, std::to_string(s.renew_period_days)));
  DM_RETURN_IF_ERROR(Put(db, kRenewRetry, std::to_string(s.renew_retry_days)));
  if (extra) DM_RETURN_IF_ERROR(extra());
  if (!s.pin_reset_public_key_pem.empty()) {
    DM_RETURN_IF_ERROR(device.containers().SetPinResetServiceKey(s.pin_reset_public_key_pem));
  }
  return tx.Commit();
}

Status CheckKeyMatchesCertificate(const SecretBytes& key_pem, const std::string& cert_pem) {
  DM_ASSIGN_OR_RETURN(std::string pub, pki::PublicKeyOf(key_pem));
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(cert_pem));
  if (info.public_key_pem != pub) {
    return InvalidArgument("the device key does not match the device certificate");
  }
  return Status::Ok();
}

// ---- MS-MDE2 helpers ----

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string ReadSmallFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return Trim(line);
}

// The network interfaces' MACs as Windows writes them ("00-0C-29-51-60-9D"), loopback left out.
std::vector<std::string> HostMacs() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
    std::string mac = ReadSmallFile(e.path() / "address");
    if (mac.size() != 17 || mac == "00:00:00:00:00:00") continue;
    for (char& c : mac) c = c == ':' ? '-' : static_cast<char>(std::toupper(c));
    out.push_back(mac);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// HWDevID: 64 upper-case hex, stable for the machine and this agent's DeviceID.
Result<std::string> HardwareId(const std::string& device_id) {
  const std::string seed =
      "dmagent-hwdevid\n" + ReadSmallFile("/etc/machine-id") + "\n" + device_id;
  DM_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256(crypto::AsBytes(seed)));
  return crypto::HexEncode(digest, /*upper=*/true);
}

Result<enroll::DeviceContext> DeviceContextFor(Device& device, const MsMde2EnrollRequest& r) {
  enroll::DeviceContext d;
  d.email = r.email;
  DM_ASSIGN_OR_RETURN(d.device_id, csp::DeviceId(device.db()));
  DM_ASSIGN_OR_RETURN(d.hw_dev_id, HardwareId(d.device_id));
  DM_ASSIGN_OR_RETURN(auto name, csp::ReadFact(device.db(), csp::kFactDeviceName));
  char host[256] = {};
  if (!name && gethostname(host, sizeof host - 1) == 0) name = std::string(host);
  d.device_name = name.value_or("dmagent");
  d.macs = HostMacs();
  DM_ASSIGN_OR_RETURN(auto lang, csp::ReadFact(device.db(), csp::kFactLanguage));
  if (lang) d.locale = *lang;
  DM_ASSIGN_OR_RETURN(auto sw, csp::ReadFact(device.db(), csp::kFactSoftwareVersion));
  utsname u{};
  if (!sw && uname(&u) == 0) sw = std::string(u.release);
  d.os_version = sw.value_or("0");
  d.application_version = d.os_version;
  d.enrollment_type = r.enrollment_type;
  d.user_logged_in = r.enrollment_type == "Full";
  return d;
}

// The DMClient/Provider/{ProviderID}/Poll nodes as the document gives them.
Status WritePoll(csp::NodeStore& store, const std::string& provider, const enroll::PollValues& p) {
  const std::string base = std::string(kDmClientProviders) + "/" + csp::EncodeSegment(provider);
  const csp::NodeKey provider_key{csp::UriScope::kDevice, "", base};
  DM_RETURN_IF_ERROR(store.RemoveSubtree(provider_key));
  DM_RETURN_IF_ERROR(store.Put(provider_key, "node", std::nullopt, false));
  DM_RETURN_IF_ERROR(
      store.Put({csp::UriScope::kDevice, "", base + "/Poll"}, "node", std::nullopt, false));
  auto leaf = [&](const char* name, const std::string& format, std::string value) {
    return store.Put({csp::UriScope::kDevice, "", base + "/Poll/" + name}, format, value, false);
  };
  auto num = [&](const char* name, int v) { return leaf(name, "int", std::to_string(v)); };
  auto flag = [&](const char* name, bool v) { return leaf(name, "bool", v ? "true" : "false"); };
  DM_RETURN_IF_ERROR(num("IntervalForFirstSetOfRetries", p.interval_first_min));
  DM_RETURN_IF_ERROR(num("NumberOfFirstRetries", p.count_first));
  DM_RETURN_IF_ERROR(num("IntervalForSecondSetOfRetries", p.interval_second_min));
  DM_RETURN_IF_ERROR(num("NumberOfSecondRetries", p.count_second));
  DM_RETURN_IF_ERROR(num("IntervalForRemainingScheduledRetries", p.interval_remaining_min));
  DM_RETURN_IF_ERROR(num("NumberOfRemainingScheduledRetries", p.count_remaining));
  DM_RETURN_IF_ERROR(flag("PollOnLogin", p.poll_on_login));
  return flag("AllUsersPollOnFirstLogin", p.all_users_poll_on_first_login);
}

}  // namespace

Result<EnrollmentState> LoadEnrollment(storage::Database& db) {
  EnrollmentState s;
  DM_ASSIGN_OR_RETURN(s.management_url, Get(db, kManagementUrl));
  DM_ASSIGN_OR_RETURN(s.tenant_id, Get(db, kTenantId));
  DM_ASSIGN_OR_RETURN(s.tenant_name, Get(db, kTenantName));
  DM_ASSIGN_OR_RETURN(s.ca_pem, Get(db, kCaPem));
  DM_ASSIGN_OR_RETURN(s.device_cert_pem, Get(db, kDeviceCert));
  DM_ASSIGN_OR_RETURN(s.pin_reset_url, Get(db, kPinResetUrl));
  DM_ASSIGN_OR_RETURN(s.pin_reset_public_key_pem, Get(db, kPinResetKey));
  DM_ASSIGN_OR_RETURN(s.federation_login_url, Get(db, kFederationUrl));
  DM_ASSIGN_OR_RETURN(s.hello_cert_url, Get(db, kHelloCertUrl));
  DM_ASSIGN_OR_RETURN(s.user_token_url, Get(db, kUserTokenUrl));
  DM_ASSIGN_OR_RETURN(s.kind, Get(db, kKind));
  DM_ASSIGN_OR_RETURN(s.provider_id, Get(db, kProviderId));
  DM_ASSIGN_OR_RETURN(s.anchor_pem, Get(db, kAnchorPem));
  DM_ASSIGN_OR_RETURN(std::string system, Get(db, kTrustSystemStore));
  s.trust_system_store = system == "1";
  DM_ASSIGN_OR_RETURN(s.hw_dev_id, Get(db, kHwDevId));
  DM_ASSIGN_OR_RETURN(s.enrollment_type, Get(db, kEnrollmentType));
  auto number = [&](const char* key) -> Result<int64_t> {
    DM_ASSIGN_OR_RETURN(std::string v, Get(db, key));
    try {
      return v.empty() ? 0 : std::stoll(v);
    } catch (...) {
      return Corruption(std::string("setting ") + key + " is not a number");
    }
  };
  DM_ASSIGN_OR_RETURN(s.enrolled_at, number(kEnrolledAt));
  DM_ASSIGN_OR_RETURN(int64_t period, number(kRenewPeriod));
  DM_ASSIGN_OR_RETURN(int64_t retry, number(kRenewRetry));
  s.renew_period_days = static_cast<int>(period);
  s.renew_retry_days = static_cast<int>(retry);
  return s;
}

Result<transport::HttpsClientOptions> ServiceClientOptions(storage::Database& db,
                                                           const std::filesystem::path& state_dir,
                                                           const EnrollmentState& enrollment,
                                                           std::string url) {
  transport::HttpsClientOptions opts;
  opts.server_url = std::move(url);
  // The enrollment-time trust and the provisioned Root/System anchors, and the system store
  // when the enrollment server was trusted through it.
  opts.ca_bundle_pem = enrollment.ca_pem + enrollment.anchor_pem;
  opts.also_trust_system_store = enrollment.trust_system_store && !opts.ca_bundle_pem.empty();
  opts.client_cert_pem = enrollment.device_cert_pem;
  DM_ASSIGN_OR_RETURN(opts.client_key_pem, LoadDeviceKey(db, state_dir));
  return opts;
}

Result<SecretBytes> LoadDeviceKey(storage::Database& db, const std::filesystem::path& state_dir) {
  DM_ASSIGN_OR_RETURN(std::string hex, Get(db, kDeviceKeySealed));
  if (hex.empty()) return FailedPrecondition("the device is not enrolled (no client key)");
  DM_ASSIGN_OR_RETURN(Bytes sealed, crypto::HexDecode(hex));
  DM_ASSIGN_OR_RETURN(MachineKey mk, MachineKey::LoadOrCreate(state_dir));
  auto key = mk.Open(sealed, kDeviceKeyPurpose);
  if (!key.ok()) {
    return Corruption("the device's client key does not open with " +
                      (state_dir / kMachineKeyFile).string() +
                      " (was the machine key replaced?); re-enroll the device");
  }
  return key;
}

Status EnrollOutOfBand(Device& device, const OutOfBandEnrollment& e) {
  if (e.management_url.rfind("https://", 0) != 0) {
    return InvalidArgument("the management URL must be https://");
  }
  DM_RETURN_IF_ERROR(CheckKeyMatchesCertificate(e.device_key_pem, e.device_cert_pem));
  // The CA bundle is what the device trusts for the server; its own certificate may come from
  // another CA, so only the key pairing is checked here. The server judges the certificate.
  EnrollmentState s;
  s.management_url = e.management_url;
  s.ca_pem = e.ca_pem;
  s.device_cert_pem = e.device_cert_pem;
  s.pin_reset_url = e.pin_reset_url;
  s.pin_reset_public_key_pem = e.pin_reset_public_key_pem;
  return Store(device, s, e.device_key_pem);
}

Result<std::string> DiscoveryUrlFor(std::string_view email) {
  const size_t at = email.rfind('@');
  if (at == std::string_view::npos || at + 1 >= email.size()) {
    return InvalidArgument("'" + std::string(email) + "' is not an e-mail address / UPN");
  }
  std::string domain(email.substr(at + 1));
  for (char c : domain) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
      return InvalidArgument("the domain of '" + std::string(email) + "' is not a host name");
    }
  }
  return "https://enterpriseenrollment." + domain + "/EnrollmentServer/Discovery.svc";
}

Status ApplyProvisioningDoc(Device& device, std::string_view doc_xml, const SecretBytes& key_pem,
                            const std::string& enrollment_ca_pem, const std::string& hw_dev_id,
                            const std::string& enrollment_type) {
  DM_ASSIGN_OR_RETURN(enroll::ProvisioningDoc doc, enroll::ParseProvisioningDoc(doc_xml));
  DM_RETURN_IF_ERROR(enroll::CheckDeviceKeyPairing(doc, key_pem));
  // Only the device certificate's own dates: servers ship anchors that are past theirs.
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(doc.device_cert_pem));
  const TimePoint now = device.clock().Now();
  if (info.not_after <= now) {
    return FailedPrecondition("the device certificate expired at " + FormatUtc(info.not_after));
  }
  if (info.not_before > now + std::chrono::minutes(5)) {
    return FailedPrecondition("the device certificate is not valid before " +
                              FormatUtc(info.not_before));
  }
  DM_ASSIGN_OR_RETURN(EnrollmentState old, LoadEnrollment(device.db()));

  EnrollmentState s;
  s.kind = "ms-mde2";
  s.management_url = doc.management_url;
  s.provider_id = doc.provider_id;
  s.ca_pem = enrollment_ca_pem;
  s.trust_system_store = enrollment_ca_pem.empty();
  for (const std::string& pem : doc.root_anchors_pem) s.anchor_pem += pem;
  s.device_cert_pem = doc.device_cert_pem;
  s.hw_dev_id = hw_dev_id;
  s.enrollment_type = enrollment_type;
  s.enrolled_at = ToUnixSeconds(now);
  s.renew_period_days = doc.renewal.renew_period_days;
  s.renew_retry_days = doc.renewal.retry_interval_days;
  csp::NodeStore store(device.db(), device.clock());
  const Status stored = Store(device, s, key_pem, [&]() -> Status {
    if (!old.provider_id.empty() && old.provider_id != doc.provider_id) {
      DM_RETURN_IF_ERROR(store.RemoveSubtree(
          {csp::UriScope::kDevice, "",
           std::string(kDmClientProviders) + "/" + csp::EncodeSegment(old.provider_id)}));
    }
    return WritePoll(store, doc.provider_id, doc.poll);
  });
  if (!stored.ok()) return stored;
  spdlog::info("enrolled with {} ({}); management at {}; certificate {} (CN {}) until {}",
               doc.provider_id, doc.name, doc.management_url, info.thumbprint, info.subject_cn,
               FormatUtc(info.not_after));
  for (const std::string& u : doc.unknown)
    spdlog::info("provisioning document: not applied: {}", u);
  return Status::Ok();
}

Status EnrollMsMde2(Device& device, const MsMde2EnrollRequest& r) {
  if (r.enrollment_type != "Full" && r.enrollment_type != "Device") {
    return InvalidArgument("enrollment type must be Full or Device");
  }
  enroll::EnrollParams p;
  DM_ASSIGN_OR_RETURN(p.device, DeviceContextFor(device, r));
  if (r.discovery_url.empty()) {
    DM_ASSIGN_OR_RETURN(p.discovery_url, DiscoveryUrlFor(r.email));
  } else {
    p.discovery_url = r.discovery_url;
  }
  p.ca_bundle_pem = r.ca_bundle_pem;
  p.auth = r.auth;
  p.password = r.password.Clone();
  p.otp = r.otp.Clone();
  p.token = r.token.Clone();
  p.ask_secret = r.ask_secret;
  DM_ASSIGN_OR_RETURN(EnrollmentState current, LoadEnrollment(device.db()));
  if (current.enrolled() && !current.device_cert_pem.empty()) {
    // Re-enrollment: the current certificate is the proof the server asks for.
    auto key = LoadDeviceKey(device);
    if (key.ok()) {
      p.client_cert_pem = current.device_cert_pem;
      p.client_key_pem = std::move(*key);
    } else {
      spdlog::warn("re-enrolling without the current certificate: {}", key.status().ToString());
    }
  }
  DM_ASSIGN_OR_RETURN(enroll::EnrollOutcome out, enroll::Enroll(p));
  Status applied = ApplyProvisioningDoc(device, out.provisioning_doc_xml, out.device_key_pem,
                                        r.ca_bundle_pem, p.device.hw_dev_id, r.enrollment_type);
  return applied.ok()
             ? applied
             : applied.WithContext("RequestSecurityToken at " + out.discovery.enrollment_url +
                                   ": the provisioning document");
}

Status RemoveEnrollment(Device& device) {
  storage::Database& db = device.db();
  DM_ASSIGN_OR_RETURN(EnrollmentState s, LoadEnrollment(db));
  csp::NodeStore store(db, device.clock());
  DM_ASSIGN_OR_RETURN(auto tx, db.Begin());
  for (const char* key : kAllKeys) {
    DM_RETURN_IF_ERROR(db.Run("DELETE FROM settings WHERE key = ?", std::string_view(key)));
  }
  if (!s.provider_id.empty()) {
    DM_RETURN_IF_ERROR(store.RemoveSubtree(
        {csp::UriScope::kDevice, "",
         std::string(kDmClientProviders) + "/" + csp::EncodeSegment(s.provider_id)}));
  }
  return tx.Commit();
}

}  // namespace dm::agent
