// HttpsClient against connections that break in the middle of a message: a response cut short
// of its Content-Length (with and without TLS close_notify), a reset while the server reads the
// request, a reset in the middle of the response. The client must retry with backoff within its
// RetryPolicy, give up with a Status that says where it failed, and log each retry.
// Retries sleep through an injected sleeper: nothing here waits for a backoff.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

#include "agent/transport/faulty_https_server.h"
#include "agent/transport/https_client.h"
#include "base/log_capture_test_support.h"
#include "base/pki.h"

namespace dm::transport {
namespace {

using dm::testing::LogCapture;
using std::chrono::hours;
using std::chrono::milliseconds;

class HttpsFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const TimePoint now = Clock::System().Now();  // TLS checks validity on the real clock
    auto ca = pki::CreateCa("dmagent Fault Root", now - hours(1), hours(24));
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = std::move(*ca);
    pki::IssueOptions server;
    server.common_name = "fault server";
    server.not_before = now - hours(1);
    server.validity = hours(24);
    server.server_auth = true;
    server.ip_addresses = {"127.0.0.1"};
    pki::IssueOptions client;
    client.common_name = "device-7";
    client.not_before = now - hours(1);
    client.validity = hours(24);
    client.client_auth = true;
    ASSERT_NO_FATAL_FAILURE(Issue(server, server_cert_, server_key_));
    ASSERT_NO_FATAL_FAILURE(Issue(client, client_cert_, client_key_));

    FaultyHttpsServerOptions o;
    o.cert_chain_pem = server_cert_;
    o.key_pem = server_key_.Clone();
    o.client_ca_pem = ca_.cert_pem;
    auto s = FaultyHttpsServer::Start(std::move(o), [](const HttpRequest& r, const PeerInfo& p) {
      // Long enough that half of it is a real cut; names the peer so mutual TLS shows.
      return HttpResponse{
          200, {{"Content-Type", "text/plain"}}, p.client_cert_cn + ":" + r.body + kPadding};
    });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }

  void Issue(const pki::IssueOptions& o, std::string& cert, SecretBytes& key) {
    auto pair = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(pair.ok());
    auto issued = pki::IssueForPublicKey(ca_, pair->public_pem, o);
    ASSERT_TRUE(issued.ok()) << issued.status().ToString();
    cert = *issued;
    key = std::move(pair->private_pem);
  }

  std::unique_ptr<HttpsClient> Client(int max_attempts = 4) {
    HttpsClientOptions o;
    o.server_url = server_->BaseUrl() + "/ManagementServer/MDM.svc";
    o.ca_bundle_pem = ca_.cert_pem;
    o.client_cert_pem = client_cert_;
    o.client_key_pem = client_key_.Clone();
    o.step_timeout = std::chrono::seconds(10);
    o.retry.max_attempts = max_attempts;
    o.sleep = [this](milliseconds d) { sleeps_.push_back(d); };
    o.uniform01 = [] { return 0.5; };  // jitter factor exactly 1
    auto c = HttpsClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::string Where() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  static constexpr char kPadding[] =
      "................................................................................"
      "................................................................................";
  pki::CertificateAuthority ca_;
  std::string server_cert_, client_cert_;
  SecretBytes server_key_, client_key_;
  std::vector<milliseconds> sleeps_;
  std::unique_ptr<FaultyHttpsServer> server_;
};

TEST_F(HttpsFaultsTest, TruncatedResponsesAreRetriedWithBackoffUntilOneArrivesWhole) {
  LogCapture log;
  server_->InjectFaults({Fault::kTruncateBody, Fault::kTruncateBodyAbrupt});
  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "pkg1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, std::string("device-7:pkg1") + kPadding) << "the whole body, not a prefix";
  EXPECT_EQ(client->last_attempts(), 3);
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(1000), milliseconds(2000)}));
  EXPECT_EQ(server_->handler_calls(), 3) << "each truncated answer was a processed request";
  // One warning per retry, saying what failed and where.
  const std::string text = log.text();
  EXPECT_NE(text.find("retry 1 of 3 in 1000 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("retry 2 of 3 in 2000 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("reading the response from " + Where() + " failed"), std::string::npos)
      << text;
}

TEST_F(HttpsFaultsTest, ResponseTruncatedOnEveryAttemptGivesUpWithAClearError) {
  server_->InjectFaults({Fault::kTruncateBody, Fault::kTruncateBody, Fault::kTruncateBody});
  auto client = Client(/*max_attempts=*/3);
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "pkg1");
  ASSERT_FALSE(r.ok()) << "a prefix of the body must never pass for the answer";
  EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().ToString();
  EXPECT_NE(r.error().message().find("reading the response from " + Where() + " failed"),
            std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("(gave up after 3 attempts)"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(client->last_attempts(), 3);
  EXPECT_EQ(sleeps_.size(), 2u);
  EXPECT_EQ(server_->faults_left(), 0u);
}

TEST_F(HttpsFaultsTest, ShortBodyIsReportedAsExactlyThat) {
  const std::string whole = std::string("device-7:pkg1") + kPadding;
  const std::string expected = "the body ended after " + std::to_string(whole.size() / 2) + " of " +
                               std::to_string(whole.size()) + " bytes";
  for (Fault fault : {Fault::kTruncateBody, Fault::kTruncateBodyAbrupt}) {
    sleeps_.clear();
    server_->InjectFaults({fault});
    // One attempt allowed: nothing is retried behind the caller's back.
    auto client = Client(/*max_attempts=*/1);
    ASSERT_NE(client, nullptr);
    const int calls_before = server_->handler_calls();
    auto r = client->Post("", "pkg1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Code::kUnavailable);
    EXPECT_NE(r.error().message().find(expected), std::string::npos) << r.error().message();
    EXPECT_EQ(client->last_attempts(), 1);
    EXPECT_TRUE(sleeps_.empty());
    EXPECT_EQ(server_->handler_calls(), calls_before + 1);
  }
}

TEST_F(HttpsFaultsTest, ResetWhileTheServerReadsTheRequestIsRetried) {
  server_->InjectFaults({Fault::kResetInRequest});
  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "pkg1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, std::string("device-7:pkg1") + kPadding);
  EXPECT_EQ(client->last_attempts(), 2);
  EXPECT_EQ(sleeps_, std::vector<milliseconds>{milliseconds(1000)});
  EXPECT_EQ(server_->requests_received(), 2);
  EXPECT_EQ(server_->handler_calls(), 1) << "the reset request was never processed";
}

TEST_F(HttpsFaultsTest, ResetInTheMiddleOfTheResponseIsRetried) {
  server_->InjectFaults({Fault::kResetInResponse});
  auto client = Client();
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "pkg1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, std::string("device-7:pkg1") + kPadding);
  EXPECT_EQ(client->last_attempts(), 2);
  EXPECT_EQ(sleeps_, std::vector<milliseconds>{milliseconds(1000)});
  // The server processed the message twice: the layer above must tolerate a repeat (the
  // session tests in tests/e2e show it does).
  EXPECT_EQ(server_->handler_calls(), 2);
}

// A cut on a kept-alive connection, after bytes of the answer arrived, is a real failure and
// not the one transparent re-open for a connection the server closed while idle.
TEST_F(HttpsFaultsTest, TruncationOnAKeptAliveConnectionCountsAsAFailedAttempt) {
  auto client = Client();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Post("", "pkg1").ok());
  server_->InjectFaults({Fault::kTruncateBody});
  auto r = client->Post("", "pkg2");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, std::string("device-7:pkg2") + kPadding);
  EXPECT_EQ(client->last_attempts(), 2);
  EXPECT_EQ(sleeps_.size(), 1u);
  EXPECT_EQ(client->connections_opened(), 2u);
}

TEST_F(HttpsFaultsTest, EveryKindOfDropUsesUpTheSameBoundedRetryBudget) {
  LogCapture log;
  server_->InjectFaults({Fault::kResetInRequest, Fault::kTruncateBody, Fault::kResetInResponse,
                         Fault::kTruncateBodyAbrupt, Fault::kResetInRequest});
  auto client = Client(/*max_attempts=*/4);
  ASSERT_NE(client, nullptr);
  auto r = client->Post("", "pkg1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnavailable) << r.error().ToString();
  EXPECT_NE(r.error().message().find("(gave up after 4 attempts)"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(client->last_attempts(), 4);
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(1000), milliseconds(2000),
                                                milliseconds(4000)}));
  EXPECT_EQ(server_->faults_left(), 1u) << "no fifth attempt";
  EXPECT_NE(log.text().find("retry 3 of 3"), std::string::npos) << log.text();

  // The next message on the same client goes through once the network is sound again.
  sleeps_.clear();
  server_->InjectFaults({});
  auto ok = client->Post("", "pkg1 again");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_TRUE(sleeps_.empty());
}

}  // namespace
}  // namespace dm::transport
