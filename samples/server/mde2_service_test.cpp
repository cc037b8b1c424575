// dmserver's MS-MDE2 enrollment service (Discovery.svc, Policy.svc, Enrollment.svc) end to end
// over TLS on 127.0.0.1 (port 0) and through the router: real Windows requests byte for byte
// (tests/fixtures/ms-mde2/), malformed and hostile requests, re-enrollment of an enrolled
// DeviceID, Federated sign-in with the IdP's user tokens, the bulk token's life cycle and the
// enterpriseenrollment host. Then the UserTokenSigner and BuildProvisioningDoc units.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <tinyxml2.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/enroll/fixture_for_tests.h"
#include "agent/enroll/mde2_client.h"
#include "agent/enroll/provisioning_doc.h"
#include "agent/enroll/soap.h"
#include "agent/syncml/codec.h"
#include "agent/transport/https_client.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "samples/server/admin.h"
#include "samples/server/provisioning_doc.h"
#include "samples/server/server.h"
#include "samples/server/server_internal.h"
#include "samples/server/testing/test_server.h"
#include "samples/server/user_token.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using transport::HttpResponse;

constexpr char kDiscovery[] = "/EnrollmentServer/Discovery.svc";
constexpr char kPolicy[] = "/EnrollmentServer/Policy.svc";
constexpr char kEnrollment[] = "/EnrollmentServer/Enrollment.svc";
constexpr char kMdm[] = "/ManagementServer/MDM.svc";
constexpr char kSoapContentType[] = "application/soap+xml; charset=utf-8";
constexpr char kSha256Oid[] = "2.16.840.1.101.3.4.2.1";
// Both fixture devices send this HWDevID.
constexpr char kFixtureHwDevId[] =
    "3B3ED6D0EA88CBFCF37D36F90F22FE61172348C0162FC3840D6703149870CE76";
constexpr char kTotpBase32[] = "JBSWY3DPEHPK3PXPJBSWY3DP";
constexpr char kCallback[] = "ms-app://windows.immersivecontrolpanel";

std::string Replaced(std::string text, std::string_view from, std::string_view to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "'" << from << "' is not in the text";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The text between `open` and the next `close` (after `open`); empty when absent.
std::string Between(std::string_view text, std::string_view open, std::string_view close) {
  const size_t start = text.find(open);
  if (start == std::string_view::npos) return {};
  const size_t end = text.find(close, start + open.size());
  if (end == std::string_view::npos) return {};
  return std::string(text.substr(start + open.size(), end - start - open.size()));
}

// A SOAP fault answer with this HTTP status and s:Subcode (local name), as a Windows device
// reads it: Content-Type application/soap+xml and an s:Fault envelope.
::testing::AssertionResult IsFault(const HttpResponse& r, int status, std::string_view subcode) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure()
           << why << " (HTTP " << r.status << ", body " << r.body.substr(0, 400) << ")";
  };
  if (r.status != status) return fail("unexpected HTTP status, wanted " + std::to_string(status));
  if (r.Header("Content-Type").value_or("").rfind("application/soap+xml", 0) != 0) {
    return fail("Content-Type is '" + r.Header("Content-Type").value_or("") + "'");
  }
  auto m = soap::Message::Parse(r.body);
  if (!m.ok()) return fail("the body is not a SOAP envelope: " + m.error().ToString());
  if (!m->fault()) return fail("the envelope holds no s:Fault");
  if (m->fault()->subcode != subcode) return fail("subcode '" + m->fault()->subcode + "'");
  return ::testing::AssertionSuccess();
}

// A successful SOAP answer.
::testing::AssertionResult IsSoapOk(const HttpResponse& r) {
  if (r.status != 200) {
    return ::testing::AssertionFailure() << "HTTP " << r.status << ": " << r.body.substr(0, 400);
  }
  if (r.Header("Content-Type").value_or("").rfind("application/soap+xml", 0) != 0) {
    return ::testing::AssertionFailure()
           << "Content-Type " << r.Header("Content-Type").value_or("");
  }
  return ::testing::AssertionSuccess();
}

std::string MessageIdOf(std::string_view soap_xml) {
  auto m = soap::Message::Parse(soap_xml);
  return m.ok() ? m->addressing().message_id : "";
}

// The base64 PKCS#10 of an RST (wsse:Security may hold another BinarySecurityToken).
std::string CsrOf(std::string_view rst) {
  const size_t at = rst.find(std::string("\"") + enroll::kPkcs10 + "\"");
  if (at == std::string_view::npos) return {};
  return Between(rst.substr(at), "\">", "</wsse:BinarySecurityToken>");
}

// The RST with the last byte of its CSR (the last byte of the CSR's signature) flipped.
std::string WithForgedCsrSignature(const std::string& rst) {
  const std::string csr_b64 = CsrOf(rst);
  auto der = crypto::Base64Decode(csr_b64);
  EXPECT_TRUE(der.ok() && !der->empty()) << "no CSR in the RST";
  if (!der.ok() || der->empty()) return rst;
  der->back() ^= 0x01;
  return Replaced(rst, csr_b64, crypto::Base64Encode(*der));
}

enroll::Credential BulkToken(std::string_view token) {
  enroll::Credential c;
  c.kind = enroll::Credential::Kind::kBinaryToken;
  c.secret = SecretBytes(token);
  return c;
}
enroll::Credential UserToken(std::string_view jwt) {
  enroll::Credential c = BulkToken(jwt);
  c.value_type = enroll::kUserTokenType;
  return c;
}
enroll::Credential Password(std::string upn, std::string_view password) {
  enroll::Credential c;
  c.kind = enroll::Credential::Kind::kUsernameToken;
  c.username = std::move(upn);
  c.secret = SecretBytes(password);
  return c;
}

// A device certificate and the key it certifies.
struct DeviceCert {
  std::string dev_id;
  std::string cert_pem;
  SecretBytes key_pem;
  std::string serial;
};

class Mde2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dmserver-mde2-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ServerOptions options = testing::TestServerOptions(dir_ / "state");
    options.clock = &clock_;
    options.enrollment_domain = "fabrikam.test";
    options.revocation_poll = std::chrono::milliseconds(50);
    auto server = DmServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(*server);
    json tenant = AdminOk("tenant.add", {{"name", "Fabrikam"}});
    bulk_token_ = tenant.at("enrollment_token").get<std::string>();
    fabrikam_id_ = tenant.at("id").get<std::string>();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  json AdminOk(const std::string& op, const json& args) {
    auto result = RunAdmin(server_->store(), op, args);
    EXPECT_TRUE(result.ok()) << op << ": " << result.error().ToString();
    return result.ok() ? *result : json();
  }
  void AddUser(const std::string& tenant, const std::string& upn, const std::string& password) {
    AdminOk(
        "user.add",
        {{"tenant", tenant}, {"upn", upn}, {"password", password}, {"totp_secret", kTotpBase32}});
  }

  std::unique_ptr<transport::HttpsClient> Client(std::string cert = "", SecretBytes key = {}) {
    auto client = testing::TestClient(*server_, std::move(cert), std::move(key));
    EXPECT_TRUE(client.ok()) << client.error().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }
  std::unique_ptr<transport::HttpsClient> Client(const DeviceCert& d) {
    return Client(d.cert_pem, d.key_pem.Clone());
  }

  // POST over TLS, anonymously unless `via` (a mutual-TLS client) is given.
  HttpResponse Post(const std::string& path, const std::string& body,
                    transport::HttpsClient* via = nullptr) {
    std::unique_ptr<transport::HttpsClient> anonymous;
    if (!via) via = (anonymous = Client()).get();
    auto r = via->PostOnce(path, body, kSoapContentType);
    EXPECT_TRUE(r.ok()) << path << ": " << r.error().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  HttpResponse Get(const std::string& path) {
    auto r = Client()->GetOnce(path);
    EXPECT_TRUE(r.ok()) << path << ": " << r.error().ToString();
    return r.ok() ? *r : HttpResponse{};
  }

  // Through the router, without TLS or name resolution: Host-based routes, big bodies.
  HttpResponse Route(const std::string& method, const std::string& host, const std::string& target,
                     std::string body = "", const std::string& content_type = kSoapContentType) {
    return server_->Handle({.method = method,
                            .target = target,
                            .headers = {{"Host", host}, {"Content-Type", content_type}},
                            .body = std::move(body)},
                           {});
  }
  HttpResponse RoutePost(const std::string& target, std::string body) {
    return Route("POST", "127.0.0.1", target, std::move(body));
  }

  // ---- device-side requests ----
  enroll::DeviceContext DeviceInfo(const std::string& dev_id, const std::string& email = "") {
    enroll::DeviceContext dc;
    dc.email = email.empty() ? "device@fabrikam.test" : email;
    dc.device_id = dev_id;
    dc.hw_dev_id = "0123456789ABCDEF";
    return dc;
  }
  std::string DiscoverBody(const std::string& email) {
    return enroll::BuildDiscover(DeviceInfo("ANY", email), server_->BaseUrl() + kDiscovery,
                                 "urn:uuid:00000000-0000-4000-8000-000000000001");
  }
  std::string GetPoliciesBody(const enroll::Credential& cred) {
    return enroll::BuildGetPolicies(cred, server_->BaseUrl() + kPolicy,
                                    "urn:uuid:00000000-0000-4000-8000-000000000002", "uuid-2");
  }
  // An RST with a CSR (SHA-256, DeviceID extension, as the agent makes it) of `key`.
  std::string RstBody(const enroll::Credential& cred, const enroll::DeviceContext& dc,
                      const SecretBytes& key) {
    auto csr = enroll::BuildCsr(key, dc.device_id, dc.device_id);
    EXPECT_TRUE(csr.ok()) << csr.error().ToString();
    return enroll::BuildRequestSecurityToken(
        cred, dc, csr.ok() ? crypto::Base64Encode(*csr) : "", server_->BaseUrl() + kEnrollment,
        "urn:uuid:00000000-0000-4000-8000-000000000003", "uuid-3");
  }

  // The RST for `dc` with a fresh key over TLS (mutual TLS with `via`): the HTTP answer, and
  // the device certificate when it is a 200 whose provisioning document parses.
  struct RstOutcome {
    HttpResponse http;
    DeviceCert device;
    enroll::ProvisioningDoc doc;
  };
  RstOutcome RequestCert(const enroll::Credential& cred, const enroll::DeviceContext& dc,
                         transport::HttpsClient* via = nullptr) {
    RstOutcome out;
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    EXPECT_TRUE(key.ok());
    out.http = Post(kEnrollment, RstBody(cred, dc, key->private_pem), via);
    if (out.http.status != 200) return out;
    auto doc_xml = enroll::ParseRstResponse(out.http.body);
    EXPECT_TRUE(doc_xml.ok()) << doc_xml.error().ToString();
    auto doc = enroll::ParseProvisioningDoc(doc_xml.ok() ? *doc_xml : "");
    EXPECT_TRUE(doc.ok()) << doc.error().ToString();
    if (!doc.ok()) return out;
    EXPECT_TRUE(enroll::CheckDeviceKeyPairing(*doc, key->private_pem).ok());
    auto info = pki::ParseCertificate(doc->device_cert_pem);
    EXPECT_TRUE(info.ok());
    out.device = DeviceCert{.dev_id = dc.device_id,
                            .cert_pem = doc->device_cert_pem,
                            .key_pem = std::move(key->private_pem),
                            .serial = info.ok() ? info->serial_hex : ""};
    out.doc = std::move(*doc);
    return out;
  }
  RstOutcome RequestCert(const enroll::Credential& cred, const std::string& dev_id,
                         transport::HttpsClient* via = nullptr) {
    return RequestCert(cred, DeviceInfo(dev_id), via);
  }
  // The same, expecting success.
  DeviceCert Enroll(const enroll::Credential& cred, const std::string& dev_id,
                    transport::HttpsClient* via = nullptr) {
    RstOutcome out = RequestCert(cred, dev_id, via);
    EXPECT_TRUE(IsSoapOk(out.http)) << "enrolling " << dev_id;
    EXPECT_FALSE(out.device.cert_pem.empty());
    return std::move(out.device);
  }

  std::optional<Device> Stored(const std::string& dev_id) {
    auto lock = server_->store().Lock();
    auto d = server_->store().FindDevice(dev_id);
    EXPECT_TRUE(d.ok()) << d.error().ToString();
    return d.ok() ? *d : std::nullopt;
  }
  std::string StoredSerial(const std::string& dev_id) {
    auto d = Stored(dev_id);
    return d ? d->cert_serial : "";
  }

  // The HTTP status of a first OMA-DM message from `d` over mutual TLS with its certificate,
  // or kRefusedByTls when the TLS handshake refused the certificate (revoked).
  static constexpr int kRefusedByTls = -1;
  int ManagementStatus(const DeviceCert& d) {
    syncml::Message m;
    m.header.session_id = "1";
    m.header.msg_id = "1";
    m.header.target.loc_uri = server_->BaseUrl() + kMdm;
    m.header.source.loc_uri = d.dev_id;
    m.final = true;
    m.commands.push_back(syncml::MakeAlert("2", 1201));
    auto r = Client(d)->PostOnce(kMdm, syncml::Encode(m));
    if (!r.ok()) {
      EXPECT_NE(r.error().message().find("the server rejected the client certificate"),
                std::string::npos)
          << r.error().ToString();
      return kRefusedByTls;
    }
    return r->status;
  }

  // An admin operation through the admin API (the router, with the bearer token), which
  // publishes revocations at once, as `POST /admin/v1/<op>` does.
  json AdminApi(const std::string& op, const json& args) {
    const std::string token = testing::InitialAdminToken(dir_ / "state");
    HttpResponse r = server_->HandleAdmin(
        {.method = "POST",
         .target = "/admin/v1/" + op,
         .headers = {{"Host", "127.0.0.1"}, {"Authorization", "Bearer " + token}},
         .body = args.dump()});
    EXPECT_EQ(r.status, 200) << op << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  FakeClock clock_{Clock::System().Now()};
  fs::path dir_;
  std::unique_ptr<DmServer> server_;
  std::string bulk_token_;
  std::string fabrikam_id_;
};

// ---- golden: real Windows devices' requests, byte for byte ----

struct GoldenDevice {
  const char* name;    // the test's suffix
  const char* prefix;  // fixture files: <prefix>-0N-req-body.min.xml
  const char* device_id;
  const char* upn;            // the Discover EmailAddress; a user of Fabrikam, password "demo"
  const char* sent_username;  // what the device's wsse:Username says
};

const GoldenDevice kGoldenDevices[] = {
    {"readme", "fleet-poc-readme/readme", "1E08C6E95D8BB843B1278FF45BC60CC6", "demo@mdmwindows.com",
     "demo@mdmwindows.com"},
    {"ngrok", "fleet-poc-ngrok/ngrok", "B5B954E81FBCB94EB79BD08BE625F4EE", "demo@fleetdm.ngrok.io",
     "demio"},
};

void PrintTo(const GoldenDevice& d, std::ostream* os) { *os << d.name; }

class Mde2GoldenTest : public Mde2Test, public ::testing::WithParamInterface<GoldenDevice> {
 protected:
  void SetUp() override {
    Mde2Test::SetUp();
    AddUser("Fabrikam", GetParam().upn, "demo");
  }
  // Request NN of the device, as it was on the wire.
  static std::string Request(int n) {
    std::string body = enroll::MsMde2Fixture(std::string(GetParam().prefix) + "-0" +
                                             std::to_string(n) + "-req-body.min.xml");
    EXPECT_FALSE(body.empty()) << "fixture " << GetParam().prefix << " 0" << n;
    return body;
  }
  // The same, signing in as the UPN. The ngrok device's UsernameToken says "demio", a name its
  // proof-of-concept server accepted; dmserver's users are UPNs, so the test swaps in the UPN
  // the device discovered with. The readme device's request is unchanged.
  static std::string SignedInRequest(int n) {
    const std::string sent = std::string("<wsse:Username>") + GetParam().sent_username;
    return Replaced(Request(n), sent, std::string("<wsse:Username>") + GetParam().upn);
  }
};

TEST_P(Mde2GoldenTest, DiscoveryAnswersOnPremiseWithTheServiceUrls) {
  EXPECT_EQ(Get(kDiscovery).status, 200);
  const std::string request = Request(2);
  HttpResponse r = Post(kDiscovery, request);
  ASSERT_TRUE(IsSoapOk(r));
  auto discovered = enroll::ParseDiscoverResponse(r.body);
  ASSERT_TRUE(discovered.ok()) << discovered.error().ToString() << "\n" << r.body;
  EXPECT_EQ(discovered->auth_policy, "OnPremise");
  EXPECT_EQ(discovered->enrollment_version, "4.0");
  EXPECT_EQ(discovered->policy_url, server_->BaseUrl() + kPolicy);
  EXPECT_EQ(discovered->enrollment_url, server_->BaseUrl() + kEnrollment);
  EXPECT_TRUE(discovered->authentication_url.empty());
  auto answer = soap::Message::Parse(r.body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->addressing().relates_to, MessageIdOf(request));
}

TEST_P(Mde2GoldenTest, GetPoliciesAnswersTheDevicePolicy) {
  const std::string request = SignedInRequest(3);
  HttpResponse r = Post(kPolicy, request);
  ASSERT_TRUE(IsSoapOk(r));
  auto policy = enroll::ParseGetPoliciesResponse(r.body);
  ASSERT_TRUE(policy.ok()) << policy.error().ToString() << "\n" << r.body;
  EXPECT_EQ(policy->minimal_key_length, 2048);
  EXPECT_EQ(policy->hash_oid, kSha256Oid);
  auto answer = soap::Message::Parse(r.body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->addressing().relates_to, MessageIdOf(request));
}

TEST_P(Mde2GoldenTest, EnrollsTheRealWindowsRequest) {
  const std::string request = SignedInRequest(4);
  HttpResponse r = Post(kEnrollment, request);
  ASSERT_TRUE(IsSoapOk(r));
  auto answer = soap::Message::Parse(r.body);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->addressing().relates_to, MessageIdOf(request));
  auto doc_xml = enroll::ParseRstResponse(r.body);
  ASSERT_TRUE(doc_xml.ok()) << doc_xml.error().ToString();
  auto doc = enroll::ParseProvisioningDoc(*doc_xml);
  ASSERT_TRUE(doc.ok()) << doc.error().ToString() << "\n" << *doc_xml;

  EXPECT_TRUE(
      pki::VerifyCertificate(doc->device_cert_pem, server_->ca_cert_pem(), clock_.Now()).ok());
  auto cert = pki::ParseCertificate(doc->device_cert_pem);
  ASSERT_TRUE(cert.ok());
  // The CSR's subject is "<hex>!<DeviceID>\0"; the certificate names the DeviceID alone.
  EXPECT_EQ(cert->subject_cn, GetParam().device_id);
  EXPECT_EQ(doc->device_cert_store, "User");
  EXPECT_EQ(doc->management_url, server_->BaseUrl() + kMdm);
  EXPECT_EQ(doc->provider_id, "dmserver");
  ASSERT_EQ(doc->root_anchors_pem.size(), 1u);
  EXPECT_EQ(doc->root_anchors_pem[0], server_->ca_cert_pem());

  auto device = Stored(GetParam().device_id);
  ASSERT_TRUE(device.has_value());
  EXPECT_EQ(device->tenant_id, fabrikam_id_);
  EXPECT_EQ(device->hw_dev_id, kFixtureHwDevId);
  EXPECT_EQ(device->enrollment_type, "Full");
  EXPECT_EQ(device->enrolled_upn, GetParam().upn);
  EXPECT_EQ(device->cert_serial, cert->serial_hex);
  EXPECT_TRUE(device->enrolled);
}

INSTANTIATE_TEST_SUITE_P(Mde2FleetPoc, Mde2GoldenTest, ::testing::ValuesIn(kGoldenDevices),
                         [](const auto& p) { return std::string(p.param.name); });

// The ngrok device as it was: "demio" is no user, whatever its password.
TEST_F(Mde2Test, TheNgrokDevicesOwnUsernameIsRefused) {
  AddUser("Fabrikam", "demo@fleetdm.ngrok.io", "demo");
  EXPECT_TRUE(
      IsFault(Post(kPolicy, enroll::MsMde2Fixture("fleet-poc-ngrok/ngrok-03-req-body.min.xml")),
              401, "authentication"));
  EXPECT_TRUE(
      IsFault(Post(kEnrollment, enroll::MsMde2Fixture("fleet-poc-ngrok/ngrok-04-req-body.min.xml")),
              401, "authentication"));
  EXPECT_FALSE(Stored("B5B954E81FBCB94EB79BD08BE625F4EE").has_value());
}

// ---- faults: malformed and hostile requests ----

struct BadRequest {
  std::string what;
  std::string body;
  int status;
  std::string subcode;
};

// What can be wrong with any SOAP request, made from a valid one.
std::vector<BadRequest> MalformedVariants(const std::string& valid) {
  const std::string envelope_open =
      "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>";
  const std::string envelope_close = "</s:Body></s:Envelope>";
  auto nested = [&](int depth) {
    std::string xml = envelope_open;
    for (int i = 0; i < depth; ++i) xml += "<d>";
    for (int i = 0; i < depth; ++i) xml += "</d>";
    return xml + envelope_close;
  };
  const std::string action = Between(valid, "<a:Action s:mustUnderstand=\"1\">", "</a:Action>");
  EXPECT_FALSE(action.empty());
  return {
      {"empty body", "", 400, "messageformat"},
      {"not XML", "this is not <XML", 400, "messageformat"},
      {"truncated", valid.substr(0, valid.size() / 2), 400, "messageformat"},
      {"not a SOAP envelope",
       "<Envelope xmlns=\"urn:not-soap\"><Body><Discover/></Body></Envelope>", 400,
       "messageformat"},
      {"no Body", Replaced(Replaced(valid, "<s:Body", "<s:Bogus"), "</s:Body>", "</s:Bogus>"), 400,
       "messageformat"},
      {"wrong action", Replaced(valid, ">" + action + "<", ">urn:wrong-action<"), 400,
       "messageformat"},
      {"two elements in Body", Replaced(valid, "</s:Body>", "<Extra xmlns=\"urn:x\"/></s:Body>"),
       400, "messageformat"},
      {"empty Body", envelope_open + envelope_close, 400, "messageformat"},
      {"2 MB body", Replaced(valid, "</s:Body>", std::string(2 << 20, ' ') + "</s:Body>"), 400,
       "messageformat"},
      {"nested past the SOAP limit", nested(40), 400, "messageformat"},
      {"nested past the XML parser's limit", nested(5000), 400, "messageformat"},
  };
}

class Mde2FaultTest : public Mde2Test {
 protected:
  void SetUp() override {
    Mde2Test::SetUp();
    // The readme device's credentials are good: every refusal below is the message's fault.
    AddUser("Fabrikam", "demo@mdmwindows.com", "demo");
  }
  static std::string Readme(int n) {
    return enroll::MsMde2Fixture("fleet-poc-readme/readme-0" + std::to_string(n) +
                                 "-req-body.min.xml");
  }
  void ExpectFaults(const std::string& path, const std::vector<BadRequest>& cases) {
    for (const BadRequest& c : cases) {
      EXPECT_TRUE(IsFault(RoutePost(path, c.body), c.status, c.subcode)) << path << ": " << c.what;
    }
  }
  void ExpectNothingStored() {
    auto lock = server_->store().Lock();
    auto devices = server_->store().Devices();
    ASSERT_TRUE(devices.ok());
    EXPECT_TRUE(devices->empty()) << (*devices)[0].dev_id;
  }
};

TEST_F(Mde2FaultTest, MalformedRequestsGetFaultsAtEveryEndpoint) {
  ExpectFaults(kDiscovery, MalformedVariants(Readme(2)));
  ExpectFaults(kPolicy, MalformedVariants(Readme(3)));
  ExpectFaults(kEnrollment, MalformedVariants(Readme(4)));
  // Each endpoint wants its own request.
  EXPECT_TRUE(IsFault(RoutePost(kDiscovery, Readme(3)), 400, "messageformat"));
  EXPECT_TRUE(IsFault(RoutePost(kPolicy, Readme(4)), 400, "messageformat"));
  EXPECT_TRUE(IsFault(RoutePost(kEnrollment, Readme(2)), 400, "messageformat"));
  ExpectNothingStored();
  // The valid requests themselves still work.
  EXPECT_TRUE(IsSoapOk(RoutePost(kDiscovery, Readme(2))));
  EXPECT_TRUE(IsSoapOk(RoutePost(kPolicy, Readme(3))));
}

TEST_F(Mde2FaultTest, BadEnrollmentContentIsRefusedAndNothingIsStored) {
  const std::string valid = Readme(4);
  const std::string csr_b64 = CsrOf(valid);
  ASSERT_FALSE(csr_b64.empty());
  const std::string device_item =
      "<ac:ContextItem Name=\"DeviceID\"><ac:Value>1E08C6E95D8BB843B1278FF45BC60CC6</ac:Value>";
  auto with_device_id = [&](const std::string& id) {
    return Replaced(valid, device_item,
                    "<ac:ContextItem Name=\"DeviceID\"><ac:Value>" + id + "</ac:Value>");
  };
  const std::vector<BadRequest> cases = {
      {"CSR not base64", Replaced(valid, csr_b64, "!!not*base64!!"), 400, "messageformat"},
      {"CSR empty", Replaced(valid, csr_b64, ""), 400, "messageformat"},
      {"CSR base64 of garbage",
       Replaced(valid, csr_b64,
                crypto::Base64Encode(crypto::AsBytes("not a PKCS#10 request at all"))),
       400, "certificaterequest"},
      {"CSR signature does not verify", WithForgedCsrSignature(valid), 400, "certificaterequest"},
      {"DeviceID with a slash", with_device_id("1E08C6E9/../5D8B"), 400, "messageformat"},
      {"DeviceID with a space", with_device_id("1E08 C6E9"), 400, "messageformat"},
      {"DeviceID with markup", with_device_id("1E08&lt;b&gt;"), 400, "messageformat"},
      {"DeviceID too long", with_device_id(std::string(65, 'A')), 400, "messageformat"},
      {"DeviceID missing",
       Replaced(valid, device_item, "<ac:ContextItem Name=\"Other\"><ac:Value>x"), 400,
       "messageformat"},
      {"HWDevID not hex", Replaced(valid, kFixtureHwDevId, "NOT-HEX!"), 400, "messageformat"},
      {"EnrollmentType Bogus",
       Replaced(valid, "<ac:Value>Full</ac:Value>", "<ac:Value>Bogus</ac:Value>"), 400,
       "messageformat"},
      {"TokenType other",
       Replaced(valid, "Enrollment/DeviceEnrollmentToken</wst:TokenType>",
                "Enrollment/Other</wst:TokenType>"),
       400, "messageformat"},
      {"no credentials",
       Replaced(valid, Between(valid, "<wsse:Security", "</wsse:Security>"),
                " s:mustUnderstand=\"1\">"),
       401, "authentication"},
      {"wrong password", Replaced(valid, ">demo</wsse:Password>", ">demo2</wsse:Password>"), 401,
       "authentication"},
  };
  ExpectFaults(kEnrollment, cases);
  ExpectNothingStored();
  // The unmodified request enrolls.
  EXPECT_TRUE(IsSoapOk(RoutePost(kEnrollment, valid)));
}

TEST_F(Mde2FaultTest, PolicyAndDiscoveryRefuseWhatTheyCannotServe) {
  const std::string policy = Readme(3);
  EXPECT_TRUE(
      IsFault(RoutePost(kPolicy, Replaced(policy, ">demo</wsse:Password>", ">x</wsse:Password>")),
              401, "authentication"));
  EXPECT_TRUE(IsFault(RoutePost(kPolicy, Replaced(policy, "#PasswordText", "#PasswordDigest")), 401,
                      "authentication"));
  const std::string discover = Readme(2);
  EXPECT_TRUE(
      IsFault(RoutePost(kDiscovery, Replaced(discover, "demo@mdmwindows.com", "no-at-sign")), 400,
              "messageformat"));
  // A managed tenant's device must offer OnPremise.
  EXPECT_TRUE(
      IsFault(RoutePost(kDiscovery, Replaced(discover, "<AuthPolicy>OnPremise</AuthPolicy>", "")),
              400, "authorization"));
}

// ---- re-enrolling an enrolled DeviceID ----

TEST_F(Mde2Test, ReEnrollingAnEnrolledDeviceNeedsItsCurrentCertificate) {
  DeviceCert x = Enroll(BulkToken(bulk_token_), "DEV-X");
  const std::string first_serial = StoredSerial("DEV-X");
  EXPECT_EQ(first_serial, x.serial);
  EXPECT_EQ(ManagementStatus(x), 200);

  // Anyone with the tenant's credentials but without X's key: 409, X keeps its certificate.
  RstOutcome stranger = RequestCert(BulkToken(bulk_token_), "DEV-X");
  EXPECT_TRUE(IsFault(stranger.http, 409, "authorization"));
  EXPECT_EQ(StoredSerial("DEV-X"), first_serial);
  EXPECT_EQ(ManagementStatus(x), 200);

  // X itself, over mutual TLS with its current certificate: a new certificate replaces it.
  auto as_x = Client(x);
  DeviceCert renewed = Enroll(BulkToken(bulk_token_), "DEV-X", as_x.get());
  EXPECT_NE(renewed.serial, first_serial);
  EXPECT_EQ(StoredSerial("DEV-X"), renewed.serial);
  EXPECT_EQ(ManagementStatus(x), kRefusedByTls);  // superseded: revoked
  EXPECT_EQ(ManagementStatus(renewed), 200);
  // The superseded certificate does not get through the TLS handshake to prove the key.
  EXPECT_FALSE(Client(x)->PostOnce(kEnrollment, "", kSoapContentType).ok());

  // Retired by the admin, the DeviceID is free again.
  AdminApi("device.retire", {{"tenant", "Fabrikam"}, {"device", "DEV-X"}});
  EXPECT_EQ(ManagementStatus(renewed), kRefusedByTls);
  DeviceCert fresh = Enroll(BulkToken(bulk_token_), "DEV-X");
  EXPECT_EQ(StoredSerial("DEV-X"), fresh.serial);
  EXPECT_EQ(ManagementStatus(fresh), 200);
}

// A retire from the admin CLI (another process, the same database) reaches the TLS layer
// through the server's poll; the CRL is rebuilt from the store at start, so a restart keeps
// the certificate refused; other devices are unaffected; the CRL is served at /pki/crl.pem.
TEST_F(Mde2Test, RetireFromTheCliRevokesAtTlsAndSurvivesARestart) {
  DeviceCert x = Enroll(BulkToken(bulk_token_), "DEV-X");
  DeviceCert y = Enroll(BulkToken(bulk_token_), "DEV-Y");
  ASSERT_EQ(ManagementStatus(x), 200);
  const std::string empty_crl = Get("/pki/crl.pem").body;
  EXPECT_EQ(empty_crl.rfind("-----BEGIN X509 CRL-----", 0), 0u) << empty_crl;

  ServerOptions options = testing::TestServerOptions(dir_ / "state");
  {
    auto cli = OpenStore(options);
    ASSERT_TRUE(cli.ok()) << cli.error().ToString();
    auto retired = RunAdmin(**cli, "device.retire", {{"device", "DEV-X"}});
    ASSERT_TRUE(retired.ok()) << retired.error().ToString();
  }
  int status = 0;
  for (int i = 0; i < 200 && (status = ManagementStatus(x)) != kRefusedByTls; ++i) {
    EXPECT_EQ(status, 403);  // until the poll, the application layer refuses it
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, kRefusedByTls);
  EXPECT_EQ(ManagementStatus(y), 200);
  EXPECT_NE(Get("/pki/crl.pem").body, empty_crl);

  server_.reset();
  options.clock = &clock_;
  options.revocation_poll = std::chrono::hours(1);  // only the start's CRL counts here
  auto restarted = DmServer::Start(options);
  ASSERT_TRUE(restarted.ok()) << restarted.error().ToString();
  server_ = std::move(*restarted);
  EXPECT_EQ(ManagementStatus(x), kRefusedByTls);
  EXPECT_EQ(ManagementStatus(y), 200);
}

TEST_F(Mde2Test, AnotherTenantCannotTakeAnEnrolledDevice) {
  json contoso = AdminOk("tenant.add", {{"name", "Contoso"}});
  const std::string contoso_token = contoso.at("enrollment_token").get<std::string>();
  DeviceCert x = Enroll(BulkToken(bulk_token_), "DEV-X");
  DeviceCert y = Enroll(BulkToken(contoso_token), "DEV-Y");

  // Contoso's device, presenting its own certificate.
  EXPECT_TRUE(IsFault(RequestCert(BulkToken(contoso_token), "DEV-X", Client(y).get()).http, 409,
                      "authorization"));
  // Nor does X's own key move X to Contoso.
  EXPECT_TRUE(IsFault(RequestCert(BulkToken(contoso_token), "DEV-X", Client(x).get()).http, 409,
                      "authorization"));
  auto stored = Stored("DEV-X");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->tenant_id, fabrikam_id_);
  EXPECT_EQ(stored->cert_serial, x.serial);
  EXPECT_EQ(ManagementStatus(x), 200);
}

// ---- Federated: the IdP's sign-in and its single-use user tokens ----

class Mde2FederatedTest : public Mde2Test {
 protected:
  static constexpr char kUpn[] = "dan@contoso.test";
  static constexpr char kPassword[] = "dan-pw";

  void SetUp() override {
    Mde2Test::SetUp();
    json contoso = AdminOk("tenant.add", {{"name", "Contoso"}, {"federated", true}});
    contoso_id_ = contoso.at("id").get<std::string>();
    AddUser("Contoso", kUpn, kPassword);
  }

  HttpResponse Idp(const std::string& method, const std::string& target,
                   const std::string& form = "") {
    return Route(method, "idp.fabrikam.test", target, form, "application/x-www-form-urlencoded");
  }
  // A fresh TOTP step for every sign-in: a step once accepted is never accepted again.
  std::string NextTotp() {
    clock_.Advance(std::chrono::seconds(30));
    auto secret = crypto::Base32Decode(kTotpBase32);
    auto code = crypto::Totp(*secret, clock_.Now());
    return code.ok() ? *code : "";
  }
  HttpResponse SignIn(const std::string& appru, const std::string& otp,
                      const std::string& password = kPassword) {
    return Idp("POST", "/adfs/ls/",
               "username=dan%40contoso.test&password=" + UrlEncode(password) + "&otp=" + otp +
                   "&appru=" + UrlEncode(appru));
  }
  // The signed user token the IdP hands back (the hidden wresult of its answer page).
  std::string UserTokenFromIdp() {
    HttpResponse r = SignIn(kCallback, NextTotp());
    EXPECT_EQ(r.status, 200) << r.body;
    std::string token = Between(r.body, "name=\"wresult\" value=\"", "\"");
    EXPECT_TRUE(crypto::LooksLikeJwt(token)) << r.body;
    return token;
  }

  std::string contoso_id_;
};

TEST_F(Mde2FederatedTest, DiscoveryNamesTheIdp) {
  HttpResponse r = Post(kDiscovery, DiscoverBody(kUpn));
  ASSERT_TRUE(IsSoapOk(r));
  auto discovered = enroll::ParseDiscoverResponse(r.body);
  ASSERT_TRUE(discovered.ok()) << discovered.error().ToString();
  EXPECT_EQ(discovered->auth_policy, "Federated");
  EXPECT_EQ(discovered->authentication_url, server_->IdpBaseUrl() + "/adfs/ls/");
  EXPECT_EQ(discovered->enrollment_url, server_->BaseUrl() + kEnrollment);
  // However the user types the address.
  auto shouted =
      enroll::ParseDiscoverResponse(Post(kDiscovery, DiscoverBody("DAN@Contoso.TEST")).body);
  ASSERT_TRUE(shouted.ok()) << shouted.error().ToString();
  EXPECT_EQ(shouted->auth_policy, "Federated");
  // An unknown user of the domain gets the same answer: Discovery does not tell who exists.
  HttpResponse unknown = Post(kDiscovery, DiscoverBody("nobody@contoso.test"));
  ASSERT_TRUE(IsSoapOk(unknown));
  EXPECT_EQ(unknown.body, r.body);
  // A device that cannot do Federated is told so.
  EXPECT_TRUE(IsFault(
      Post(kDiscovery, Replaced(DiscoverBody(kUpn), "<AuthPolicy>Federated</AuthPolicy>", "")), 400,
      "authorization"));
}

TEST_F(Mde2FederatedTest, ThePasswordAloneIsRefused) {
  const enroll::Credential cred = Password(kUpn, kPassword);
  EXPECT_TRUE(IsFault(Post(kPolicy, GetPoliciesBody(cred)), 401, "authentication"));
  EXPECT_TRUE(IsFault(RequestCert(cred, DeviceInfo("DEV-F", kUpn)).http, 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-F").has_value());
}

TEST_F(Mde2FederatedTest, TheIdpPageCarriesTheCallbackAndAnswersWithAToken) {
  HttpResponse page =
      Idp("GET", "/adfs/ls/?appru=ms-app%3A%2F%2Fwindows.immersivecontrolpanel&login_hint=" +
                     UrlEncode(kUpn));
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.body.find("<form method=\"post\" action=\"/adfs/ls/\">"), std::string::npos);
  EXPECT_NE(
      page.body.find("type=\"hidden\" name=\"appru\" value=\"" + std::string(kCallback) + "\""),
      std::string::npos)
      << page.body;
  EXPECT_NE(page.body.find("value=\"dan@contoso.test\""), std::string::npos);

  // A wrong one-time code or password gets no token.
  const std::string code = NextTotp();
  const std::string wrong_code = code == "000000" ? "000001" : "000000";
  HttpResponse bad_otp = SignIn(kCallback, wrong_code);
  EXPECT_EQ(bad_otp.status, 401);
  EXPECT_EQ(bad_otp.body.find("wresult"), std::string::npos);
  EXPECT_EQ(SignIn(kCallback, code, "wrong").status, 401);

  HttpResponse signed_in = SignIn(kCallback, code);
  ASSERT_EQ(signed_in.status, 200) << signed_in.body;
  EXPECT_NE(signed_in.body.find("action=\"" + std::string(kCallback) + "\""), std::string::npos);
  const std::string token = Between(signed_in.body, "name=\"wresult\" value=\"", "\"");
  ASSERT_TRUE(crypto::LooksLikeJwt(token)) << signed_in.body;
}

TEST_F(Mde2FederatedTest, OnlyWindowsCallbacksAreServed) {
  for (const std::string& evil :
       std::vector<std::string>{"https://evil.test", "https://evil.test/ms-app://x",
                                "ms-app://x\"><script>", "javascript:alert(1)"}) {
    HttpResponse get = Idp("GET", "/adfs/ls/?appru=" + UrlEncode(evil) + "&login_hint=dan");
    EXPECT_EQ(get.status, 400) << evil;
    EXPECT_EQ(get.body.find(evil), std::string::npos) << evil;
    HttpResponse post = SignIn(evil, NextTotp());
    EXPECT_EQ(post.status, 400) << evil;
    EXPECT_EQ(post.body.find("wresult"), std::string::npos) << evil;
  }
}

TEST_F(Mde2FederatedTest, TheUserTokenEnrollsOnce) {
  const std::string token = UserTokenFromIdp();
  const enroll::Credential cred = UserToken(token);
  // GetPolicies does not use it up; the enrollment does.
  EXPECT_TRUE(IsSoapOk(Post(kPolicy, GetPoliciesBody(cred))));
  DeviceCert d = Enroll(cred, "DEV-F1");
  auto stored = Stored("DEV-F1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->tenant_id, contoso_id_);
  EXPECT_EQ(stored->enrolled_upn, kUpn);
  EXPECT_EQ(ManagementStatus(d), 200);

  EXPECT_TRUE(IsFault(RequestCert(cred, "DEV-F2").http, 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-F2").has_value());
  // The JWT ValueType is the same token.
  enroll::Credential as_jwt = UserToken(token);
  as_jwt.value_type = enroll::kJwtTokenType;
  EXPECT_TRUE(IsFault(RequestCert(as_jwt, "DEV-F2").http, 401, "authentication"));
  enroll::Credential fresh = UserToken(UserTokenFromIdp());
  fresh.value_type = enroll::kJwtTokenType;
  Enroll(fresh, "DEV-F2");
}

// Only an enrollment that happens spends the token: a refused one leaves it usable.
TEST_F(Mde2FederatedTest, ARefusedEnrollmentDoesNotSpendTheToken) {
  Enroll(BulkToken(bulk_token_), "DEV-TAKEN");
  const enroll::Credential cred = UserToken(UserTokenFromIdp());
  EXPECT_TRUE(IsFault(RequestCert(cred, "DEV-TAKEN").http, 409, "authorization"));
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  const std::string forged =
      WithForgedCsrSignature(RstBody(cred, DeviceInfo("DEV-F"), key->private_pem));
  EXPECT_TRUE(IsFault(Post(kEnrollment, forged), 400, "certificaterequest"));
  EXPECT_FALSE(Stored("DEV-F").has_value());
  Enroll(cred, "DEV-F");
}

TEST_F(Mde2FederatedTest, AnExpiredUserTokenIsRefused) {
  const enroll::Credential cred = UserToken(UserTokenFromIdp());
  clock_.Advance(std::chrono::hours(2));
  EXPECT_TRUE(IsFault(RequestCert(cred, "DEV-F").http, 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-F").has_value());
}

TEST_F(Mde2FederatedTest, ATokenSignedByAnotherKeyIsRefused) {
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  // Same issuer, same claims: only the key differs.
  auto forger = UserTokenSigner::Create(std::move(key->private_pem), server_->IdpBaseUrl());
  ASSERT_TRUE(forger.ok());
  auto forged = forger->Issue(contoso_id_, kUpn, server_->store().Now(), std::chrono::minutes(10),
                              crypto::OsRandom());
  ASSERT_TRUE(forged.ok());
  EXPECT_TRUE(IsFault(RequestCert(UserToken(*forged), "DEV-F").http, 401, "authentication"));
  EXPECT_TRUE(IsFault(Post(kPolicy, GetPoliciesBody(UserToken(*forged))), 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-F").has_value());
}

// ---- the bulk enrollment token ----

TEST_F(Mde2Test, TheBulkTokenRotatesRevokesAndExpires) {
  json rotated = AdminOk("tenant.token", {{"tenant", "Fabrikam"}});
  const std::string second = rotated.at("enrollment_token").get<std::string>();
  EXPECT_NE(second, bulk_token_);
  EXPECT_TRUE(IsFault(RequestCert(BulkToken(bulk_token_), "DEV-1").http, 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-1").has_value());
  Enroll(BulkToken(second), "DEV-1");

  AdminOk("tenant.token", {{"tenant", "Fabrikam"}, {"revoke", true}});
  EXPECT_TRUE(IsFault(RequestCert(BulkToken(second), "DEV-2").http, 401, "authentication"));
  EXPECT_TRUE(IsFault(Post(kPolicy, GetPoliciesBody(BulkToken(second))), 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-2").has_value());

  // A new token is valid for 30 days by default.
  const std::string third =
      AdminOk("tenant.token", {{"tenant", "Fabrikam"}}).at("enrollment_token").get<std::string>();
  clock_.Advance(std::chrono::hours(24 * 30) - std::chrono::minutes(1));
  EXPECT_TRUE(IsSoapOk(RequestCert(BulkToken(third), "DEV-3").http));
  clock_.Advance(std::chrono::minutes(2));
  EXPECT_TRUE(IsFault(RequestCert(BulkToken(third), "DEV-4").http, 401, "authentication"));
  EXPECT_FALSE(Stored("DEV-4").has_value());
}

TEST_F(Mde2Test, TheDocumentCarriesTheEnrollmentTypeAndTheTenantsPollSchedule) {
  AdminOk("tenant.poll", {{"tenant", "Fabrikam"},
                          {"first_interval", 2},
                          {"first_count", 7},
                          {"second_interval", 11},
                          {"second_count", 3},
                          {"remaining_interval", 240}});
  enroll::DeviceContext dc = DeviceInfo("DEV-KIOSK");
  dc.enrollment_type = "Device";
  RstOutcome out = RequestCert(BulkToken(bulk_token_), dc);
  ASSERT_TRUE(IsSoapOk(out.http));
  EXPECT_EQ(out.doc.device_cert_store, "System");
  EXPECT_EQ(out.doc.name, "Fabrikam");
  EXPECT_FALSE(out.doc.poll_defaulted);
  EXPECT_EQ(out.doc.poll.interval_first_min, 2);
  EXPECT_EQ(out.doc.poll.count_first, 7);
  EXPECT_EQ(out.doc.poll.interval_second_min, 11);
  EXPECT_EQ(out.doc.poll.count_second, 3);
  EXPECT_EQ(out.doc.poll.interval_remaining_min, 240);
  auto stored = Stored("DEV-KIOSK");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->enrollment_type, "Device");
  EXPECT_EQ(stored->enrolled_upn, "");
}

// ---- enterpriseenrollment.<domain> ----

TEST_F(Mde2Test, TheEnterpriseEnrollmentHostServesTheEnrollmentServiceOnly) {
  AddUser("Fabrikam", "demo@mdmwindows.com", "demo");
  // As Windows writes it (a:To of the real Discover): mixed case, with the port.
  const std::string host = "EnterpriseEnrollment.fabrikam.test:443";
  EXPECT_EQ(Route("GET", host, kDiscovery).status, 200);
  HttpResponse discovered =
      Route("POST", host, kDiscovery,
            enroll::MsMde2Fixture("fleet-poc-readme/readme-02-req-body.min.xml"));
  ASSERT_TRUE(IsSoapOk(discovered));
  EXPECT_TRUE(enroll::ParseDiscoverResponse(discovered.body).ok());
  EXPECT_TRUE(
      IsSoapOk(Route("POST", host, kPolicy,
                     enroll::MsMde2Fixture("fleet-poc-readme/readme-03-req-body.min.xml"))));
  EXPECT_TRUE(
      IsSoapOk(Route("POST", host, kEnrollment,
                     enroll::MsMde2Fixture("fleet-poc-readme/readme-04-req-body.min.xml"))));

  for (const char* other :
       {kMdm, "/PinReset/publickey", "/PinReset/recover", "/login",
        "/federation/login?upn=demo@mdmwindows.com", "/admin/v1/report",
        "/EnrollmentServer/hello-certificate", "/adfs/ls/", "/EnrollmentServer/Discovery.svcx"}) {
    EXPECT_EQ(Route("POST", host, other).status, 404) << other;
    EXPECT_EQ(Route("GET", host, other).status, 404) << other;
  }
  // The main host serves the management endpoint (it wants a client certificate).
  EXPECT_EQ(Route("POST", "127.0.0.1", kMdm).status, 401);
}

// ---- UserTokenSigner ----

class UserTokenSignerTest : public ::testing::Test {
 protected:
  static constexpr char kIssuer[] = "https://idp.fabrikam.test:8443";
  static constexpr int64_t kNow = 1'800'000'000;

  void SetUp() override {
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    key_ = std::move(key->private_pem);
    auto signer = UserTokenSigner::Create(key_.Clone(), kIssuer);
    ASSERT_TRUE(signer.ok()) << signer.error().ToString();
    signer_.emplace(std::move(*signer));
  }

  static std::string B64(const json& j) {
    return crypto::Base64UrlEncode(crypto::AsBytes(j.dump()));
  }
  // A compact JWS of `claims` under `header`, signed with our key.
  std::string Sign(const json& header, const json& claims) const {
    const std::string input = B64(header) + "." + B64(claims);
    auto der = crypto::EcdsaSign(key_, crypto::AsBytes(input));
    EXPECT_TRUE(der.ok());
    auto raw = crypto::EcdsaDerToRaw(*der);
    EXPECT_TRUE(raw.ok());
    return input + "." + crypto::Base64UrlEncode(*raw);
  }
  static json Es256() { return {{"alg", "ES256"}, {"typ", "JWT"}}; }
  static json Claims(int64_t lifetime = 600) {
    return {{"iss", kIssuer}, {"aud", "tenant-1"},      {"sub", "dan@contoso.test"},
            {"iat", kNow},    {"exp", kNow + lifetime}, {"jti", "0123456789abcdef"}};
  }
  std::string Issue(std::chrono::seconds lifetime = std::chrono::minutes(10)) const {
    auto token = signer_->Issue("tenant-1", "dan@contoso.test", kNow, lifetime, crypto::OsRandom());
    EXPECT_TRUE(token.ok()) << token.error().ToString();
    return token.ok() ? *token : "";
  }
  ::testing::AssertionResult Refused(std::string_view token, int64_t at = kNow) const {
    auto claims = signer_->Verify(token, at);
    if (claims.ok()) return ::testing::AssertionFailure() << "accepted: " << token;
    if (claims.error().code() != Code::kUnauthenticated) {
      return ::testing::AssertionFailure() << "refused with " << claims.error().ToString();
    }
    return ::testing::AssertionSuccess() << claims.error().message();
  }

  SecretBytes key_;
  std::optional<UserTokenSigner> signer_;
};

TEST_F(UserTokenSignerTest, IssuedTokensVerifyWithTheirClaims) {
  const std::string token = Issue();
  ASSERT_TRUE(crypto::LooksLikeJwt(token));
  auto claims = signer_->Verify(token, kNow + 60);
  ASSERT_TRUE(claims.ok()) << claims.error().ToString();
  EXPECT_EQ(claims->issuer, kIssuer);
  EXPECT_EQ(claims->tenant_id, "tenant-1");
  EXPECT_EQ(claims->upn, "dan@contoso.test");
  EXPECT_EQ(claims->issued_at, kNow);
  EXPECT_EQ(claims->expires_at, kNow + 600);
  EXPECT_EQ(claims->jti.size(), 32u);
  EXPECT_NE(signer_->Verify(Issue(), kNow)->jti, claims->jti);
  EXPECT_TRUE(signer_->Verify(Sign(Es256(), Claims()), kNow).ok());
}

TEST_F(UserTokenSignerTest, LifetimeIsCappedAtAnHour) {
  auto claims = signer_->Verify(Issue(std::chrono::hours(5)), kNow);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->expires_at - claims->issued_at, 3600);
  EXPECT_TRUE(signer_->Verify(Sign(Es256(), Claims(3600)), kNow).ok());
  EXPECT_TRUE(Refused(Sign(Es256(), Claims(3601))));
}

TEST_F(UserTokenSignerTest, TamperedPayloadIsRefused) {
  const std::string token = Issue();
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  json claims = Claims();
  claims["sub"] = "admin@contoso.test";
  const std::string tampered = token.substr(0, dot1 + 1) + B64(claims) + token.substr(dot2);
  EXPECT_TRUE(Refused(tampered));
  // One flipped signature bit.
  std::string flipped = token;
  flipped[dot2 + 5] = flipped[dot2 + 5] == 'A' ? 'B' : 'A';
  EXPECT_TRUE(Refused(flipped));
}

TEST_F(UserTokenSignerTest, AlgNoneAndOtherAlgorithmsAreRefused) {
  const std::string body = B64({{"alg", "none"}}) + "." + B64(Claims());
  EXPECT_TRUE(Refused(body + "."));
  // None with a signature that would verify over the same input.
  const std::string es256 = Sign({{"alg", "none"}}, Claims());
  EXPECT_TRUE(Refused(es256));
  EXPECT_TRUE(Refused(Sign({{"alg", "HS256"}}, Claims())));
  EXPECT_TRUE(Refused(Sign({{"typ", "JWT"}}, Claims())));
}

TEST_F(UserTokenSignerTest, AnotherIssuerIsRefused) {
  json claims = Claims();
  claims["iss"] = "https://evil.test";
  EXPECT_TRUE(Refused(Sign(Es256(), claims)));
  // The same key under another issuer name.
  auto other = UserTokenSigner::Create(key_.Clone(), "https://other-idp.test");
  ASSERT_TRUE(other.ok());
  auto token = other->Issue("tenant-1", "dan@contoso.test", kNow, std::chrono::minutes(10),
                            crypto::OsRandom());
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE(Refused(*token));
}

TEST_F(UserTokenSignerTest, AnotherKeyIsRefused) {
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  auto other = UserTokenSigner::Create(std::move(key->private_pem), kIssuer);
  ASSERT_TRUE(other.ok());
  auto token = other->Issue("tenant-1", "dan@contoso.test", kNow, std::chrono::minutes(10),
                            crypto::OsRandom());
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE(Refused(*token));
}

TEST_F(UserTokenSignerTest, ExpiredAndNotYetValidTokensAreRefused) {
  const std::string token = Issue(std::chrono::minutes(10));
  // 30 s leeway either side for clocks.
  EXPECT_TRUE(signer_->Verify(token, kNow + 600 + 29).ok());
  EXPECT_TRUE(Refused(token, kNow + 600 + 30));
  EXPECT_TRUE(Refused(token, kNow + 2 * 3600));
  EXPECT_TRUE(signer_->Verify(token, kNow - 29).ok());
  EXPECT_TRUE(Refused(token, kNow - 31));
}

TEST_F(UserTokenSignerTest, MalformedTokensAndMissingClaimsAreRefused) {
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "a.b", "a.b.c.d", "a.b.c", "not a token", "e30.e30.",
                                std::string(10000, 'a') + ".b.c"}) {
    EXPECT_TRUE(Refused(bad)) << bad.substr(0, 40);
  }
  for (const char* claim : {"iss", "aud", "sub", "iat", "exp", "jti"}) {
    json claims = Claims();
    claims.erase(claim);
    EXPECT_TRUE(Refused(Sign(Es256(), claims))) << claim;
  }
  json wrong_type = Claims();
  wrong_type["exp"] = "tomorrow";
  EXPECT_TRUE(Refused(Sign(Es256(), wrong_type)));
  json nobody = Claims();
  nobody["sub"] = "";
  EXPECT_TRUE(Refused(Sign(Es256(), nobody)));
  // A signer needs an EC key.
  EXPECT_FALSE(UserTokenSigner::Create(SecretBytes(std::string_view("not a key")), kIssuer).ok());
}

// ---- BuildProvisioningDoc ----

class ProvisioningDocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const TimePoint now = Clock::System().Now();
    auto ca = pki::CreateCa("Test CA", now - std::chrono::hours(1), std::chrono::hours(24));
    ASSERT_TRUE(ca.ok());
    ca_ = std::move(*ca);
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    pki::IssueOptions issue;
    issue.common_name = "DEV-1";
    issue.not_before = now - std::chrono::minutes(5);
    issue.client_auth = true;
    auto cert = pki::IssueForPublicKey(ca_, key->public_pem, issue);
    ASSERT_TRUE(cert.ok());
    params_ =
        ProvisioningParams{.ca_cert_pem = ca_.cert_pem,
                           .device_cert_pem = *cert,
                           .enrollment_type = "Device",
                           .management_url = "https://mdm.fabrikam.test/ManagementServer/MDM.svc",
                           .renew_url = "https://mdm.fabrikam.test/EnrollmentServer/Enrollment.svc",
                           .name = "Fabrikam",
                           .poll = PollSchedule{.first_interval_min = 2,
                                                .first_count = 7,
                                                .second_interval_min = 11,
                                                .second_count = 3,
                                                .remaining_interval_min = 240}};
  }

  static const tinyxml2::XMLElement* Characteristic(const tinyxml2::XMLElement* parent,
                                                    std::string_view type) {
    for (auto* c = parent ? parent->FirstChildElement("characteristic") : nullptr; c;
         c = c->NextSiblingElement("characteristic")) {
      if (c->Attribute("type", std::string(type).c_str())) return c;
    }
    return nullptr;
  }
  static std::map<std::string, std::string> Parms(const tinyxml2::XMLElement* c) {
    std::map<std::string, std::string> out;
    for (auto* p = c ? c->FirstChildElement("parm") : nullptr; p;
         p = p->NextSiblingElement("parm")) {
      out[p->Attribute("name") ? p->Attribute("name") : ""] =
          p->Attribute("value") ? p->Attribute("value") : "";
    }
    return out;
  }

  pki::CertificateAuthority ca_;
  ProvisioningParams params_;
};

TEST_F(ProvisioningDocTest, DeviceEnrollmentDocumentParses) {
  auto xml = BuildProvisioningDoc(params_);
  ASSERT_TRUE(xml.ok()) << xml.error().ToString();
  auto doc = enroll::ParseProvisioningDoc(*xml);
  ASSERT_TRUE(doc.ok()) << doc.error().ToString() << "\n" << *xml;
  EXPECT_EQ(doc->device_cert_store, "System");
  auto cert = pki::ParseCertificate(doc->device_cert_pem);
  auto expected = pki::ParseCertificate(params_.device_cert_pem);
  ASSERT_TRUE(cert.ok() && expected.ok());
  EXPECT_EQ(cert->thumbprint, expected->thumbprint);
  ASSERT_EQ(doc->root_anchors_pem.size(), 1u);
  EXPECT_EQ(doc->root_anchors_pem[0], ca_.cert_pem);
  EXPECT_EQ(doc->management_url, params_.management_url);
  EXPECT_EQ(doc->provider_id, kProviderId);
  EXPECT_EQ(doc->name, "Fabrikam");
  EXPECT_TRUE(doc->renewal.robo_support);
  EXPECT_EQ(doc->renewal.renew_period_days, 60);
  EXPECT_EQ(doc->renewal.retry_interval_days, 4);
  EXPECT_TRUE(doc->unknown.empty()) << doc->unknown[0];
  EXPECT_FALSE(doc->poll_defaulted);
  EXPECT_EQ(doc->poll.interval_first_min, 2);
  EXPECT_EQ(doc->poll.count_first, 7);
  EXPECT_EQ(doc->poll.interval_second_min, 11);
  EXPECT_EQ(doc->poll.count_second, 3);
  EXPECT_EQ(doc->poll.interval_remaining_min, 240);
  EXPECT_TRUE(doc->poll.poll_on_login);
}

TEST_F(ProvisioningDocTest, PollScheduleIsUnderTheDmserverProvider) {
  auto xml = BuildProvisioningDoc(params_);
  ASSERT_TRUE(xml.ok());
  tinyxml2::XMLDocument parsed;
  ASSERT_EQ(parsed.Parse(xml->c_str()), tinyxml2::XML_SUCCESS);
  const auto* poll = Characteristic(
      Characteristic(Characteristic(Characteristic(parsed.RootElement(), "DMClient"), "Provider"),
                     "dmserver"),
      "Poll");
  ASSERT_NE(poll, nullptr) << *xml;
  auto parms = Parms(poll);
  EXPECT_EQ(parms["IntervalForFirstSetOfRetries"], "2");
  EXPECT_EQ(parms["NumberOfFirstRetries"], "7");
  EXPECT_EQ(parms["IntervalForSecondSetOfRetries"], "11");
  EXPECT_EQ(parms["NumberOfSecondRetries"], "3");
  EXPECT_EQ(parms["IntervalForRemainingScheduledRetries"], "240");
  EXPECT_EQ(parms["NumberOfRemainingScheduledRetries"], "0");
  // The device certificate is in My/System, under its thumbprint.
  auto thumbprint = pki::ParseCertificate(params_.device_cert_pem)->thumbprint;
  EXPECT_NE(Characteristic(
                Characteristic(
                    Characteristic(Characteristic(parsed.RootElement(), "CertificateStore"), "My"),
                    "System"),
                thumbprint),
            nullptr)
      << *xml;
}

TEST_F(ProvisioningDocTest, FullEnrollmentGoesToTheUserStore) {
  params_.enrollment_type = "Full";
  auto xml = BuildProvisioningDoc(params_);
  ASSERT_TRUE(xml.ok());
  auto doc = enroll::ParseProvisioningDoc(*xml);
  ASSERT_TRUE(doc.ok()) << doc.error().ToString();
  EXPECT_EQ(doc->device_cert_store, "User");
}

TEST_F(ProvisioningDocTest, BadInputIsRefused) {
  auto refused = [](const ProvisioningParams& p) {
    auto xml = BuildProvisioningDoc(p);
    return !xml.ok() && xml.error().code() == Code::kInvalidArgument;
  };
  ProvisioningParams bogus = params_;
  bogus.enrollment_type = "Bogus";
  EXPECT_TRUE(refused(bogus));
  ProvisioningParams no_cert = params_;
  no_cert.device_cert_pem = "not a certificate";
  EXPECT_TRUE(refused(no_cert));
  ProvisioningParams no_ca = params_;
  no_ca.ca_cert_pem = "";
  EXPECT_TRUE(refused(no_ca));
}

}  // namespace
}  // namespace dm::server
