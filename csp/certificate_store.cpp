#include "csp/certificate_store.h"

#include "base/pki.h"
#include "csp/csps_internal.h"
#include "csp/device_facts.h"

namespace dm::csp {
namespace {

// The certificates of one store: the anchors (Root/System) or the device certificate (My/User
// for a Full enrollment, My/System for a Device one).
enum class Which { kRoot, kMyUser, kMySystem };

Result<std::vector<std::string>> CertsOf(storage::Database& db, Which which) {
  if (which == Which::kRoot) {
    DM_ASSIGN_OR_RETURN(auto anchors, ReadFact(db, kEnrollmentAnchorKey));
    return pki::SplitCertificatePems(anchors.value_or(""));
  }
  DM_ASSIGN_OR_RETURN(auto cert, ReadFact(db, kEnrollmentDeviceCertKey));
  DM_ASSIGN_OR_RETURN(auto type, ReadFact(db, kEnrollmentTypeKey));
  const bool system = type.value_or("Full") == "Device";
  if (!cert || cert->empty() || system != (which == Which::kMySystem)) {
    return std::vector<std::string>();
  }
  return std::vector<std::string>{*cert};
}

// The certificate named by the {Thumbprint} on the address path.
Result<std::optional<pki::CertInfo>> Find(storage::Database& db, Which which, const NodeAddress& a,
                                          std::string* pem) {
  if (a.dynamic.empty()) return std::optional<pki::CertInfo>();
  DM_ASSIGN_OR_RETURN(auto certs, CertsOf(db, which));
  for (const std::string& c : certs) {
    auto info = pki::ParseCertificate(c);
    if (info.ok() && info->thumbprint == a.dynamic.back()) {
      if (pem) *pem = c;
      return std::optional<pki::CertInfo>(std::move(*info));
    }
  }
  return std::optional<pki::CertInfo>();
}

NodeDef Field(storage::Database& db, Which which, const char* name,
              std::string (*field)(const pki::CertInfo&, const std::string& pem)) {
  return ComputedLeaf(
      name, Format::kChr,
      [&db, which, field](const NodeAddress& a) -> Result<std::optional<std::string>> {
        std::string pem;
        DM_ASSIGN_OR_RETURN(auto info, Find(db, which, a, &pem));
        if (!info) return std::optional<std::string>();
        return std::optional<std::string>(field(*info, pem));
      });
}

NodeDef Store(storage::Database& db, const char* name, Which which) {
  NodeDef cert = DynamicInterior(
      Naming::kAnyName, "{Thumbprint}", access::kGet, Storage::kComputed,
      {Field(db, which, "EncodedCertificate",
             [](const pki::CertInfo&, const std::string& pem) { return pki::PemBase64(pem); }),
       Field(db, which, "IssuedBy",
             [](const pki::CertInfo& i, const std::string&) { return i.issuer_cn; }),
       Field(db, which, "IssuedTo",
             [](const pki::CertInfo& i, const std::string&) { return i.subject_cn; }),
       Field(db, which, "ValidFrom",
             [](const pki::CertInfo& i, const std::string&) { return FormatUtc(i.not_before); }),
       Field(db, which, "ValidTo",
             [](const pki::CertInfo& i, const std::string&) { return FormatUtc(i.not_after); })});
  cert.instances = [&db, which](const NodeAddress&) -> Result<std::vector<std::string>> {
    DM_ASSIGN_OR_RETURN(auto certs, CertsOf(db, which));
    std::vector<std::string> names;
    for (const std::string& c : certs) {
      if (auto info = pki::ParseCertificate(c); info.ok()) names.push_back(info->thumbprint);
    }
    return names;
  };
  return Interior(name, access::kGet, Storage::kPermanent, {std::move(cert)});
}

}  // namespace

NodeDef CertificateStoreCsp(storage::Database& db) {
  return std::move(Interior("CertificateStore", access::kGet, Storage::kPermanent,
                            {Interior("Root", access::kGet, Storage::kPermanent,
                                      {Store(db, "System", Which::kRoot)}),
                             Interior("My", access::kGet, Storage::kPermanent,
                                      {Store(db, "User", Which::kMyUser),
                                       Store(db, "System", Which::kMySystem)})}))
      .DeviceOnly();
}

}  // namespace dm::csp
