// HttpsClient against HttpsServer on loopback, with certificates made by base/pki at test time.
// Retries sleep through an injected sleeper, so nothing here really waits for a backoff.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "agent/transport/https_client.h"
#include "agent/transport/https_server.h"
#include "agent/transport/omadm_headers.h"
#include "base/pki.h"

namespace dm::transport {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Leaf {
  std::string cert;
  SecretBytes key;
};

// TLS checks validity against the real clock, so these certificates are dated from it.
TimePoint RealNow() { return Clock::System().Now(); }

pki::CertificateAuthority MakeCa(const std::string& cn) {
  auto ca = pki::CreateCa(cn, RealNow() - hours(1), hours(24 * 30));
  EXPECT_TRUE(ca.ok()) << ca.status().ToString();
  return std::move(ca).value();
}

Leaf MakeLeaf(const pki::CertificateAuthority& ca, pki::IssueOptions o) {
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  EXPECT_TRUE(key.ok());
  auto cert = pki::IssueForPublicKey(ca, key->public_pem, o);
  EXPECT_TRUE(cert.ok()) << cert.status().ToString();
  return Leaf{cert.value_or(""), std::move(key->private_pem)};
}

pki::IssueOptions ServerCertOptions() {
  pki::IssueOptions o;
  o.common_name = "dm test server";
  o.not_before = RealNow() - hours(1);
  o.validity = hours(24);
  o.server_auth = true;
  o.ip_addresses = {"127.0.0.1"};
  o.dns_names = {"localhost"};
  return o;
}

pki::IssueOptions ClientCertOptions(const std::string& cn) {
  pki::IssueOptions o;
  o.common_name = cn;
  o.not_before = RealNow() - hours(1);
  o.validity = hours(24);
  o.client_auth = true;
  return o;
}

// A port nothing listens on: bind an ephemeral port, then close it.
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Listens but never accepts: the kernel completes the TCP handshake, then nothing answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

struct Seen {
  std::mutex mu;
  std::vector<HttpRequest> requests;
  std::vector<PeerInfo> peers;

  void Add(const HttpRequest& r, const PeerInfo& p) {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(r);
    peers.push_back(p);
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return requests.size();
  }
};

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = MakeCa("dmagent Test Root");
    server_leaf_ = MakeLeaf(ca_, ServerCertOptions());
    client_leaf_ = MakeLeaf(ca_, ClientCertOptions("device-1"));
  }

  HttpsServerOptions ServerOptions(ClientCertMode mode = ClientCertMode::kRequired) {
    HttpsServerOptions o;
    o.cert_chain_pem = server_leaf_.cert;
    o.key_pem = server_leaf_.key.Clone();
    o.client_cert_mode = mode;
    if (mode != ClientCertMode::kNone) o.client_ca_pem = ca_.cert_pem;
    o.io_timeout = seconds(10);
    return o;
  }

  void StartServer(HttpsServerOptions o, HttpHandler handler) {
    auto s = HttpsServer::Start(std::move(o), std::move(handler));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    ASSERT_NE(server_->port(), 0);
  }

  // Echoes the body and records what it saw.
  HttpHandler Echo() {
    return [this](const HttpRequest& r, const PeerInfo& p) {
      seen_.Add(r, p);
      return HttpResponse{200, {{"Content-Type", std::string(kSyncMlXml)}}, "echo:" + r.body};
    };
  }

  HttpsClientOptions ClientOptions(const std::string& url) {
    HttpsClientOptions o;
    o.server_url = url;
    o.ca_bundle_pem = ca_.cert_pem;
    o.client_cert_pem = client_leaf_.cert;
    o.client_key_pem = client_leaf_.key.Clone();
    o.step_timeout = seconds(10);
    o.sleep = [this](milliseconds d) { sleeps_.push_back(d); };
    o.uniform01 = [] { return 0.5; };  // jitter factor exactly 1
    return o;
  }

  std::unique_ptr<HttpsClient> MakeClient(HttpsClientOptions o) {
    auto c = HttpsClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  std::string Url(
      const std::string& path = "/ManagementServer/MDM.svc?mode=Maintenance&Platform=WoA") {
    return server_->BaseUrl() + path;
  }

  pki::CertificateAuthority ca_;
  Leaf server_leaf_;
  Leaf client_leaf_;
  Seen seen_;
  std::vector<milliseconds> sleeps_;
  // Last, so it is destroyed (and its threads joined) before what its handlers touch.
  std::unique_ptr<HttpsServer> server_;
};

// SIGTERM to dmserver: a request being handled when Stop() is called still gets its answer;
// nothing new is accepted after it.
TEST_F(HttpsTest, StopLetsTheRequestsBeingHandledFinish) {
  std::atomic<bool> entered{false};
  StartServer(ServerOptions(), [&](const HttpRequest&, const PeerInfo&) {
    entered = true;
    std::this_thread::sleep_for(milliseconds(300));
    // Larger than the socket buffers: the answer is still being written when Stop() would
    // otherwise close the connection.
    return HttpResponse{200, {}, std::string(8u << 20, 'x')};
  });
  HttpsClientOptions o = ClientOptions(Url());
  o.retry.max_attempts = 1;
  auto client = MakeClient(std::move(o));
  Result<HttpResponse> answer = Internal("not sent");
  std::thread request([&] { answer = client->Post("", "<SyncML/>", kSyncMlXml); });
  while (!entered) std::this_thread::sleep_for(milliseconds(1));
  server_->Stop();
  request.join();
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body.size(), 8u << 20);
  HttpsClientOptions late = ClientOptions(Url());
  late.retry.max_attempts = 1;
  EXPECT_FALSE(MakeClient(std::move(late))->Post("", "<SyncML/>", kSyncMlXml).ok());
}

// A renewed certificate (SIGHUP in dmserver) is presented from the next handshake on; a key
// that is not the certificate's is refused and the current pair stays.
TEST_F(HttpsTest, SetCertificatePresentsTheNewOneFromTheNextHandshake) {
  StartServer(ServerOptions(), Echo());
  const pki::CertificateAuthority renewed_ca = MakeCa("renewed Root");
  Leaf renewed = MakeLeaf(renewed_ca, ServerCertOptions());
  auto trusting = [&](const pki::CertificateAuthority& ca) {
    HttpsClientOptions o = ClientOptions(Url());
    o.ca_bundle_pem = ca.cert_pem;
    o.retry.max_attempts = 1;
    auto client = MakeClient(std::move(o));
    return client->Post("", "<SyncML/>", kSyncMlXml).ok();
  };
  EXPECT_TRUE(trusting(ca_));
  EXPECT_FALSE(trusting(renewed_ca));

  ASSERT_TRUE(server_->SetCertificate(renewed.cert, renewed.key).ok());
  EXPECT_TRUE(trusting(renewed_ca));
  EXPECT_FALSE(trusting(ca_));

  const Status wrong = server_->SetCertificate(server_leaf_.cert, renewed.key);
  EXPECT_EQ(wrong.code(), Code::kInvalidArgument) << wrong.ToString();
  EXPECT_TRUE(trusting(renewed_ca));
}

TEST_F(HttpsTest, MutualTlsRoundTripCarriesTheOmaDmHeaders) {
  StartServer(ServerOptions(), Echo());
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  OmaDmHeaders omadm("0", CorrelationVector("cvbase"));

  auto r = client->Post("", "<SyncML/>", kSyncMlXml, omadm.NextMessage());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "echo:<SyncML/>");
  EXPECT_EQ(r->Header("content-type"), std::string(kSyncMlXml));
  EXPECT_TRUE(HttpStatusToStatus(*r).ok());

  ASSERT_EQ(seen_.size(), 1u);
  const HttpRequest& req = seen_.requests[0];
  const PeerInfo& peer = seen_.peers[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/ManagementServer/MDM.svc?mode=Maintenance&Platform=WoA");
  EXPECT_EQ(req.Header("Content-Type"), "application/vnd.syncml.dm+xml");
  EXPECT_EQ(req.Header("User-Agent"), std::string(kDefaultUserAgent));
  EXPECT_EQ(req.Header("MS-CV"), "cvbase.0.0.0");
  EXPECT_EQ(req.Header("Client-Request-Id"), "0");
  EXPECT_EQ(req.Header("Host"), "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_TRUE(peer.has_client_cert);
  EXPECT_EQ(peer.client_cert_cn, "device-1");
  EXPECT_EQ(peer.client_cert_pem, client_leaf_.cert);
  EXPECT_EQ(peer.remote_address, "127.0.0.1");
  EXPECT_TRUE(sleeps_.empty());
}

// A raw OpenSSL client that offers only TLS 1.2 and `ciphers`: whether the handshake completes.
bool Tls12HandshakeWith(uint16_t port, const char* ciphers) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx, ciphers);
  BIO* bio = BIO_new_ssl_connect(ctx);
  BIO_set_conn_hostname(bio, ("127.0.0.1:" + std::to_string(port)).c_str());
  const bool ok = BIO_do_handshake(bio) == 1;
  BIO_free_all(bio);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

// Red-team finding: TLS 1.2 offered whatever OpenSSL's defaults allowed (CBC, static RSA).
TEST_F(HttpsTest, Tls12OffersOnlyForwardSecretAeadSuites) {
  StartServer(ServerOptions(ClientCertMode::kOptional), Echo());
  EXPECT_TRUE(Tls12HandshakeWith(server_->port(),
                                 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"));
  EXPECT_FALSE(Tls12HandshakeWith(server_->port(), "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"));
  EXPECT_FALSE(Tls12HandshakeWith(server_->port(), "AES128-GCM-SHA256:AES256-SHA256"));
}

// Sends `request` over TLS as is and reads until the server closes (or 5 s pass).
std::string RawExchange(uint16_t port, const std::string& request) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  BIO* bio = BIO_new_ssl_connect(ctx);
  BIO_set_conn_hostname(bio, ("127.0.0.1:" + std::to_string(port)).c_str());
  std::string out;
  if (BIO_do_handshake(bio) == 1 &&
      BIO_write(bio, request.data(), static_cast<int>(request.size())) > 0) {
    BIO_set_nbio(bio, 0);
    char buf[4096];
    for (int n; (n = BIO_read(bio, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  BIO_free_all(bio);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return out;
}

// Red-team item: a Transfer-Encoding the server does not implement must get 400 and a closed
// connection (RFC 9112 section 6.1), never a body read up to the peer's choosing.
TEST_F(HttpsTest, UnknownTransferEncodingIs400AndClosesTheConnection) {
  StartServer(ServerOptions(ClientCertMode::kOptional), Echo());
  const std::string answer =
      RawExchange(server_->port(),
                  "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\nabc"
                  "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1", 5), std::string::npos) << "one answer, then the close";
  EXPECT_EQ(seen_.size(), 0u);
  // Chunked is implemented.
  const std::string chunked =
      RawExchange(server_->port(),
                  "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 200", 0), 0u) << chunked;
  EXPECT_NE(chunked.find("echo:abc"), std::string::npos) << chunked;
}

TEST_F(HttpsTest, KeepAliveReusesOneConnectionForASession) {
  StartServer(ServerOptions(), Echo());
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  OmaDmHeaders omadm("0", CorrelationVector("cv"));
  for (int i = 0; i < 4; ++i) {
    auto r = client->Post("", "msg" + std::to_string(i), kSyncMlXml, omadm.NextMessage());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "echo:msg" + std::to_string(i));
  }
  EXPECT_EQ(client->connections_opened(), 1u);
  EXPECT_EQ(server_->connections_accepted(), 1u);
  EXPECT_EQ(server_->requests_handled(), 4u);
  ASSERT_EQ(seen_.size(), 4u);
  EXPECT_EQ(seen_.requests[3].Header("MS-CV"), "cv.0.0.3");
}

// A saved session resumes on the next client's connection, the server still sees the client's
// verified identity, and a session is never used for another identity or server.
TEST_F(HttpsTest, ResumedSessionKeepsThePeerIdentityAndStaysWithItsIdentity) {
  StartServer(ServerOptions(), Echo());
  TlsResumption saved;
  for (int i = 0; i < 3; ++i) {
    HttpsClientOptions o = ClientOptions(Url());
    o.resumption = &saved;
    auto client = MakeClient(std::move(o));
    ASSERT_NE(client, nullptr);
    auto r = client->Post("", "<SyncML/>");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(client->connections_resumed(), i == 0 ? 0u : 1u) << "client " << i;
    ASSERT_NE(saved.session, nullptr);
  }
  ASSERT_EQ(seen_.size(), 3u);
  for (const PeerInfo& p : seen_.peers) {
    EXPECT_TRUE(p.has_client_cert);
    EXPECT_EQ(p.client_cert_cn, "device-1");
    EXPECT_FALSE(p.client_cert_serial_hex.empty());
  }
  // Another client certificate: a full handshake, and the server sees that identity.
  Leaf other = MakeLeaf(ca_, ClientCertOptions("device-2"));
  HttpsClientOptions o = ClientOptions(Url());
  o.client_cert_pem = other.cert;
  o.client_key_pem = other.key.Clone();
  o.resumption = &saved;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Post("", "<SyncML/>").ok());
  EXPECT_EQ(client->connections_resumed(), 0u);
  EXPECT_EQ(seen_.peers.back().client_cert_cn, "device-2");
}

TEST_F(HttpsTest, ReconnectsOnceWhenTheServerClosedTheIdleConnection) {
  HttpsServerOptions so = ServerOptions();
  so.io_timeout = milliseconds(100);  // also the server's keep-alive idle timeout
  StartServer(std::move(so), Echo());
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Post("", "one").ok());
  // Wait (bounded) until the server has dropped the idle connection.
  for (int i = 0; i < 1000 && server_->active_connections() != 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(server_->active_connections(), 0u);

  auto r = client->Post("", "two");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "echo:two");
  EXPECT_EQ(client->connections_opened(), 2u);
  EXPECT_EQ(client->last_attempts(), 1);  // the re-open is not a retry
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(HttpsTest, UntrustedServerCaFailsFastWithAClearMessage) {
  StartServer(ServerOptions(), Echo());
  HttpsClientOptions o = ClientOptions(Url());
  o.ca_bundle_pem = MakeCa("Some Other Root").cert_pem;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthenticated);
  EXPECT_EQ(r.error().message(),
            "TLS handshake with 127.0.0.1:" + std::to_string(server_->port()) +
                " failed: certificate verify failed (unable to get local issuer certificate)");
  EXPECT_EQ(client->last_attempts(), 1);
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(seen_.size(), 0u);
}

TEST_F(HttpsTest, ServerCertificateForAnotherHostIsRejected) {
  pki::IssueOptions other = ServerCertOptions();
  other.ip_addresses.clear();
  other.dns_names = {"other.example"};
  server_leaf_ = MakeLeaf(ca_, other);
  StartServer(ServerOptions(), Echo());

  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthenticated);
  EXPECT_NE(r.error().message().find("certificate verify failed (IP address mismatch"),
            std::string::npos)
      << r.error().message();
  EXPECT_TRUE(sleeps_.empty());

  // The same certificate is accepted when the client is told to expect that name.
  HttpsClientOptions o = ClientOptions(Url());
  o.tls_server_name = "other.example";
  auto named = MakeClient(std::move(o));
  ASSERT_NE(named, nullptr);
  auto ok = named->Post("", "y");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body, "echo:y");
}

TEST_F(HttpsTest, ServerNameMismatchIsReportedAsHostname) {
  pki::IssueOptions other = ServerCertOptions();
  other.ip_addresses.clear();
  other.dns_names = {"other.example"};
  server_leaf_ = MakeLeaf(ca_, other);
  StartServer(ServerOptions(), Echo());
  HttpsClientOptions o = ClientOptions(Url());
  o.tls_server_name = "mdm.example.com";
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthenticated);
  EXPECT_NE(r.error().message().find("hostname mismatch"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("mdm.example.com"), std::string::npos);
}

TEST_F(HttpsTest, ExpiredServerCertificateIsRejected) {
  pki::IssueOptions expired = ServerCertOptions();
  expired.not_before = RealNow() - hours(48);
  expired.validity = hours(24);
  server_leaf_ = MakeLeaf(ca_, expired);
  StartServer(ServerOptions(), Echo());
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthenticated);
  EXPECT_NE(r.error().message().find("certificate has expired"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(HttpsTest, ServerRequiringAClientCertificateRejectsAClientWithout) {
  StartServer(ServerOptions(ClientCertMode::kRequired), Echo());
  HttpsClientOptions o = ClientOptions(Url());
  o.client_cert_pem.clear();
  o.client_key_pem = SecretBytes();
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthenticated) << r.error().ToString();
  EXPECT_NE(r.error().message().find("requires a client certificate"), std::string::npos)
      << r.error().message();
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(seen_.size(), 0u);
}

TEST_F(HttpsTest, ServerRejectsAClientCertificateFromAnUntrustedCa) {
  StartServer(ServerOptions(ClientCertMode::kRequired), Echo());
  pki::CertificateAuthority rogue = MakeCa("Rogue Root");
  Leaf rogue_leaf = MakeLeaf(rogue, ClientCertOptions("device-1"));
  HttpsClientOptions o = ClientOptions(Url());
  o.client_cert_pem = rogue_leaf.cert;
  o.client_key_pem = rogue_leaf.key.Clone();
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnauthenticated) << r.error().ToString();
  EXPECT_NE(r.error().message().find("the server rejected the client certificate"),
            std::string::npos)
      << r.error().message();
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_EQ(seen_.size(), 0u);
}

std::string SerialOf(const std::string& cert_pem) {
  auto info = pki::ParseCertificate(cert_pem);
  EXPECT_TRUE(info.ok());
  return info.ok() ? info->serial_hex : "";
}

std::string Crl(const pki::CertificateAuthority& ca, std::vector<std::string> serials,
                TimePoint from = RealNow() - hours(1), seconds validity = hours(24)) {
  auto crl = pki::CreateCrl(ca, serials, from, validity, 1);
  EXPECT_TRUE(crl.ok()) << crl.status().ToString();
  return crl.value_or("");
}

// A revoked client certificate fails the TLS handshake itself (the handler never runs), also
// when the client offers a session resumed from before the revocation, in both client
// certificate modes; other certificates are unaffected.
TEST_F(HttpsTest, RevokedClientCertificateFailsTheHandshakeEvenWhenResuming) {
  for (ClientCertMode mode : {ClientCertMode::kRequired, ClientCertMode::kOptional}) {
    SCOPED_TRACE(mode == ClientCertMode::kRequired ? "required" : "optional");
    HttpsServerOptions so = ServerOptions(mode);
    so.client_crl_pem = Crl(ca_, {});
    StartServer(std::move(so), Echo());
    TlsResumption saved;
    auto connect = [&](const Leaf& leaf) {
      HttpsClientOptions o = ClientOptions(Url());
      o.client_cert_pem = leaf.cert;
      o.client_key_pem = leaf.key.Clone();
      o.resumption = &saved;
      auto client = MakeClient(std::move(o));
      return client->Post("", "x");
    };
    ASSERT_TRUE(connect(client_leaf_).ok());
    ASSERT_NE(saved.session, nullptr);
    const size_t handled = seen_.size();

    ASSERT_TRUE(server_->SetRevocationList(Crl(ca_, {SerialOf(client_leaf_.cert)})).ok());
    auto refused = connect(client_leaf_);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code(), Code::kUnauthenticated) << refused.error().ToString();
    EXPECT_NE(refused.error().message().find("the server rejected the client certificate"),
              std::string::npos)
        << refused.error().message();
    EXPECT_EQ(seen_.size(), handled);

    Leaf other = MakeLeaf(ca_, ClientCertOptions("device-2"));
    ASSERT_TRUE(connect(other).ok());
    EXPECT_EQ(seen_.peers.back().client_cert_cn, "device-2");
    // Lifted again (a CRL without it): the first certificate works.
    ASSERT_TRUE(server_->SetRevocationList(Crl(ca_, {SerialOf(other.cert)})).ok());
    EXPECT_TRUE(connect(client_leaf_).ok());
    EXPECT_FALSE(connect(other).ok());
    server_.reset();
  }
}

// Only a current CRL of the client CA replaces the list; a refused one leaves it in force.
TEST_F(HttpsTest, SetRevocationListRefusesForeignOrStaleCrls) {
  StartServer(ServerOptions(), Echo());
  const std::string serial = SerialOf(client_leaf_.cert);
  ASSERT_TRUE(server_->SetRevocationList(Crl(ca_, {serial})).ok());
  pki::CertificateAuthority rogue = MakeCa("Rogue Root");
  EXPECT_EQ(server_->SetRevocationList(Crl(rogue, {})).code(), Code::kInvalidArgument);
  EXPECT_EQ(server_->SetRevocationList(Crl(ca_, {}, RealNow() - hours(48), hours(24))).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(server_->SetRevocationList("not a CRL").code(), Code::kInvalidArgument);
  auto client = MakeClient(ClientOptions(Url()));
  EXPECT_FALSE(client->Post("", "x").ok());
  EXPECT_EQ(seen_.size(), 0u);

  // A server that asks for no client certificate has nothing to revoke.
  HttpsServerOptions plain = ServerOptions(ClientCertMode::kNone);
  plain.client_ca_pem.clear();
  auto s = HttpsServer::Start(std::move(plain), Echo());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->SetRevocationList(Crl(ca_, {})).code(), Code::kFailedPrecondition);
  // A bad CRL at start is a start failure.
  HttpsServerOptions bad = ServerOptions();
  bad.client_crl_pem = Crl(rogue, {});
  EXPECT_FALSE(HttpsServer::Start(std::move(bad), Echo()).ok());
}

TEST_F(HttpsTest, OptionalClientCertificateMayBeAbsent) {
  StartServer(ServerOptions(ClientCertMode::kOptional), Echo());
  HttpsClientOptions o = ClientOptions(Url());
  o.client_cert_pem.clear();
  o.client_key_pem = SecretBytes();
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_FALSE(seen_.peers[0].has_client_cert);
  EXPECT_TRUE(seen_.peers[0].client_cert_cn.empty());
}

TEST_F(HttpsTest, ServerErrorsAreRetriedWithBackoffUntilSuccess) {
  std::atomic<int> calls{0};
  StartServer(ServerOptions(), [&](const HttpRequest&, const PeerInfo&) {
    if (++calls <= 2) return HttpResponse{503, {}, "busy"};
    return HttpResponse{200, {}, "done"};
  });
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(client->last_attempts(), 3);
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(1000), milliseconds(2000)}));
}

TEST_F(HttpsTest, PersistentServerErrorIsReturnedAfterTheLastAttempt) {
  StartServer(ServerOptions(), [](const HttpRequest&, const PeerInfo&) {
    return HttpResponse{500, {}, "broken"};
  });
  HttpsClientOptions o = ClientOptions(Url());
  o.retry.max_attempts = 3;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(HttpStatusToStatus(*r).code(), Code::kUnavailable);
  EXPECT_EQ(client->last_attempts(), 3);
  EXPECT_EQ(sleeps_.size(), 2u);
}

TEST_F(HttpsTest, TooManyRequestsWaitsForRetryAfter) {
  std::atomic<int> calls{0};
  StartServer(ServerOptions(), [&](const HttpRequest&, const PeerInfo&) {
    if (++calls == 1) return HttpResponse{429, {{"Retry-After", "7"}}, ""};
    return HttpResponse{200, {}, "ok"};
  });
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(sleeps_, std::vector<milliseconds>{seconds(7)});
}

TEST_F(HttpsTest, ClientErrorsAreNotRetried) {
  StartServer(ServerOptions(), [](const HttpRequest&, const PeerInfo&) {
    return HttpResponse{403, {}, "forbidden"};
  });
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(client->last_attempts(), 1);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(HttpsTest, ServerDownIsUnavailableAfterBoundedRetries) {
  HttpsClientOptions o = ClientOptions("https://127.0.0.1:" + std::to_string(ClosedPort()) + "/");
  o.retry.max_attempts = 3;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_NE(r.error().message().find("connecting to 127.0.0.1:"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("gave up after 3 attempts"), std::string::npos);
  EXPECT_EQ(client->last_attempts(), 3);
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(1000), milliseconds(2000)}));
}

TEST_F(HttpsTest, SilentServerTimesOutInTheHandshake) {
  SilentListener silent;
  HttpsClientOptions o = ClientOptions("https://127.0.0.1:" + std::to_string(silent.port()) + "/");
  o.step_timeout = milliseconds(200);
  o.retry.max_attempts = 1;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDeadlineExceeded);
  EXPECT_NE(r.error().message().find("TLS handshake with 127.0.0.1:"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("timed out after 200 ms"), std::string::npos);
}

TEST_F(HttpsTest, ServerThatNeverAnswersTimesOutReadingAndIsRetried) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  HttpsServerOptions so = ServerOptions();
  so.threads = 3;
  // `released` by value: a late attempt's handler may still run after this body returns.
  StartServer(std::move(so), [this, released](const HttpRequest& r, const PeerInfo& p) {
    seen_.Add(r, p);
    released.wait();
    return HttpResponse{200, {}, "late"};
  });
  HttpsClientOptions o = ClientOptions(Url());
  o.step_timeout = milliseconds(200);
  o.retry.max_attempts = 2;  // the server has threads for both blocked attempts
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  release.set_value();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kDeadlineExceeded);
  EXPECT_NE(r.error().message().find("reading the response from 127.0.0.1:"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(client->last_attempts(), 2);
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_F(HttpsTest, BodyOverTheServerLimitGets413AndIsNotRetried) {
  HttpsServerOptions so = ServerOptions();
  so.max_body_bytes = 64 * 1024;
  StartServer(std::move(so), Echo());
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", std::string(1024 * 1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(HttpStatusToStatus(*r).code(), Code::kResourceExhausted);
  EXPECT_EQ(client->last_attempts(), 1);
  EXPECT_EQ(seen_.size(), 0u);

  // The client recovers on a new connection for a request within the limit.
  auto ok = client->Post("", "small");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->body, "echo:small");
}

TEST_F(HttpsTest, ResponseOverTheClientLimitIsResourceExhausted) {
  StartServer(ServerOptions(), [](const HttpRequest&, const PeerInfo&) {
    return HttpResponse{200, {}, std::string(200 * 1024, 'y')};
  });
  HttpsClientOptions o = ClientOptions(Url());
  o.max_response_bytes = 100 * 1024;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kResourceExhausted) << r.error().ToString();
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(HttpsTest, HandlerExceptionBecomes500) {
  StartServer(ServerOptions(), [](const HttpRequest&, const PeerInfo&) -> HttpResponse {
    throw std::runtime_error("boom");
  });
  HttpsClientOptions o = ClientOptions(Url());
  o.retry.max_attempts = 1;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpsTest, PathsAndExtraHeadersGoOnTheWire) {
  StartServer(ServerOptions(), Echo());
  HttpsClientOptions o = ClientOptions(Url("/base"));
  o.extra_headers = {{"X-Device", "abc"}, {"X-Override", "from-options"}};
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client
                  ->Post("/EnrollmentServer/Discovery.svc?x=1", "a", "text/plain",
                         {{"X-Override", "per-call"}})
                  .ok());
  ASSERT_TRUE(client->Post(Url("/full"), "b").ok());
  ASSERT_EQ(seen_.size(), 2u);
  EXPECT_EQ(seen_.requests[0].target, "/EnrollmentServer/Discovery.svc?x=1");
  EXPECT_EQ(seen_.requests[0].Header("Content-Type"), "text/plain");
  EXPECT_EQ(seen_.requests[0].Header("X-Device"), "abc");
  EXPECT_EQ(seen_.requests[0].Header("X-Override"), "per-call");
  EXPECT_EQ(seen_.requests[1].target, "/full");
  EXPECT_EQ(client->connections_opened(), 1u);  // same origin, same connection

  auto bad = client->Post("", "c", kSyncMlXml, {{"X-Evil", "a\r\nInjected: yes"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(client->last_attempts(), 1);
}

TEST_F(HttpsTest, InsecureSkipVerifyIsExplicitlyOptIn) {
  StartServer(ServerOptions(ClientCertMode::kNone), Echo());
  HttpsClientOptions o = ClientOptions(Url());
  o.ca_bundle_pem = MakeCa("Unrelated Root").cert_pem;
  o.insecure_skip_verify = true;
  auto client = MakeClient(std::move(o));
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "echo:x");
}

TEST_F(HttpsTest, CreateRejectsBadConfiguration) {
  HttpsClientOptions plain = ClientOptions("http://127.0.0.1:1/");
  EXPECT_EQ(HttpsClient::Create(std::move(plain)).status().code(), Code::kInvalidArgument);

  HttpsClientOptions wrong_key = ClientOptions("https://127.0.0.1:1/");
  auto other = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(other.ok());
  wrong_key.client_key_pem = std::move(other->private_pem);
  auto r = HttpsClient::Create(std::move(wrong_key));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("does not match"), std::string::npos) << r.error().message();

  HttpsClientOptions bad_ca = ClientOptions("https://127.0.0.1:1/");
  bad_ca.ca_bundle_pem = "not a certificate";
  EXPECT_EQ(HttpsClient::Create(std::move(bad_ca)).status().code(), Code::kInvalidArgument);

  HttpsServerOptions no_ca = ServerOptions(ClientCertMode::kRequired);
  no_ca.client_ca_pem.clear();
  EXPECT_EQ(HttpsServer::Start(std::move(no_ca), Echo()).status().code(), Code::kInvalidArgument);
}

TEST_F(HttpsTest, StopClosesConnectionsAndIsIdempotent) {
  StartServer(ServerOptions(), Echo());
  auto client = MakeClient(ClientOptions(Url()));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Post("", "x").ok());
  server_->Stop();
  server_->Stop();
  HttpsClientOptions o = ClientOptions(Url());
  o.retry.max_attempts = 1;
  auto after = MakeClient(std::move(o));
  ASSERT_NE(after, nullptr);
  auto r = after->Post("", "y");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().ToString();
}

}  // namespace
}  // namespace dm::transport
