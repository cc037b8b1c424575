// Enrollment.svc: MS-WSTEP RequestSecurityToken. A PKCS#10 (real Windows CSRs included: SHA-1
// signed, odd subject) and the AdditionalContext in; a certificate for the DeviceID signed with
// SHA-256 and the provisioning document out.
//
// Re-enrolling a DeviceID that is enrolled needs proof of the current device key: the request
// comes over mutual TLS with the device's current certificate (what MS-MDE2 renewal does). An
// admin's `device.retire` frees the DeviceID. Anyone else gets 409.
#include <spdlog/spdlog.h>

#include <cctype>

#include "agent/enroll/mde2_client.h"
#include "samples/server/mde2_service.h"
#include "samples/server/provisioning_doc.h"
#include "samples/server/targeting.h"

namespace dm::server {
namespace {

using tinyxml2::XMLElement;
using transport::HttpResponse;

constexpr soap::Limits kRequestLimits{.max_bytes = 256 * 1024, .max_depth = 16};
constexpr size_t kMaxCsrBytes = 16 * 1024;
constexpr char kRstrcAction[] =
    "http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep";

// A DeviceID is what the device sends as SyncML Source and what its certificate's CN says.
Status ValidateDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 64) return InvalidArgument("DeviceID must be 1-64 characters");
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.' || c == '{' || c == '}';
    if (!ok) return InvalidArgument("DeviceID may hold letters, digits and - _ . { } only");
  }
  return Status::Ok();
}

Status ValidateHwDevId(std::string_view id) {
  if (id.size() > 128) return InvalidArgument("HWDevID is longer than 128 characters");
  for (char c : id) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '-') {
      return InvalidArgument("HWDevID must be hexadecimal");
    }
  }
  return Status::Ok();
}

struct EnrollRequest {
  std::string csr_pem;
  std::string device_id;
  std::string hw_dev_id;
  std::string enrollment_type = "Full";
};

Result<EnrollRequest> ReadRequest(const XMLElement* rst) {
  using soap::Child;
  using soap::Text;
  if (Text(Child(rst, soap::kWstNs, "TokenType")) != enroll::kDeviceEnrollmentToken) {
    return InvalidArgument("TokenType must be DeviceEnrollmentToken");
  }
  if (Text(Child(rst, soap::kWstNs, "RequestType")) != enroll::kIssue) {
    return InvalidArgument("only the Issue RequestType is served (renewal re-enrolls over mTLS)");
  }
  const XMLElement* bst = Child(rst, soap::kWsseNs, "BinarySecurityToken");
  const char* vt = soap::Attr(bst, "ValueType");
  if (!bst || !vt || std::string_view(vt) != enroll::kPkcs10) {
    return InvalidArgument("the request holds no PKCS#10 BinarySecurityToken");
  }
  const std::string b64 = Text(bst);
  if (b64.size() > kMaxCsrBytes * 4 / 3 + 4) return InvalidArgument("the CSR is too large");
  auto der = crypto::Base64Decode(b64);
  if (!der.ok() || der->empty()) return InvalidArgument("the CSR is not base64");
  EnrollRequest out;
  out.csr_pem = pki::PemFromDer(*der, "CERTIFICATE REQUEST");

  for (const XMLElement* item :
       soap::Children(Child(rst, soap::kAcNs, "AdditionalContext"), soap::kAcNs, "ContextItem")) {
    const char* name = soap::Attr(item, "Name");
    if (!name) continue;
    const std::string value = Text(Child(item, soap::kAcNs, "Value"));
    const std::string_view n = name;
    if (n == "DeviceID") out.device_id = value;
    if (n == "HWDevID") out.hw_dev_id = value;
    if (n == "EnrollmentType") out.enrollment_type = value;
  }
  DM_RETURN_IF_ERROR(ValidateDeviceId(out.device_id));
  DM_RETURN_IF_ERROR(ValidateHwDevId(out.hw_dev_id));
  if (out.enrollment_type != "Full" && out.enrollment_type != "Device") {
    return InvalidArgument("EnrollmentType must be Full or Device");
  }
  return out;
}

// 409 unless the DeviceID is free, or the request proves the current device key.
Status CheckTakeover(const std::optional<Device>& existing, const EnrollCaller& caller,
                     const transport::PeerInfo& peer) {
  if (!existing || !existing->enrolled) return Status::Ok();
  const bool proves_key = peer.has_client_cert && peer.client_cert_cn == existing->dev_id &&
                          !existing->cert_serial.empty() &&
                          peer.client_cert_serial_hex == existing->cert_serial;
  if (proves_key && existing->tenant_id == caller.tenant.id) return Status::Ok();
  return AlreadyExists("device " + existing->dev_id +
                       " is enrolled: enrolling it again needs its current certificate (mutual "
                       "TLS) or an admin's retire");
}

std::string RstrcEnvelope(std::string_view relates_to, const std::string& doc) {
  soap::Envelope env(soap::AddressingNamespaces(), AnswerAddressing(kRstrcAction, relates_to));
  XMLElement* coll = env.Add(env.body(), "RequestSecurityTokenResponseCollection");
  coll->SetAttribute("xmlns", soap::kWstNs.data());
  XMLElement* resp = env.Add(coll, "RequestSecurityTokenResponse");
  env.Add(resp, "TokenType", enroll::kDeviceEnrollmentToken);
  XMLElement* disp = env.Add(resp, "DispositionMessage");
  disp->SetAttribute("xmlns", enroll::kWstepNs);
  XMLElement* bst = env.Add(env.Add(resp, "RequestedSecurityToken"), "BinarySecurityToken",
                            crypto::Base64Encode(crypto::AsBytes(doc)));
  bst->SetAttribute("xmlns", soap::kWsseNs.data());
  bst->SetAttribute("ValueType", enroll::kProvisionDoc);
  bst->SetAttribute("EncodingType", enroll::kBase64Binary);
  XMLElement* id = env.Add(resp, "RequestID", "0");
  id->SetAttribute("xmlns", enroll::kWstepNs);
  return env.Serialize();
}

}  // namespace

HttpResponse HandleEnrollment(ServerContext& ctx, const transport::HttpRequest& request,
                              const transport::PeerInfo& peer) {
  SoapRequest p = ReadSoapRequest(request, kRequestLimits, enroll::kActionRst, soap::kWstNs,
                                  "RequestSecurityToken");
  if (p.fault) return std::move(*p.fault);
  const soap::Message& m = *p.message;
  const std::string& relates = p.relates_to;
  auto req = ReadRequest(m.payload());
  if (!req.ok()) return SoapFault(400, "s:messageformat", req.error().message(), relates);

  Store& store = ctx.store;
  auto caller = AuthenticateEnrollment(ctx, m, peer.remote_address);
  if (!caller.ok()) {
    spdlog::info("enrollment of {} refused: {}", req->device_id, caller.error().message());
    return SoapFault(401, "s:authentication", "the credentials were not accepted", relates);
  }
  auto lock = store.Lock();
  auto existing = store.FindDevice(req->device_id);
  if (!existing.ok()) return SoapFault(500, "s:internalservicefault", "internal error", relates);
  if (Status s = CheckTakeover(*existing, *caller, peer); !s.ok()) {
    spdlog::warn("enrollment of {} refused: {} (caller {} by {})", req->device_id, s.message(),
                 caller->upn.empty() ? "-" : caller->upn, caller->how);
    HttpResponse r = SoapFault(409, "s:authorization", s.message(), relates);
    return r;
  }

  pki::IssueOptions issue;
  issue.common_name = req->device_id;
  issue.not_before = store.clock().Now() - std::chrono::minutes(5);  // clock skew
  issue.validity = ctx.device_cert_validity;
  issue.client_auth = true;
  auto cert = pki::IssueFromCsr(ctx.ca, req->csr_pem, issue);
  if (!cert.ok()) {
    return SoapFault(400, "s:certificaterequest", cert.error().message(), relates);
  }
  auto info = pki::ParseCertificate(*cert);
  auto doc = BuildProvisioningDoc({.ca_cert_pem = ctx.ca.cert_pem,
                                   .device_cert_pem = *cert,
                                   .enrollment_type = req->enrollment_type,
                                   .management_url = ctx.base_url + "/ManagementServer/MDM.svc",
                                   .renew_url = ctx.base_url + "/EnrollmentServer/Enrollment.svc",
                                   .name = caller->tenant.name,
                                   .poll = caller->tenant.poll});
  if (!info.ok() || !doc.ok()) {
    spdlog::error("enrollment of {}: {}", req->device_id,
                  (!info.ok() ? info.error() : doc.error()).ToString());
    return SoapFault(500, "s:enrollmentserver", "the certificate could not be issued", relates);
  }

  Status written = [&]() -> Status {
    DM_ASSIGN_OR_RETURN(auto tx, store.db().Begin());
    if (!caller->jti.empty()) {
      DM_RETURN_IF_ERROR(store.SpendTokenId(caller->jti, caller->token_expires_at));
    }
    // Re-enrollment replaces the certificate: the old one stops working (revoked, and the
    // serial check).
    DM_RETURN_IF_ERROR(store.RevokeCertificateOf(req->device_id, "superseded"));
    DM_RETURN_IF_ERROR(store.db().Run(
        "INSERT INTO devices (dev_id, tenant_id, cert_serial, cert_thumbprint, enrolled_upn, "
        "enrolled, enrolled_at, hw_dev_id, enrollment_type) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) "
        "ON CONFLICT (dev_id) DO UPDATE SET tenant_id = excluded.tenant_id, "
        "cert_serial = excluded.cert_serial, cert_thumbprint = excluded.cert_thumbprint, "
        "enrolled_upn = excluded.enrolled_upn, enrolled = 1, enrolled_at = excluded.enrolled_at, "
        "hw_dev_id = excluded.hw_dev_id, enrollment_type = excluded.enrollment_type",
        req->device_id, caller->tenant.id, info->serial_hex, info->thumbprint, caller->upn,
        store.Now(), req->hw_dev_id, req->enrollment_type));
    // A (re-)enrolled device starts from scratch: everything assigned is delivered again.
    DM_RETURN_IF_ERROR(store.db().Run(
        "UPDATE commands SET state = 'cancelled' WHERE dev_id = ? AND state = 'queued'",
        req->device_id));
    DM_RETURN_IF_ERROR(
        store.db().Run("DELETE FROM setting_status WHERE dev_id = ?", req->device_id));
    if (!caller->upn.empty())
      DM_RETURN_IF_ERROR(NoteDeviceUser(store, req->device_id, caller->upn));
    return tx.Commit();
  }();
  if (!written.ok()) {
    if (written.code() == Code::kUnauthenticated) {
      spdlog::info("enrollment of {} refused: {}", req->device_id, written.message());
      return SoapFault(401, "s:authentication", "the credentials were not accepted", relates);
    }
    spdlog::error("enrollment of {}: {}", req->device_id, written.ToString());
    return SoapFault(500, "s:internalservicefault", "internal error", relates);
  }
  spdlog::info("enrolled device {} (HWDevID {}, {}) in tenant {} by {} ({}), certificate {}",
               req->device_id, req->hw_dev_id.empty() ? "-" : req->hw_dev_id, req->enrollment_type,
               caller->tenant.name, caller->upn.empty() ? "-" : caller->upn, caller->how,
               info->thumbprint);
  return SoapAnswer(RstrcEnvelope(relates, *doc));
}

}  // namespace dm::server
