// POST /EnrollmentServer/enroll
//
// Request:  {"dev_id": "...", "csr": "-----BEGIN CERTIFICATE REQUEST-----...",
//            "enrollment_token": "...", "upn": "alice@fabrikam.test" (optional)}
// Response: {"device_id", "tenant_id", "tenant_name", "certificate" (PEM, CN = dev_id),
//            "ca_certificate" (PEM), "management_url",
//            "pin_reset": {"url", "public_key_url", "public_key" (SPKI PEM)},
//            "federation_login_url", "hello_cert_url"}
// The certificate's subject is the DevId the server was told, never what the CSR says.
//
// POST /EnrollmentServer/hello-certificate (mutual TLS: an enrolled device)
// Request:  {"public_key": SPKI PEM, "upn": a user of the device's tenant}
// Response: {"certificate": PEM, CN = the UPN, clientAuth, issued by the server CA}
// The enterprise CA certifying a Windows Hello key (certificate trust).
#include <spdlog/spdlog.h>

#include "samples/server/server_internal.h"
#include "samples/server/targeting.h"

namespace dm::server {
namespace {

using nlohmann::json;

// A DevId is an opaque identifier; keep it to what fits in a certificate CN and a LocURI.
Status ValidateDevId(std::string_view id) {
  if (id.empty() || id.size() > 64) return InvalidArgument("dev_id must be 1-64 characters");
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.' || c == '{' || c == '}';
    if (!ok) return InvalidArgument("dev_id may hold letters, digits and - _ . { } only");
  }
  return Status::Ok();
}

Result<json> Enroll(ServerContext& ctx, const json& request) {
  if (!request.is_object()) return InvalidArgument("the body must be a JSON object");
  const std::string dev_id = request.value("dev_id", "");
  const std::string csr = request.value("csr", "");
  const std::string token = request.value("enrollment_token", "");
  const std::string upn = request.value("upn", "");
  DM_RETURN_IF_ERROR(ValidateDevId(dev_id));
  if (csr.empty()) return InvalidArgument("missing \"csr\" (PKCS#10 PEM)");
  if (token.empty()) return Unauthenticated("missing \"enrollment_token\"");

  Store& store = ctx.store;
  auto lock = store.Lock();
  DM_ASSIGN_OR_RETURN(Tenant tenant, store.TenantByEnrollmentToken(token));
  if (!upn.empty()) {
    auto user = store.FindUser(upn);
    if (!user.ok() || user->tenant_id != tenant.id) {
      return InvalidArgument("user " + upn + " is not in tenant " + tenant.name);
    }
  }
  DM_ASSIGN_OR_RETURN(std::optional<Device> existing, store.FindDevice(dev_id));
  if (existing && existing->tenant_id != tenant.id) {
    return AlreadyExists("device " + dev_id + " is enrolled in another tenant");
  }

  pki::IssueOptions issue;
  issue.common_name = dev_id;
  issue.not_before = store.clock().Now() - std::chrono::minutes(5);  // clock skew
  issue.validity = ctx.device_cert_validity;
  issue.client_auth = true;
  DM_ASSIGN_OR_RETURN(std::string cert, pki::IssueFromCsr(ctx.ca, csr, issue));
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(cert));

  DM_ASSIGN_OR_RETURN(auto tx, store.db().Begin());
  // Re-enrollment replaces the certificate: the old one stops working (serial check).
  DM_RETURN_IF_ERROR(store.db().Run(
      "INSERT INTO devices (dev_id, tenant_id, cert_serial, cert_thumbprint, enrolled_upn, "
      "enrolled, enrolled_at) VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT (dev_id) DO UPDATE SET "
      "cert_serial = excluded.cert_serial, cert_thumbprint = excluded.cert_thumbprint, "
      "enrolled_upn = excluded.enrolled_upn, enrolled = 1, enrolled_at = excluded.enrolled_at",
      dev_id, tenant.id, info.serial_hex, info.thumbprint, upn, store.Now()));
  // A (re-)enrolled device starts from scratch: everything assigned is delivered again.
  DM_RETURN_IF_ERROR(store.db().Run(
      "UPDATE commands SET state = 'cancelled' WHERE dev_id = ? AND state = 'queued'", dev_id));
  DM_RETURN_IF_ERROR(store.db().Run("DELETE FROM setting_status WHERE dev_id = ?", dev_id));
  DM_RETURN_IF_ERROR(NoteDeviceUser(store, dev_id, upn));
  DM_RETURN_IF_ERROR(tx.Commit());
  spdlog::info("enrolled device {} in tenant {} (certificate {})", dev_id, tenant.name,
               info.thumbprint);

  return json{{"device_id", dev_id},
              {"tenant_id", tenant.id},
              {"tenant_name", tenant.name},
              {"certificate", cert},
              {"ca_certificate", ctx.ca.cert_pem},
              {"management_url", ctx.base_url + "/ManagementServer/MDM.svc"},
              {"pin_reset",
               {{"url", ctx.base_url + "/PinReset/recover"},
                {"public_key_url", ctx.base_url + "/PinReset/publickey"},
                {"public_key", ctx.pin_reset_public_key}}},
              {"federation_login_url", ctx.base_url + "/federation/login"},
              {"hello_cert_url", ctx.base_url + "/EnrollmentServer/hello-certificate"}};
}

}  // namespace

transport::HttpResponse HandleEnroll(ServerContext& ctx, const transport::HttpRequest& request) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return JsonError(400, "invalid_request", "the body is not JSON");
  Result<json> result = InvalidArgument("bad request");
  try {
    result = Enroll(ctx, body);
  } catch (const json::exception& e) {
    return JsonError(400, "invalid_request", std::string("bad field: ") + e.what());
  }
  if (!result.ok()) {
    spdlog::info("enrollment refused: {}", result.error().ToString());
    return StatusError(result.error());
  }
  return JsonResponse(200, *result);
}

transport::HttpResponse HandleHelloCertificate(ServerContext& ctx,
                                               const transport::HttpRequest& request,
                                               const transport::PeerInfo& peer) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("public_key") || !body.contains("upn") ||
      !body["public_key"].is_string() || !body["upn"].is_string()) {
    return JsonError(400, "invalid_request", "expected {\"public_key\": PEM, \"upn\": UPN}");
  }
  const std::string upn = body["upn"];
  Store& store = ctx.store;
  auto lock = store.Lock();
  auto device = DeviceOfPeer(store, peer);
  if (!device.ok()) return JsonError(403, "device_not_enrolled", device.error().message());
  auto user = store.FindUser(upn);
  if (!user.ok() || user->tenant_id != device->tenant_id) {
    return JsonError(403, "unknown_user", upn + " is not a user of the device's tenant");
  }
  pki::IssueOptions issue;
  issue.common_name = user->upn;
  issue.not_before = store.clock().Now() - std::chrono::minutes(5);
  issue.validity = ctx.device_cert_validity;
  issue.client_auth = true;
  auto cert = pki::IssueForPublicKey(ctx.ca, body["public_key"].get<std::string>(), issue);
  if (!cert.ok()) return JsonError(400, "invalid_public_key", cert.error().message());
  spdlog::info("issued a Hello certificate for {} on device {}", user->upn, device->dev_id);
  return JsonResponse(200, json{{"certificate", *cert}});
}

}  // namespace dm::server
