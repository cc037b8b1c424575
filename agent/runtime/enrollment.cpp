#include "agent/runtime/enrollment.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "agent/runtime/machine_key.h"
#include "agent/transport/https_client.h"
#include "base/pki.h"
#include "csp/device_facts.h"
#include "csp/dmagent_csp.h"
#include "storage/database.h"

namespace dm::agent {
namespace {

using nlohmann::json;

constexpr char kDeviceKeyPurpose[] = "dmagent/enrollment/device-key";

// settings-table keys
constexpr char kManagementUrl[] = "enrollment.management_url";
constexpr char kTenantId[] = "enrollment.tenant_id";
constexpr char kTenantName[] = "enrollment.tenant_name";
constexpr char kCaPem[] = "enrollment.ca_pem";
constexpr char kDeviceCert[] = "enrollment.device_cert_pem";
constexpr char kDeviceKeySealed[] = "enrollment.device_key_sealed";  // hex
// The service URLs and key are DMAgent CSP leaves (Services/*) as well.
constexpr const char* kPinResetUrl = csp::kPinResetUrlKey;
constexpr const char* kPinResetKey = csp::kPinResetPublicKeyKey;
constexpr const char* kFederationUrl = csp::kFederationLoginUrlKey;
constexpr const char* kHelloCertUrl = csp::kHelloCertUrlKey;

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
Status Store(Device& device, const EnrollmentState& s, const SecretBytes& device_key) {
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
  return s;
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

Status EnrollWithServer(Device& device, const ServerEnrollRequest& request) {
  DM_ASSIGN_OR_RETURN(std::string dev_id, csp::DeviceId(device.db()));
  DM_ASSIGN_OR_RETURN(pki::KeyPair key, pki::GenerateKeyPair(pki::KeyType::kEcP256));
  DM_ASSIGN_OR_RETURN(std::string csr, pki::CreateCsr(key.private_pem, dev_id));

  transport::HttpsClientOptions opts;
  opts.server_url = request.server_url;
  opts.ca_bundle_pem = request.ca_bundle_pem;
  opts.step_timeout = std::chrono::seconds(30);
  DM_ASSIGN_OR_RETURN(auto client, transport::HttpsClient::Create(std::move(opts)));
  json body{{"dev_id", dev_id}, {"csr", csr}, {"enrollment_token", request.token}};
  if (!request.upn.empty()) body["upn"] = request.upn;
  DM_ASSIGN_OR_RETURN(transport::HttpResponse resp,
                      client->Post("/EnrollmentServer/enroll", body.dump(), "application/json"));
  json answer = json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (resp.status != 200) {
    std::string why = answer.is_object() ? answer.value("message", resp.body) : resp.body;
    return transport::HttpStatusToStatus(resp).WithContext("enrollment refused: " + why);
  }
  if (!answer.is_object()) return InvalidArgument("enrollment answer is not JSON");

  EnrollmentState s;
  s.management_url = answer.value("management_url", "");
  s.tenant_id = answer.value("tenant_id", "");
  s.tenant_name = answer.value("tenant_name", "");
  s.ca_pem = answer.value("ca_certificate", "");
  s.device_cert_pem = answer.value("certificate", "");
  s.federation_login_url = answer.value("federation_login_url", "");
  s.hello_cert_url = answer.value("hello_cert_url", "");
  if (answer.contains("pin_reset") && answer["pin_reset"].is_object()) {
    s.pin_reset_url = answer["pin_reset"].value("url", "");
    s.pin_reset_public_key_pem = answer["pin_reset"].value("public_key", "");
  }
  if (s.management_url.empty() || s.ca_pem.empty() || s.device_cert_pem.empty()) {
    return InvalidArgument("enrollment answer lacks management_url, ca_certificate or certificate");
  }
  DM_RETURN_IF_ERROR(CheckKeyMatchesCertificate(key.private_pem, s.device_cert_pem));
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(s.device_cert_pem));
  if (info.subject_cn != dev_id) {
    return InvalidArgument("the server issued a certificate for " + info.subject_cn +
                           ", not for this device (" + dev_id + ")");
  }
  DM_RETURN_IF_ERROR(pki::VerifyCertificate(s.device_cert_pem, s.ca_pem, device.clock().Now()));
  DM_RETURN_IF_ERROR(Store(device, s, key.private_pem));
  spdlog::info("enrolled as {} in tenant {} ({}); management at {}", dev_id, s.tenant_name,
               s.tenant_id, s.management_url);
  return Status::Ok();
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

}  // namespace dm::agent
