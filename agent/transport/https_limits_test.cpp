// HttpsServer's connection limits with real TLS connections on loopback (port 0). Linux routes
// all of 127.0.0.0/8 to lo, so binding the client socket to 127.0.0.2 or .3 gives connections
// from other source addresses.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "agent/transport/https_server.h"
#include "base/log_capture_test_support.h"
#include "base/pki.h"

namespace dm::transport {
namespace {

using dm::testing::LogCapture;
using std::chrono::hours;

// A TCP connection from `source` to 127.0.0.1:port, optionally with a TLS handshake; held open
// until destroyed. Reads time out after 5 s so a broken server fails the test, not hangs it.
class Connection {
 public:
  Connection(uint16_t port, const char* source) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &local.sin_addr);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(port);
    remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0 &&
                 ::connect(fd_, reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0;
  }
  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ::close(fd_);
    ERR_clear_error();
  }
  bool connected() const { return connected_; }
  void SendRaw(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), 0); }

  // The handshake and one GET: whether a 200 came back. The server here does not verify
  // anything about the client, so neither does the client about the server.
  bool TlsGet() {
    if (!connected_) return false;
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) return false;
    const std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return false;
    char buf[512];
    const int n = SSL_read(ssl_, buf, sizeof buf);
    return n > 0 && std::string(buf, static_cast<size_t>(n)).rfind("HTTP/1.1 200", 0) == 0;
  }
  // Handshake only: the connection then sits idle.
  bool TlsHandshake() {
    if (!connected_) return false;
    ctx_ = SSL_CTX_new(TLS_client_method());
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

class HttpsLimitsTest : public ::testing::Test {
 protected:
  // A refused connection is closed under the client's feet; its writes must fail, not kill.
  static void SetUpTestSuite() { ::signal(SIGPIPE, SIG_IGN); }

  void Start(size_t max_connections, size_t per_address,
             std::chrono::milliseconds io_timeout = std::chrono::seconds(10)) {
    const TimePoint now = Clock::System().Now();  // TLS checks validity on the real clock
    auto ca = pki::CreateCa("dmagent Limits Root", now - hours(1), hours(24));
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    pki::IssueOptions issue;
    issue.common_name = "limits server";
    issue.not_before = now - hours(1);
    issue.validity = hours(24);
    issue.server_auth = true;
    issue.ip_addresses = {"127.0.0.1"};
    auto cert = pki::IssueForPublicKey(*ca, key->public_pem, issue);
    ASSERT_TRUE(cert.ok()) << cert.status().ToString();
    HttpsServerOptions o;
    o.cert_chain_pem = *cert;
    o.key_pem = std::move(key->private_pem);
    o.max_connections = max_connections;
    o.max_connections_per_address = per_address;
    o.io_timeout = io_timeout;
    o.threads = 2;
    auto s = HttpsServer::Start(std::move(o), [](const HttpRequest&, const PeerInfo&) {
      return HttpResponse{200, {{"Content-Type", "text/plain"}}, "ok\n"};
    });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }

  std::unique_ptr<Connection> Open(const char* source = "127.0.0.1") {
    auto c = std::make_unique<Connection>(server_->port(), source);
    EXPECT_TRUE(c->connected()) << "connect from " << source;
    return c;
  }

  // Sessions end on the server's threads after the client side closed: wait for the count.
  bool WaitForActive(uint64_t n) {
    for (int i = 0; i < 500; ++i) {
      if (server_->active_connections() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<HttpsServer> server_;
};

// Security issue #11: one address could hold every connection the server can carry.
TEST_F(HttpsLimitsTest, ConnectionsOverThePerAddressLimitAreRefusedUntilOneCloses) {
  LogCapture log(spdlog::level::info);
  ASSERT_NO_FATAL_FAILURE(Start(/*max_connections=*/0, /*per_address=*/3));
  std::vector<std::unique_ptr<Connection>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(Open());
    ASSERT_TRUE(held.back()->TlsGet()) << "connection " << i;
  }
  EXPECT_EQ(server_->active_connections(), 3u);
  EXPECT_FALSE(Open()->TlsGet()) << "the fourth from one address";
  EXPECT_FALSE(Open()->TlsGet()) << "and the fifth";
  EXPECT_EQ(server_->connections_refused(), 2u);
  EXPECT_EQ(log.Count("refusing connections from 127.0.0.1 "), 1u) << "logged once";
  // Another address has its own allowance.
  auto other = Open("127.0.0.2");
  EXPECT_TRUE(other->TlsGet());

  held.erase(held.begin());
  ASSERT_TRUE(WaitForActive(3)) << server_->active_connections();
  held.push_back(Open());
  EXPECT_TRUE(held.back()->TlsGet()) << "a closed connection frees its slot";
  EXPECT_EQ(server_->connections_refused(), 2u);
}

TEST_F(HttpsLimitsTest, ConnectionsOverTheGlobalLimitAreRefusedFromAnyAddress) {
  ASSERT_NO_FATAL_FAILURE(Start(/*max_connections=*/2, /*per_address=*/64));
  auto a = Open("127.0.0.1");
  auto b = Open("127.0.0.2");
  ASSERT_TRUE(a->TlsGet());
  ASSERT_TRUE(b->TlsGet());
  EXPECT_FALSE(Open("127.0.0.3")->TlsGet());
  EXPECT_EQ(server_->connections_refused(), 1u);
  a.reset();
  ASSERT_TRUE(WaitForActive(1)) << server_->active_connections();
  EXPECT_TRUE(Open("127.0.0.3")->TlsGet());
}

// The slot comes back on every way a session ends, not only a clean close.
TEST_F(HttpsLimitsTest, FailedHandshakesAndIdleTimeoutsGiveTheirSlotBack) {
  ASSERT_NO_FATAL_FAILURE(
      Start(/*max_connections=*/0, /*per_address=*/1, std::chrono::milliseconds(1000)));
  {
    auto garbage = Open();
    garbage->SendRaw("GET / HTTP/1.1\r\n\r\n");  // not TLS: the handshake fails
    for (int i = 0; i < 500 && server_->connections_accepted() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(server_->connections_accepted(), 1u);
    ASSERT_TRUE(WaitForActive(0)) << "after a failed handshake";
  }
  auto idle = Open();
  ASSERT_TRUE(idle->TlsHandshake());
  EXPECT_FALSE(Open()->TlsGet()) << "the slot is taken while the idle connection lives";
  ASSERT_TRUE(WaitForActive(0)) << "after the idle timeout";
  EXPECT_TRUE(Open()->TlsGet());
  EXPECT_EQ(server_->connections_refused(), 1u);
}

}  // namespace
}  // namespace dm::transport
