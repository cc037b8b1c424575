#include "samples/server/testing/enroll_device.h"

#include "agent/enroll/mde2_client.h"
#include "agent/enroll/provisioning_doc.h"
#include "agent/enroll/soap.h"
#include "base/pki.h"

namespace dm::server::testing {

Result<std::string> RstBody(const DmServer& server, const enroll::Credential& cred,
                            const enroll::DeviceContext& device, const SecretBytes& key_pem,
                            std::string_view csr_cn) {
  DM_ASSIGN_OR_RETURN(std::string csr,
                      pki::CreateCsr(key_pem, csr_cn.empty() ? device.device_id : csr_cn));
  return enroll::BuildRequestSecurityToken(
      cred, device, pki::PemBase64(csr), server.BaseUrl() + "/EnrollmentServer/Enrollment.svc",
      "urn:uuid:00000000-0000-4000-8000-000000000001", "uuid-test-1");
}

Result<EnrolledDevice> EnrollWithBulkToken(DmServer& server, std::string_view dev_id,
                                           std::string_view bulk_token) {
  DM_ASSIGN_OR_RETURN(pki::KeyPair key, pki::GenerateKeyPair(pki::KeyType::kEcP256));
  enroll::Credential cred;
  cred.kind = enroll::Credential::Kind::kBinaryToken;
  cred.secret = SecretBytes(bulk_token);
  enroll::DeviceContext device;
  device.email = "device@example.test";
  device.device_id = std::string(dev_id);
  device.hw_dev_id = "00112233445566778899AABBCCDDEEFF";
  transport::HttpRequest request;
  request.method = "POST";
  request.target = "/EnrollmentServer/Enrollment.svc";
  request.headers = {{"Content-Type", std::string(soap::kContentType)}};
  DM_ASSIGN_OR_RETURN(request.body, RstBody(server, cred, device, key.private_pem));
  transport::HttpResponse r = server.Handle(request, transport::PeerInfo{});
  if (r.status != 200) {
    return Internal("enrollment answered " + std::to_string(r.status) + ": " + r.body);
  }
  DM_ASSIGN_OR_RETURN(std::string doc_xml, enroll::ParseRstResponse(r.body));
  DM_ASSIGN_OR_RETURN(enroll::ProvisioningDoc doc, enroll::ParseProvisioningDoc(doc_xml));
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(doc.device_cert_pem));
  EnrolledDevice out;
  out.cert_pem = doc.device_cert_pem;
  out.key_pem = std::move(key.private_pem);
  out.peer.remote_address = "127.0.0.1";
  out.peer.has_client_cert = true;
  out.peer.client_cert_pem = out.cert_pem;
  out.peer.client_cert_cn = info.subject_cn;
  out.peer.client_cert_serial_hex = info.serial_hex;
  return out;
}

}  // namespace dm::server::testing
