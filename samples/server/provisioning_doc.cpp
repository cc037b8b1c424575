#include "samples/server/provisioning_doc.h"

#include <tinyxml2.h>

#include "base/pki.h"

namespace dm::server {
namespace {

using tinyxml2::XMLElement;

// The DER of a PEM certificate as one base64 line, and its SHA-1 thumbprint.
struct EncodedCert {
  std::string base64;
  std::string thumbprint;
};
Result<EncodedCert> Encode(const std::string& pem) {
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(pem));
  EncodedCert out;
  out.thumbprint = info.thumbprint;
  out.base64 = pki::PemBase64(pem);
  return out;
}

class DocWriter {
 public:
  DocWriter() {
    root_ = doc_.NewElement("wap-provisioningdoc");
    root_->SetAttribute("version", "1.1");
    doc_.InsertEndChild(root_);
  }
  XMLElement* root() { return root_; }
  XMLElement* Characteristic(XMLElement* parent, const std::string& type) {
    XMLElement* c = doc_.NewElement("characteristic");
    c->SetAttribute("type", type.c_str());
    parent->InsertEndChild(c);
    return c;
  }
  void Parm(XMLElement* parent, const char* name, const std::string& value,
            const char* datatype = nullptr) {
    XMLElement* p = doc_.NewElement("parm");
    p->SetAttribute("name", name);
    p->SetAttribute("value", value.c_str());
    if (datatype) p->SetAttribute("datatype", datatype);
    parent->InsertEndChild(p);
  }
  void Int(XMLElement* parent, const char* name, int value) {
    Parm(parent, name, std::to_string(value), "integer");
  }
  std::string Serialize() {
    tinyxml2::XMLPrinter printer(nullptr, /*compact=*/true);
    doc_.Print(&printer);
    return printer.CStr();
  }

 private:
  tinyxml2::XMLDocument doc_;
  XMLElement* root_;
};

}  // namespace

Result<std::string> BuildProvisioningDoc(const ProvisioningParams& p) {
  if (p.enrollment_type != "Full" && p.enrollment_type != "Device") {
    return InvalidArgument("EnrollmentType must be Full or Device");
  }
  DM_ASSIGN_OR_RETURN(EncodedCert ca, Encode(p.ca_cert_pem));
  DM_ASSIGN_OR_RETURN(EncodedCert device, Encode(p.device_cert_pem));
  DocWriter w;
  XMLElement* store = w.Characteristic(w.root(), "CertificateStore");
  XMLElement* root_ca =
      w.Characteristic(w.Characteristic(w.Characteristic(store, "Root"), "System"), ca.thumbprint);
  w.Parm(root_ca, "EncodedCertificate", ca.base64);
  XMLElement* my = w.Characteristic(store, "My");
  XMLElement* my_store = w.Characteristic(my, p.enrollment_type == "Full" ? "User" : "System");
  w.Parm(w.Characteristic(my_store, device.thumbprint), "EncodedCertificate", device.base64);
  w.Characteristic(my_store, "PrivateKeyContainer");
  XMLElement* renew = w.Characteristic(w.Characteristic(my, "WSTEP"), "Renew");
  w.Parm(renew, "ROBOSupport", "true", "boolean");
  w.Int(renew, "RenewPeriod", p.renew_period_days);
  w.Int(renew, "RetryInterval", p.renew_retry_days);
  if (!p.renew_url.empty()) w.Parm(renew, "ServerURL", p.renew_url);

  XMLElement* app = w.Characteristic(w.root(), "APPLICATION");
  w.Parm(app, "APPID", "w7");
  w.Parm(app, "PROVIDER-ID", kProviderId);
  w.Parm(app, "NAME", p.name);
  w.Parm(app, "ADDR", p.management_url);
  w.Parm(app, "CONNRETRYFREQ", "6");
  w.Parm(app, "INITIALBACKOFFTIME", "30000");
  w.Parm(app, "MAXBACKOFFTIME", "120000");
  w.Parm(app, "BACKCOMPATRETRYDISABLED", "");
  w.Parm(app, "DEFAULTENCODING", "application/vnd.syncml.dm+xml");

  XMLElement* poll = w.Characteristic(
      w.Characteristic(w.Characteristic(w.Characteristic(w.root(), "DMClient"), "Provider"),
                       kProviderId),
      "Poll");
  w.Int(poll, "IntervalForFirstSetOfRetries", p.poll.first_interval_min);
  w.Int(poll, "NumberOfFirstRetries", p.poll.first_count);
  w.Int(poll, "IntervalForSecondSetOfRetries", p.poll.second_interval_min);
  w.Int(poll, "NumberOfSecondRetries", p.poll.second_count);
  w.Int(poll, "IntervalForRemainingScheduledRetries", p.poll.remaining_interval_min);
  w.Int(poll, "NumberOfRemainingScheduledRetries", 0);
  w.Parm(poll, "PollOnLogin", "true", "boolean");
  return w.Serialize();
}

}  // namespace dm::server
