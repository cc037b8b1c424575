#include "agent/enroll/provisioning_doc.h"

#include <spdlog/spdlog.h>
#include <tinyxml2.h>

#include <charconv>

#include "base/crypto.h"
#include "base/pki.h"

namespace dm::enroll {
namespace {

using tinyxml2::XMLElement;

constexpr size_t kMaxDocBytes = 1 << 20;

std::string TypeOf(const XMLElement* e) {
  const char* t = e->Attribute("type");
  return t ? t : "";
}

int ToInt(std::string_view v) {
  int out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return (ec == std::errc() && p == v.data() + v.size() && out >= 0) ? out : 0;
}

// parm name -> value of one characteristic (direct children only).
std::vector<std::pair<std::string, std::string>> Parms(const XMLElement* c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const XMLElement* p = c->FirstChildElement("parm"); p; p = p->NextSiblingElement("parm")) {
    const char* n = p->Attribute("name");
    const char* v = p->Attribute("value");
    if (n) out.emplace_back(n, v ? v : "");
  }
  return out;
}

// A percent-decoded provider name ("DEMO%20MDM" -> "DEMO MDM").
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = crypto::HexDecode(s.substr(i + 1, 2));
      if (hex.ok()) {
        out.push_back(static_cast<char>((*hex)[0]));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct Parser {
  ProvisioningDoc doc;
  Status error;

  void Unknown(const std::string& path) {
    spdlog::info("provisioning document: kept unknown characteristic {}", path);
    doc.unknown.push_back(path);
  }

  // CertificateStore/<store>/<sub>/<thumbprint>/EncodedCertificate
  void CertificateStore(const XMLElement* cs) {
    for (const XMLElement* store = cs->FirstChildElement("characteristic"); store;
         store = store->NextSiblingElement("characteristic")) {
      const std::string st = TypeOf(store);
      for (const XMLElement* sub = store->FirstChildElement("characteristic"); sub;
           sub = sub->NextSiblingElement("characteristic")) {
        const std::string sb = TypeOf(sub);
        const std::string path = "CertificateStore/" + st + "/" + sb;
        if (st == "My" && sb == "WSTEP") {
          Renew(sub);
          continue;
        }
        const bool root = st == "Root" && sb == "System";
        const bool my = st == "My" && (sb == "User" || sb == "System");
        if (!root && !my) {
          Unknown(path);
          continue;
        }
        for (const XMLElement* t = sub->FirstChildElement("characteristic"); t;
             t = t->NextSiblingElement("characteristic")) {
          if (TypeOf(t) == "PrivateKeyContainer") continue;  // the key stays where it is
          std::string der;
          for (const auto& [n, v] : Parms(t)) {
            if (n == "EncodedCertificate") der = v;
          }
          if (der.empty()) {
            Unknown(path + "/" + TypeOf(t));
            continue;
          }
          auto pem = CertificatePemFromBase64Der(der);
          if (!pem.ok()) {
            error = pem.status().WithContext(path + "/" + TypeOf(t));
            return;
          }
          if (root) {
            doc.root_anchors_pem.push_back(std::move(*pem));
          } else if (doc.device_cert_pem.empty()) {
            doc.device_cert_pem = std::move(*pem);
            doc.device_cert_store = sb;
          } else {
            error = InvalidArgument("provisioning document holds more than one device certificate");
            return;
          }
        }
      }
    }
  }

  void Renew(const XMLElement* wstep) {
    for (const XMLElement* r = wstep->FirstChildElement("characteristic"); r;
         r = r->NextSiblingElement("characteristic")) {
      if (TypeOf(r) != "Renew") {
        Unknown("CertificateStore/My/WSTEP/" + TypeOf(r));
        continue;
      }
      for (const auto& [n, v] : Parms(r)) {
        if (n == "ROBOSupport") doc.renewal.robo_support = v == "true";
        if (n == "RenewPeriod") doc.renewal.renew_period_days = ToInt(v);
        if (n == "RetryInterval") doc.renewal.retry_interval_days = ToInt(v);
      }
    }
  }

  void Application(const XMLElement* app) {
    auto parms = Parms(app);
    std::string appid;
    for (const auto& [n, v] : parms) {
      if (n == "APPID") appid = v;
    }
    if (appid != "w7") {
      Unknown("APPLICATION/" + appid);
      return;
    }
    for (const auto& [n, v] : parms) {
      if (n == "ADDR") doc.management_url = v;
      if (n == "PROVIDER-ID") doc.provider_id = PercentDecode(v);
      if (n == "NAME") doc.name = v;
      if (n == "CONNRETRYFREQ") doc.conn_retry_freq = ToInt(v);
      if (n == "INITIALBACKOFFTIME") doc.initial_backoff_ms = ToInt(v);
      if (n == "MAXBACKOFFTIME") doc.max_backoff_ms = ToInt(v);
    }
    for (const XMLElement* a = app->FirstChildElement("characteristic"); a;
         a = a->NextSiblingElement("characteristic")) {
      if (TypeOf(a) != "APPAUTH") {
        Unknown("APPLICATION/w7/" + TypeOf(a));
        continue;
      }
      AppAuth auth;
      for (const auto& [n, v] : Parms(a)) {
        if (n == "AAUTHLEVEL") auth.level = v;
        if (n == "AAUTHTYPE") auth.type = v;
        if (n == "AAUTHNAME") auth.name = v;
        if (n == "AAUTHSECRET") auth.secret = SecretBytes(v);
        if (n == "AAUTHDATA") auth.data = v;
      }
      doc.app_auth.push_back(std::move(auth));
    }
  }

  // DMClient/Provider/<id>/Poll
  void DmClient(const XMLElement* dmc) {
    for (const XMLElement* prov = dmc->FirstChildElement("characteristic"); prov;
         prov = prov->NextSiblingElement("characteristic")) {
      if (TypeOf(prov) != "Provider") {
        Unknown("DMClient/" + TypeOf(prov));
        continue;
      }
      for (const XMLElement* id = prov->FirstChildElement("characteristic"); id;
           id = id->NextSiblingElement("characteristic")) {
        for (const XMLElement* c = id->FirstChildElement("characteristic"); c;
             c = c->NextSiblingElement("characteristic")) {
          if (TypeOf(c) != "Poll") {
            Unknown("DMClient/Provider/" + TypeOf(id) + "/" + TypeOf(c));
            continue;
          }
          PollValues& p = doc.poll;
          for (const auto& [n, v] : Parms(c)) {
            if (n == "NumberOfFirstRetries") p.count_first = ToInt(v);
            if (n == "IntervalForFirstSetOfRetries") p.interval_first_min = ToInt(v);
            if (n == "NumberOfSecondRetries") p.count_second = ToInt(v);
            if (n == "IntervalForSecondSetOfRetries") p.interval_second_min = ToInt(v);
            if (n == "NumberOfRemainingScheduledRetries") p.count_remaining = ToInt(v);
            if (n == "IntervalForRemainingScheduledRetries") p.interval_remaining_min = ToInt(v);
            if (n == "PollOnLogin") p.poll_on_login = v == "true";
            if (n == "AllUsersPollOnFirstLogin") p.all_users_poll_on_first_login = v == "true";
          }
        }
      }
    }
  }
};

}  // namespace

Result<std::string> CertificatePemFromBase64Der(std::string_view b64) {
  std::string compact;
  for (char c : b64) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact.push_back(c);
  }
  auto der = crypto::Base64Decode(compact);
  if (!der.ok()) return InvalidArgument("EncodedCertificate is not base64");
  const std::string pem = pki::PemFromDer(*der, "CERTIFICATE");
  auto info = pki::ParseCertificate(pem);
  if (!info.ok()) return InvalidArgument("EncodedCertificate is not an X.509 certificate");
  return pem;
}

Result<ProvisioningDoc> ParseProvisioningDoc(std::string_view xml) {
  if (xml.size() > kMaxDocBytes) return ResourceExhausted("provisioning document too large");
  tinyxml2::XMLDocument x;
  if (x.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    return InvalidArgument(std::string("provisioning document is not XML: ") + x.ErrorStr());
  }
  const XMLElement* root = x.RootElement();
  if (!root || std::string_view(root->Name()) != "wap-provisioningdoc") {
    return InvalidArgument("not a wap-provisioningdoc");
  }
  Parser p;
  for (const XMLElement* c = root->FirstChildElement(); c && p.error.ok();
       c = c->NextSiblingElement()) {
    const std::string type = TypeOf(c);
    if (std::string_view(c->Name()) != "characteristic") {
      p.Unknown(c->Name());
    } else if (type == "CertificateStore") {
      p.CertificateStore(c);
    } else if (type == "APPLICATION") {
      p.Application(c);
    } else if (type == "DMClient") {
      p.DmClient(c);
    } else {
      p.Unknown(type);
    }
  }
  DM_RETURN_IF_ERROR(p.error);
  ProvisioningDoc& d = p.doc;
  if (d.management_url.rfind("https://", 0) != 0) {
    return InvalidArgument("provisioning document has no https:// ADDR in APPLICATION w7");
  }
  if (d.provider_id.empty()) return InvalidArgument("provisioning document has no PROVIDER-ID");
  if (d.device_cert_pem.empty()) {
    return InvalidArgument("provisioning document has no device certificate (My/User, My/System)");
  }
  const PollValues& s = d.poll;
  if (s.interval_first_min == 0 && s.interval_second_min == 0 && s.interval_remaining_min == 0) {
    // Fleet sends zeros and drives polling later; keep polling meanwhile.
    const bool login = s.poll_on_login;
    d.poll = PollValues{};
    d.poll.poll_on_login = login;
    d.poll_defaulted = true;
  }
  return std::move(p.doc);
}

Status CheckDeviceKeyPairing(const ProvisioningDoc& doc, const SecretBytes& key_pem) {
  DM_ASSIGN_OR_RETURN(std::string pub, pki::PublicKeyOf(key_pem));
  DM_ASSIGN_OR_RETURN(pki::CertInfo info, pki::ParseCertificate(doc.device_cert_pem));
  if (info.public_key_pem != pub) {
    return InvalidArgument("the issued device certificate (" + info.thumbprint +
                           ") does not carry this device's key");
  }
  return Status::Ok();
}

}  // namespace dm::enroll
