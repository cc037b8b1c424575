// The agent against the answers of Fleet's proof-of-concept Windows MDM server
// (tests/fixtures/fleet-poc): a real agent runtime, a real TLS server on loopback that never
// asks for a client certificate and answers with the captured bodies. The agent's messages must
// be well-formed, carry one Status per server command, and never a 1226 (that server reads any
// 1226 as an unenrollment).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "agent/runtime/device.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/outbox.h"
#include "agent/runtime/sync.h"
#include "agent/syncml/codec.h"
#include "agent/transport/https_server.h"
#include "base/crypto.h"
#include "base/pki.h"

namespace dm {
namespace {

namespace fs = std::filesystem;

std::string Fixture(const std::string& name) {
  std::ifstream in(fs::path(DMAGENT_SOURCE_DIR) / "tests/fixtures/fleet-poc" / name,
                   std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class FleetPocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "fleetpoc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto ca = pki::CreateCa("Fleet POC test CA", Clock::System().Now() - std::chrono::hours(1),
                            std::chrono::hours(24));
    ASSERT_TRUE(ca.ok());
    ca_ = std::move(*ca);

    auto server_key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(server_key.ok());
    pki::IssueOptions io;
    io.common_name = "127.0.0.1";
    io.not_before = Clock::System().Now() - std::chrono::minutes(1);
    io.server_auth = true;
    io.ip_addresses = {"127.0.0.1"};
    auto server_cert = pki::IssueForPublicKey(ca_, server_key->public_pem, io);
    ASSERT_TRUE(server_cert.ok());
    transport::HttpsServerOptions o;
    o.cert_chain_pem = *server_cert;
    o.key_pem = std::move(server_key->private_pem);
    o.client_cert_mode = transport::ClientCertMode::kNone;  // as Fleet behind a TLS proxy
    auto server = transport::HttpsServer::Start(
        std::move(o), [this](const transport::HttpRequest& req, const transport::PeerInfo&) {
          std::lock_guard<std::mutex> lock(mu_);
          requests_.push_back(req.body);
          transport::HttpResponse r;
          r.status = 200;
          r.headers = {{"Content-Type", "application/vnd.syncml.dm+xml"}};
          if (!answers_.empty()) {
            r.body = answers_.front();
            answers_.erase(answers_.begin());
          }
          return r;
        });
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    server_ = std::move(*server);

    agent::DeviceOptions d;
    d.state_dir = dir_ / "device";
    d.pin_kdf = crypto::ScryptParams::ForTests();
    auto device = agent::Device::Open(std::move(d));
    ASSERT_TRUE(device.ok()) << device.error().ToString();
    device_ = std::move(*device);

    auto device_key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(device_key.ok());
    pki::IssueOptions dio;
    dio.common_name = "B5B954E81FBCB94EB79BD08BE625F4EE";
    dio.not_before = io.not_before;
    dio.client_auth = true;
    auto device_cert = pki::IssueForPublicKey(ca_, device_key->public_pem, dio);
    ASSERT_TRUE(device_cert.ok());
    Status enrolled = agent::EnrollOutOfBand(
        *device_, {.management_url = server_->BaseUrl() + "/ManagementServer/MDM.svc",
                   .ca_pem = ca_.cert_pem,
                   .device_cert_pem = *device_cert,
                   .device_key_pem = std::move(device_key->private_pem),
                   .pin_reset_url = "",
                   .pin_reset_public_key_pem = ""});
    ASSERT_TRUE(enrolled.ok()) << enrolled.ToString();
    // A signed-in user with a container: there is a report the agent could send.
    ASSERT_TRUE(device_->policy().OnSignIn("alice").ok());
    ASSERT_TRUE(device_->SetSignedInUser("alice").ok());
    ASSERT_TRUE(device_->containers().Provision("alice", SecretBytes("246810")).ok());
  }
  void TearDown() override {
    server_.reset();
    device_.reset();
    fs::remove_all(dir_);
  }

  // One session against `answers`; returns the agent's messages, decoded.
  std::vector<syncml::Message> RunAgainst(std::vector<std::string> answers) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      answers_ = std::move(answers);
      requests_.clear();
    }
    agent::SyncOptions o;
    o.step_timeout = std::chrono::seconds(10);
    o.retry.max_attempts = 1;
    auto r = agent::RunSession(*device_, o);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_TRUE(answers_.empty()) << "the agent stopped before the server's last answer";
    std::vector<syncml::Message> out;
    for (const std::string& body : requests_) {
      auto m = syncml::Decode(body);
      EXPECT_TRUE(m.ok()) << body;
      if (m.ok()) out.push_back(std::move(*m));
    }
    return out;
  }

  // Every agent message: no 1226, and (after package 1) a SyncHdr Status first and one Status
  // per command of the server message it answers.
  void ExpectWellFormed(const std::vector<syncml::Message>& sent,
                        const std::vector<std::string>& answers) {
    for (const syncml::Message& m : sent) {
      for (const syncml::Command& c : m.commands) {
        EXPECT_FALSE(c.type == syncml::CommandType::kAlert && c.data == "1226")
            << "a 1226 to a server that did not subscribe";
      }
    }
    for (size_t i = 1; i < sent.size(); ++i) {
      auto server = syncml::Decode(answers[i - 1]);
      ASSERT_TRUE(server.ok());
      std::vector<std::string> expected = {"0"};
      for (const syncml::Command& c : server->commands) {
        if (c.type != syncml::CommandType::kStatus) expected.push_back(c.cmd_id);
      }
      std::vector<std::string> refs;
      for (const syncml::Command& c : sent[i].commands) {
        if (c.type != syncml::CommandType::kStatus) continue;
        refs.push_back(c.cmd_ref);
        EXPECT_EQ(c.msg_ref, server->header.msg_id);
      }
      EXPECT_EQ(refs, expected) << "message " << i + 1;
    }
  }

  fs::path dir_;
  pki::CertificateAuthority ca_;
  std::unique_ptr<transport::HttpsServer> server_;
  std::unique_ptr<agent::Device> device_;
  std::mutex mu_;
  std::vector<std::string> answers_;
  std::vector<std::string> requests_;
};

TEST_F(FleetPocTest, ReadmeSessionGetsOneStatusPerCommandAndNo1226) {
  const std::vector<std::string> answers = {Fixture("readme-05-resp.xml"),
                                            Fixture("readme-06-resp.xml")};
  std::vector<syncml::Message> sent = RunAgainst(answers);
  ASSERT_EQ(sent.size(), 2u);
  ExpectWellFormed(sent, answers);
  // The Personalization Replaces are answered (the agent has no such CSP: 404), not dropped.
  int replace_statuses = 0;
  for (const syncml::Command& c : sent[1].commands) {
    if (c.type == syncml::CommandType::kStatus && c.cmd == "Replace") {
      ++replace_statuses;
      EXPECT_EQ(c.data, "404");
    }
  }
  EXPECT_EQ(replace_statuses, 2);
  agent::Outbox outbox(device_->db(), device_->clock());
  EXPECT_TRUE(outbox.Pending()->empty()) << "no report waits for a server that never asked";
}

TEST_F(FleetPocTest, EmptyAnswerEndsTheSession) {
  // In the README dump the server answered the device's second message with an empty body.
  const std::vector<std::string> answers = {Fixture("readme-05-resp.xml"), ""};
  std::vector<syncml::Message> sent = RunAgainst(answers);
  ASSERT_EQ(sent.size(), 2u);
  ExpectWellFormed(sent, answers);
}

TEST_F(FleetPocTest, NgrokSessionsWithoutAlertStatusesEndCleanly) {
  // Session 1: Statuses only, Final. Session 2: the SyncHdr Status only, nothing for the
  // Alerts (Fleet answers Alert 1201 that way).
  std::vector<syncml::Message> first = RunAgainst({Fixture("ngrok-05-resp.xml")});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].header.session_id, "1");
  ExpectWellFormed(first, {});
  std::vector<syncml::Message> second = RunAgainst({Fixture("ngrok-06-resp.xml")});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].header.session_id, "2");
  ExpectWellFormed(second, {});
}

}  // namespace
}  // namespace dm
