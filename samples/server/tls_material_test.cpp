// The server's TLS certificate: kept across starts, re-issued only when it no longer fits, or
// the operator's own (issue #12: dmserver re-issued its certificate at every start).
#include "samples/server/tls_material.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "samples/server/server.h"
#include "samples/server/testing/test_server.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;

class TlsMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "tls-material-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    options_ = testing::TestServerOptions(dir_ / "state");
    fs::create_directories(options_.state_dir);
    fs::permissions(options_.state_dir, fs::perms::owner_all, fs::perm_options::replace);
    auto ca = pki::CreateCa("test CA", now_ - hours(1), hours(24 * 365));
    ASSERT_TRUE(ca.ok());
    ca_ = std::move(*ca);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  ServerOptions options_;
  TimePoint now_ = FromUnixSeconds(1'800'000'000);
  pki::CertificateAuthority ca_;
};

TEST_F(TlsMaterialTest, TheIssuedCertificateIsKeptUntilItNoLongerFits) {
  auto first = LoadTlsMaterial(options_, ca_, now_);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_TRUE(first->issued_now);
  auto again = LoadTlsMaterial(options_, ca_, now_ + hours(24));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->issued_now) << "a restart re-issued the certificate";
  EXPECT_EQ(again->cert_chain_pem, first->cert_chain_pem);
  EXPECT_TRUE(again->key_pem == first->key_pem);

  // A name the server now answers to that the certificate lacks.
  options_.extra_names = {"mdm.example.com"};
  auto named = LoadTlsMaterial(options_, ca_, now_ + hours(24));
  ASSERT_TRUE(named.ok());
  EXPECT_TRUE(named->issued_now);
  EXPECT_FALSE(LoadTlsMaterial(options_, ca_, now_ + hours(48))->issued_now);
  // Within 30 days of its 90-day end.
  EXPECT_TRUE(LoadTlsMaterial(options_, ca_, now_ + hours(24 * 62))->issued_now);
  // Another CA (the state's CA was replaced).
  auto other = pki::CreateCa("other CA", now_ - hours(1), hours(24 * 365));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(LoadTlsMaterial(options_, *other, now_ + hours(24 * 62))->issued_now);
  // A key file that is not the certificate's.
  auto stranger = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(stranger.ok());
  std::ofstream(PathsFor(options_.state_dir).server_key) << stranger->private_pem.view();
  EXPECT_TRUE(LoadTlsMaterial(options_, *other, now_ + hours(24 * 62))->issued_now);
}

TEST_F(TlsMaterialTest, TheOperatorsCertificateIsServedAndMustMatchItsKey) {
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  const TimePoint now = Clock::System().Now();
  auto operator_ca = pki::CreateCa("operator CA", now - hours(1), hours(24 * 365));
  ASSERT_TRUE(operator_ca.ok());
  auto cert = pki::IssueForPublicKey(*operator_ca, key->public_pem,
                                     {.common_name = "127.0.0.1",
                                      .not_before = now - hours(1),
                                      .validity = hours(24 * 30),
                                      .server_auth = true,
                                      .client_auth = false,
                                      .dns_names = {"localhost"},
                                      .ip_addresses = {"127.0.0.1"}});
  ASSERT_TRUE(cert.ok());
  options_.tls_cert_file = dir_ / "tls.pem";
  options_.tls_key_file = dir_ / "tls-key.pem";
  std::ofstream(options_.tls_cert_file) << *cert << operator_ca->cert_pem;
  std::ofstream(options_.tls_key_file) << key->private_pem.view();

  auto server = DmServer::Start(options_);
  ASSERT_TRUE(server.ok()) << server.error().ToString();
  transport::HttpsClientOptions o;
  o.server_url = (*server)->BaseUrl();
  o.ca_bundle_pem = operator_ca->cert_pem;  // devices trust the operator's CA, not dmserver's
  o.retry.max_attempts = 1;
  auto client = transport::HttpsClient::Create(std::move(o));
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Post("/PinReset/publickey", "", "application/json");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(fs::exists(PathsFor(options_.state_dir).server_cert)) << "issued one anyway";
  (*server)->Stop();

  // The wrong key, or one file without the other: refused before listening.
  std::ofstream(options_.tls_key_file)
      << pki::GenerateKeyPair(pki::KeyType::kEcP256)->private_pem.view();
  auto mismatched = DmServer::Start(options_);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().code(), Code::kInvalidArgument) << mismatched.error().ToString();
  options_.tls_key_file.clear();
  EXPECT_EQ(DmServer::Start(options_).error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace dm::server
