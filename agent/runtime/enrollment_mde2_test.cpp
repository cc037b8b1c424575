// EnrollMsMde2 end to end against an in-test MS-MDE2 server on loopback TLS: Discovery, the
// policy, a real CA signing the agent's CSR, the provisioning document applied to the real
// SQLite database; then a management session and the unenrollment alert.
#include <gtest/gtest.h>

#include <stdlib.h>
#include "agent/enroll/fixture_for_tests.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>

#include "agent/enroll/mde2_client.h"
#include "agent/enroll/provisioning_doc.h"
#include "agent/enroll/soap.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/machine_key.h"
#include "agent/runtime/sync.h"
#include "agent/transport/https_server.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "csp/device_facts.h"
#include "csp/dmclient.h"

namespace dm::agent {
namespace {

namespace fs = std::filesystem;
using transport::HttpRequest;
using transport::HttpResponse;
using transport::PeerInfo;

std::string Fixture(const std::string& rel) { return enroll::MsMde2Fixture(rel); }

std::string B64Cert(const std::string& pem) { return pki::PemBase64(pem); }

std::string Soap(const std::string& action, const std::string& body) {
  return "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
         "xmlns:a=\"http://www.w3.org/2005/08/addressing\"><s:Header><a:Action "
         "s:mustUnderstand=\"1\">" +
         action + "</a:Action></s:Header><s:Body>" + body + "</s:Body></s:Envelope>";
}

HttpResponse Answer(int status, std::string ct, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.push_back({"Content-Type", std::move(ct)});
  r.body = std::move(body);
  return r;
}

// A wap-provisioningdoc as the poc server writes it, for `cert_pem` issued by `ca_pem`.
std::string WapDoc(const std::string& ca_pem, const std::string& cert_pem, const std::string& addr,
                   const std::string& store = "User") {
  return "<wap-provisioningdoc version=\"1.1\"><characteristic type=\"CertificateStore\">"
         "<characteristic type=\"Root\"><characteristic type=\"System\"><characteristic "
         "type=\"AB\"><parm name=\"EncodedCertificate\" value=\"" +
         B64Cert(ca_pem) +
         "\"/></characteristic></characteristic></characteristic><characteristic type=\"My\">"
         "<characteristic type=\"" +
         store + "\"><characteristic type=\"CD\"><parm name=\"EncodedCertificate\" value=\"" +
         B64Cert(cert_pem) +
         "\"/></characteristic><characteristic type=\"PrivateKeyContainer\"/></characteristic>"
         "<characteristic type=\"WSTEP\"><characteristic type=\"Renew\"><parm "
         "name=\"RenewPeriod\" value=\"42\"/><parm name=\"RetryInterval\" value=\"4\"/>"
         "</characteristic></characteristic></characteristic></characteristic>"
         "<characteristic type=\"APPLICATION\"><parm name=\"APPID\" value=\"w7\"/><parm "
         "name=\"PROVIDER-ID\" value=\"TEST%20MDM\"/><parm name=\"NAME\" value=\"Test\"/><parm "
         "name=\"ADDR\" value=\"" +
         addr +
         "\"/><characteristic type=\"APPAUTH\"><parm name=\"AAUTHLEVEL\" value=\"CLIENT\"/>"
         "<parm name=\"AAUTHTYPE\" value=\"DIGEST\"/><parm name=\"AAUTHSECRET\" "
         "value=\"s3\"/></characteristic></characteristic><characteristic type=\"DMClient\">"
         "<characteristic type=\"Provider\"><characteristic type=\"TEST MDM\"><characteristic "
         "type=\"Poll\"><parm name=\"IntervalForFirstSetOfRetries\" value=\"0\"/>"
         "</characteristic></characteristic></characteristic></characteristic>"
         "<characteristic type=\"Vendor\"/></wap-provisioningdoc>";
}

// The server: fixture-shaped answers, a real CA behind RequestSecurityToken.
class Mde2Server {
 public:
  enum class Mode { kOk, kEnrollFault, kPolicyHtml, kBadDoc };
  std::string auth_policy = "OnPremise";
  Mode mode = Mode::kOk;
  std::string expected_password = "pw";
  std::string expected_token;  // BinarySecurityToken content the RST must carry (decoded)
  std::string expected_value_type;
  // The management answers: keep the session going forever (a Get in every message), or name
  // a RespURI on another host.
  bool endless_session = false;
  std::string resp_uri;

  pki::CertificateAuthority tls_ca, device_ca;
  std::unique_ptr<transport::HttpsServer> server;
  std::mutex mu;
  std::vector<std::string> rst_bodies, mdm_bodies;
  std::atomic<int> rst_with_client_cert{0};

  void Start() {
    const TimePoint now = Clock::System().Now();
    tls_ca = std::move(
        pki::CreateCa("Test TLS CA", now - std::chrono::hours(1), std::chrono::hours(48)).value());
    device_ca = std::move(
        pki::CreateCa("Test Device CA", now - std::chrono::hours(1), std::chrono::hours(48))
            .value());
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    pki::IssueOptions io;
    io.common_name = "127.0.0.1";
    io.not_before = now - std::chrono::hours(1);
    io.server_auth = true;
    io.ip_addresses = {"127.0.0.1"};
    transport::HttpsServerOptions o;
    o.cert_chain_pem = *pki::IssueForPublicKey(tls_ca, key->public_pem, io);
    o.key_pem = std::move(key->private_pem);
    o.client_cert_mode = transport::ClientCertMode::kOptional;
    o.client_ca_pem = device_ca.cert_pem;
    server = std::move(transport::HttpsServer::Start(std::move(o), [this](const HttpRequest& r,
                                                                          const PeerInfo& p) {
                         return Handle(r, p);
                       }).value());
  }
  std::string Url(const std::string& path) const { return server->BaseUrl() + path; }

  HttpResponse Handle(const HttpRequest& r, const PeerInfo& peer) {
    const std::string path = r.target.substr(0, r.target.find('?'));
    if (path == "/EnrollmentServer/Discovery.svc" && r.method == "GET") {
      return Answer(200, "text/html", "");
    }
    if (path == "/EnrollmentServer/Discovery.svc") {
      std::string extra = auth_policy == "Federated" ? "<AuthenticationServiceUrl>" + Url("/auth") +
                                                           "</AuthenticationServiceUrl>"
                                                     : "";
      return Answer(
          200, "application/soap+xml; charset=utf-8",
          Soap("http://schemas.microsoft.com/windows/management/2012/01/enrollment/"
               "IDiscoveryService/DiscoverResponse",
               "<DiscoverResponse xmlns=\"http://schemas.microsoft.com/windows/management/2012/"
               "01/enrollment\"><DiscoverResult><AuthPolicy>" +
                   auth_policy +
                   "</AuthPolicy><EnrollmentVersion>4.0</EnrollmentVersion>"
                   "<EnrollmentPolicyServiceUrl>" +
                   Url("/api/mdm/microsoft/policy") +
                   "</EnrollmentPolicyServiceUrl><EnrollmentServiceUrl>" +
                   Url("/api/mdm/microsoft/enroll") + "</EnrollmentServiceUrl>" + extra +
                   "</DiscoverResult></DiscoverResponse>"));
    }
    if (path == "/api/mdm/microsoft/policy") {
      if (mode == Mode::kPolicyHtml) return Answer(200, "text/html", "<html>login</html>");
      return Answer(200, "application/soap+xml; charset=utf-8",
                    Fixture("server-answers/03-policy.xml"));
    }
    if (path == "/api/mdm/microsoft/enroll") return Enroll(r, peer);
    if (path == "/auth" && r.method == "GET") {
      std::smatch m;
      std::string hint;
      if (std::regex_search(r.target, m, std::regex("login_hint=([^&]*)"))) hint = m[1].str();
      return Answer(200, "text/html",
                    "<html><body><form method=\"post\" action=\"/auth/submit\">"
                    "<input type=\"text\" name=\"username\" value=\"" +
                        hint +
                        "\"><input type=\"password\" name=\"password\"><input name=\"otp\">"
                        "<input type=\"hidden\" name=\"ctx\" value=\"a&amp;b\"></form>"
                        "</body></html>");
    }
    if (path == "/auth/submit") {
      const bool good = r.body.find("password=fedpw") != std::string::npos &&
                        r.body.find("otp=123456") != std::string::npos &&
                        r.body.find("ctx=a%26b") != std::string::npos &&
                        r.body.find("username=user%40example.test") != std::string::npos;
      if (!good) return Answer(200, "text/html", "<html>wrong password</html>");
      return Answer(200, "text/html",
                    "<html><form method=\"post\" action=\"ms-app://x\"><input type=\"hidden\" "
                    "name=\"wresult\" value=\"FED-TOKEN\"/></form></html>");
    }
    if (path == "/mdm") {
      std::lock_guard lock(mu);
      mdm_bodies.push_back(r.body);
      std::smatch sid, msg;
      std::regex_search(r.body, sid, std::regex("<SessionID>([^<]*)</SessionID>"));
      std::regex_search(r.body, msg, std::regex("<MsgID>([^<]*)</MsgID>"));
      return Answer(200, "application/vnd.syncml.dm+xml",
                    "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>"
                    "DM/1.2</VerProto><SessionID>" +
                        sid[1].str() +
                        "</SessionID><MsgID>1</MsgID><Target><LocURI>dev"
                        "</LocURI></Target><Source><LocURI>" +
                        Url("/mdm") + "</LocURI></Source>" +
                        (resp_uri.empty() ? "" : "<RespURI>" + resp_uri + "</RespURI>") +
                        "</SyncHdr><SyncBody><Status><CmdID>1</CmdID>"
                        "<MsgRef>" +
                        msg[1].str() +
                        "</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>" +
                        (endless_session ? "<Get><CmdID>2</CmdID><Item><Target><LocURI>./DevInfo/"
                                           "DevId</LocURI></Target></Item></Get>"
                                         : "") +
                        "<Final/></SyncBody></SyncML>");
    }
    return Answer(404, "text/plain", "no");
  }

  HttpResponse Enroll(const HttpRequest& r, const PeerInfo& peer) {
    {
      std::lock_guard lock(mu);
      rst_bodies.push_back(r.body);
    }
    if (peer.has_client_cert) ++rst_with_client_cert;
    auto fault = [](const std::string& sub, const std::string& why) {
      return Answer(500, "application/soap+xml; charset=utf-8",
                    soap::BuildFault("s:Receiver", sub, why));
    };
    if (mode == Mode::kEnrollFault) return fault("s:enrollmentserver", "the CA is offline");
    auto msg = soap::Message::Parse(r.body);
    if (!msg.ok()) return fault("s:messageformat", msg.status().message());
    const auto* sec = soap::Child(msg->header(), soap::kWsseNs, "Security");
    if (!expected_token.empty()) {
      const auto* bst = soap::Child(sec, soap::kWsseNs, "BinarySecurityToken");
      auto tok = crypto::Base64Decode(soap::Text(bst));
      if (!bst || !tok.ok() || std::string(tok->begin(), tok->end()) != expected_token ||
          expected_value_type != soap::Attr(bst, "ValueType")) {
        return fault("s:authentication", "bad token");
      }
    } else {
      const auto* ut = soap::Child(sec, soap::kWsseNs, "UsernameToken");
      if (soap::Text(soap::Child(ut, soap::kWsseNs, "Password")) != expected_password) {
        return fault("s:authentication", "wrong password");
      }
    }
    const auto* rst = msg->payload();
    std::string device_id;
    for (const auto* item : soap::Children(soap::Child(rst, soap::kAcNs, "AdditionalContext"),
                                           soap::kAcNs, "ContextItem")) {
      if (std::string_view(soap::Attr(item, "Name")) == "DeviceID") {
        device_id = soap::Text(soap::Child(item, soap::kAcNs, "Value"));
      }
    }
    std::string csr_b64 = soap::Text(soap::Child(rst, soap::kWsseNs, "BinarySecurityToken"));
    std::string csr_pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
    for (size_t i = 0; i < csr_b64.size(); i += 64) csr_pem += csr_b64.substr(i, 64) + "\n";
    csr_pem += "-----END CERTIFICATE REQUEST-----\n";
    pki::IssueOptions io;
    io.common_name = device_id;
    io.not_before = Clock::System().Now() - std::chrono::hours(1);
    io.client_auth = true;
    auto cert = pki::IssueFromCsr(device_ca, csr_pem, io);
    if (!cert.ok()) return fault("s:certificaterequest", cert.status().message());
    std::string doc = mode == Mode::kBadDoc ? "<wap-provisioningdoc><oops"
                                            : WapDoc(device_ca.cert_pem, *cert, Url("/mdm"));
    return Answer(
        200, "application/soap+xml; charset=utf-8",
        Soap("http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep",
             "<RequestSecurityTokenResponseCollection xmlns=\"http://docs.oasis-open.org/ws-sx/"
             "ws-trust/200512\"><RequestSecurityTokenResponse><RequestedSecurityToken>"
             "<BinarySecurityToken xmlns=\"http://docs.oasis-open.org/wss/2004/01/"
             "oasis-200401-wss-wssecurity-secext-1.0.xsd\" ValueType=\"http://schemas.microsoft."
             "com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc\">\n" +
                 crypto::Base64Encode(crypto::AsBytes(doc)) +
                 "\n</BinarySecurityToken></RequestedSecurityToken>"
                 "</RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection>"));
  }
};

class EnrollMde2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "mde2-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    DeviceOptions d;
    d.state_dir = dir_;
    d.pin_kdf = crypto::ScryptParams::ForTests();
    auto dev = Device::Open(std::move(d));
    ASSERT_TRUE(dev.ok()) << dev.status().ToString();
    device_ = std::move(*dev);
    server_.Start();
  }
  void TearDown() override {
    server_.server->Stop();
    device_.reset();
    fs::remove_all(dir_);
  }
  MsMde2EnrollRequest Request() {
    MsMde2EnrollRequest r;
    r.email = "user@example.test";
    r.discovery_url = server_.Url("/EnrollmentServer/Discovery.svc");
    r.ca_bundle_pem = server_.tls_ca.cert_pem;
    r.password = SecretBytes(std::string_view("pw"));
    return r;
  }
  void ExpectUnenrolled() {
    auto s = LoadEnrollment(device_->db());
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->enrolled());
    EXPECT_TRUE(s->device_cert_pem.empty());
    auto providers = csp::ListProviders(device_->db());
    ASSERT_TRUE(providers.ok());
    EXPECT_TRUE(providers->empty());
  }
  fs::path dir_;
  std::unique_ptr<Device> device_;
  Mde2Server server_;
};

TEST_F(EnrollMde2Test, OnPremiseEnrollsAndAppliesTheDocumentInOneGo) {
  ASSERT_TRUE(EnrollMsMde2(*device_, Request()).ok());
  auto s = LoadEnrollment(device_->db());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, "ms-mde2");
  EXPECT_EQ(s->management_url, server_.Url("/mdm"));
  EXPECT_EQ(s->provider_id, "TEST MDM");
  EXPECT_EQ(s->ca_pem, server_.tls_ca.cert_pem);
  EXPECT_FALSE(s->trust_system_store);
  EXPECT_NE(s->anchor_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(s->enrollment_type, "Full");
  EXPECT_EQ(s->hw_dev_id.size(), 64u);
  EXPECT_GT(s->enrolled_at, 0);
  EXPECT_EQ(s->renew_period_days, 42);
  auto info = pki::ParseCertificate(s->device_cert_pem);
  ASSERT_TRUE(info.ok());
  auto dev_id = csp::DeviceId(device_->db());
  EXPECT_EQ(info->subject_cn, *dev_id);
  EXPECT_TRUE(
      pki::VerifyCertificate(s->device_cert_pem, s->anchor_pem, Clock::System().Now()).ok());
  // The key sealed under the machine key pairs with the certificate.
  auto key = LoadDeviceKey(*device_);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*pki::PublicKeyOf(*key), info->public_key_pem);
  // DMClient shows the provider; the zeros of the document became a usable schedule.
  EXPECT_EQ(*csp::ListProviders(device_->db()), std::vector<std::string>{"TEST MDM"});
  auto poll = csp::ReadPollSettings(device_->db(), "TEST MDM");
  ASSERT_TRUE(poll.ok());
  EXPECT_EQ(poll->interval_first_min, 15);
  // The request was a real RST with the UsernameToken and the compact AdditionalContext.
  ASSERT_EQ(server_.rst_bodies.size(), 1u);
  EXPECT_NE(server_.rst_bodies[0].find("<ac:ContextItem Name=\"DeviceID\"><ac:Value>" + *dev_id +
                                       "</ac:Value>"),
            std::string::npos);
  EXPECT_EQ(server_.rst_with_client_cert, 0);
}

TEST_F(EnrollMde2Test, ReEnrollmentPresentsTheCurrentCertificate) {
  ASSERT_TRUE(EnrollMsMde2(*device_, Request()).ok());
  auto first = LoadEnrollment(device_->db());
  ASSERT_TRUE(EnrollMsMde2(*device_, Request()).ok());
  EXPECT_EQ(server_.rst_with_client_cert, 1);
  auto second = LoadEnrollment(device_->db());
  EXPECT_NE(first->device_cert_pem, second->device_cert_pem);
}

TEST_F(EnrollMde2Test, FederatedSignsInThroughTheFormAndSendsTheWresult) {
  server_.auth_policy = "Federated";
  server_.expected_token = "FED-TOKEN";
  server_.expected_value_type = enroll::kUserTokenType;
  MsMde2EnrollRequest r = Request();
  r.password = SecretBytes(std::string_view("fedpw"));
  r.otp = SecretBytes(std::string_view("123456"));
  Status st = EnrollMsMde2(*device_, r);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(LoadEnrollment(device_->db())->enrolled());
}

TEST_F(EnrollMde2Test, FederatedWrongPasswordNamesTheSignIn) {
  server_.auth_policy = "Federated";
  server_.expected_token = "FED-TOKEN";
  server_.expected_value_type = enroll::kUserTokenType;
  MsMde2EnrollRequest r = Request();
  r.password = SecretBytes(std::string_view("nope"));
  Status st = EnrollMsMde2(*device_, r);
  EXPECT_EQ(st.code(), Code::kUnauthenticated);
  EXPECT_NE(st.message().find("Federated sign-in"), std::string::npos) << st.ToString();
  ExpectUnenrolled();
}

TEST_F(EnrollMde2Test, TokenAuthSendsTheTokenAsBinarySecurityToken) {
  server_.expected_token = "eyJhbGciOiJub25lIn0.eyJ1cG4iOiJ1In0.sig";
  server_.expected_value_type = enroll::kJwtTokenType;
  MsMde2EnrollRequest r = Request();
  r.auth = "token";
  r.token = SecretBytes(std::string_view(server_.expected_token));
  Status st = EnrollMsMde2(*device_, r);
  ASSERT_TRUE(st.ok()) << st.ToString();

  server_.expected_token = "{\"type\":1,\"payload\":{\"orbit_node_key\":\"k\"}}";
  server_.expected_value_type = enroll::kUserTokenType;
  r.token = SecretBytes(std::string_view(server_.expected_token));
  st = EnrollMsMde2(*device_, r);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

TEST_F(EnrollMde2Test, WrongPasswordIsTheServersFaultNamingStepAndUrl) {
  MsMde2EnrollRequest r = Request();
  r.password = SecretBytes(std::string_view("bad"));
  Status st = EnrollMsMde2(*device_, r);
  EXPECT_EQ(st.code(), Code::kUnauthenticated);
  EXPECT_NE(
      st.message().find("RequestSecurityToken at " + server_.Url("/api/mdm/microsoft/enroll")),
      std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("wrong password"), std::string::npos);
  ExpectUnenrolled();
}

TEST_F(EnrollMde2Test, SoapFaultNamesStepUrlCodeAndReason) {
  server_.mode = Mde2Server::Mode::kEnrollFault;
  Status st = EnrollMsMde2(*device_, Request());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(
      st.message().find("RequestSecurityToken at " + server_.Url("/api/mdm/microsoft/enroll")),
      std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("Receiver/enrollmentserver"), std::string::npos);
  EXPECT_NE(st.message().find("the CA is offline"), std::string::npos);
  ExpectUnenrolled();
}

TEST_F(EnrollMde2Test, WrongContentTypeNamesStepAndUrl) {
  server_.mode = Mde2Server::Mode::kPolicyHtml;
  Status st = EnrollMsMde2(*device_, Request());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("GetPolicies at " + server_.Url("/api/mdm/microsoft/policy")),
            std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("text/html"), std::string::npos);
  ExpectUnenrolled();
}

TEST_F(EnrollMde2Test, ADocumentThatDoesNotParseLeavesTheDeviceUnenrolled) {
  server_.mode = Mde2Server::Mode::kBadDoc;
  Status st = EnrollMsMde2(*device_, Request());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("provisioning document"), std::string::npos) << st.ToString();
  ExpectUnenrolled();
}

TEST_F(EnrollMde2Test, ACertificateForAnotherKeyIsRefusedAndNothingWritten) {
  auto other = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  pki::IssueOptions io;
  io.common_name = "someone";
  io.not_before = Clock::System().Now();
  auto cert = pki::IssueForPublicKey(server_.device_ca, other->public_pem, io);
  auto mine = crypto::GenerateRsaPrivateKey(2048);
  const std::string doc = WapDoc(server_.device_ca.cert_pem, *cert, server_.Url("/mdm"));
  Status st = ApplyProvisioningDoc(*device_, doc, *mine, "", "HW", "Full");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("does not carry this device's key"), std::string::npos);
  ExpectUnenrolled();
  // The same document with the right key applies.
  EXPECT_TRUE(ApplyProvisioningDoc(*device_, doc, other->private_pem, "", "HW", "Device").ok());
  EXPECT_TRUE(LoadEnrollment(device_->db())->trust_system_store);
}

TEST_F(EnrollMde2Test, ManagementSessionThenUnenrollSendsTheAlertAndRemovesTheEnrollment) {
  ASSERT_TRUE(EnrollMsMde2(*device_, Request()).ok());
  ASSERT_TRUE(device_->SetSignedInUser("alice").ok());
  SyncOptions so;
  so.retry.max_attempts = 1;
  auto session = RunSession(*device_, so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  Status st = Unenroll(*device_, so);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(server_.mdm_bodies.size(), 2u);
  EXPECT_EQ(server_.mdm_bodies[0].find(kUnenrollAlertType), std::string::npos);
  EXPECT_NE(server_.mdm_bodies[1].find("<Data>1226</Data><Item><Meta><Type "
                                       "xmlns=\"syncml:metinf\">com.microsoft:mdm.unenrollment."
                                       "userrequest</Type><Format xmlns=\"syncml:metinf\">int"
                                       "</Format></Meta><Data>1</Data>"),
            std::string::npos)
      << server_.mdm_bodies[1];
  ExpectUnenrolled();
  // What is not the enrollment stays: the signed-in user, the device identity.
  EXPECT_EQ(*device_->SignedInUser(), "alice");
  EXPECT_TRUE(fs::exists(dir_ / kMachineKeyFile));
}

// Red-team items: a server that keeps a session going forever, and a RespURI that sends the
// device's next message (with its client certificate) to another host.
TEST_F(EnrollMde2Test, ASessionIsCappedInMessages) {
  ASSERT_TRUE(EnrollMsMde2(*device_, Request()).ok());
  server_.endless_session = true;
  SyncOptions so;
  so.retry.max_attempts = 1;
  so.max_messages = 5;
  auto session = RunSession(*device_, so);
  ASSERT_FALSE(session.ok());
  EXPECT_NE(session.status().message().find("past 5 messages"), std::string::npos)
      << session.status().ToString();
  EXPECT_EQ(server_.mdm_bodies.size(), 5u);
}

TEST_F(EnrollMde2Test, ARespUriToAnotherHostIsRefused) {
  ASSERT_TRUE(EnrollMsMde2(*device_, Request()).ok());
  server_.endless_session = true;
  const std::string elsewhere =
      "https://localhost:" + std::to_string(server_.server->port()) + "/mdm";
  server_.resp_uri = elsewhere;
  SyncOptions so;
  so.retry.max_attempts = 1;
  auto session = RunSession(*device_, so);
  ASSERT_FALSE(session.ok());
  EXPECT_NE(session.status().message().find(elsewhere), std::string::npos)
      << session.status().ToString();
  EXPECT_EQ(server_.mdm_bodies.size(), 1u);  // nothing went to the other host
  // Another path on the same host is followed.
  server_.resp_uri = server_.Url("/mdm?resp=1");
  server_.endless_session = false;
  server_.mdm_bodies.clear();
  auto same_host = RunSession(*device_, so);
  EXPECT_TRUE(same_host.ok()) << same_host.status().ToString();
}

}  // namespace
}  // namespace dm::agent
