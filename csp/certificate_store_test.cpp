#include "csp/certificate_store.h"

#include <gtest/gtest.h>

#include "base/pki.h"
#include "csp/csps_internal.h"
#include "csp/device_facts.h"
#include "csp/test_support.h"
#include "csp/tree.h"

namespace dm::csp {
namespace {

class CertificateStoreTest : public testing::DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    tree_ = std::make_unique<Tree>(db(), clock_);
    tree_->Mount("Vendor/MSFT", CertificateStoreCsp(db()));
    const TimePoint now = Clock::System().Now();
    auto ca = pki::CreateCa("Test MDM CA", now, std::chrono::hours(48));
    ASSERT_TRUE(ca.ok());
    ca_ = std::move(*ca);
    auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
    ASSERT_TRUE(key.ok());
    pki::IssueOptions o;
    o.common_name = "0123456789abcdef0123456789abcdef";
    o.not_before = now;
    o.client_auth = true;
    auto cert = pki::IssueForPublicKey(ca_, key->public_pem, o);
    ASSERT_TRUE(cert.ok());
    device_cert_ = *cert;
  }
  std::string Get(const std::string& uri) {
    GetResult r = tree_->Get(ctx_, uri);
    return r.code == 200 ? r.value.data : "(" + std::to_string(r.code) + ")";
  }
  std::string Thumb(const std::string& pem) { return pki::ParseCertificate(pem)->thumbprint; }

  Context ctx_;
  std::unique_ptr<Tree> tree_;
  pki::CertificateAuthority ca_;
  std::string device_cert_;
};

TEST_F(CertificateStoreTest, ShowsTheEnrollmentsAnchorsAndDeviceCertificate) {
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/Root/System"), "");  // nothing enrolled yet
  ASSERT_TRUE(WriteFact(db(), kEnrollmentAnchorKey, ca_.cert_pem).ok());
  ASSERT_TRUE(WriteFact(db(), kEnrollmentDeviceCertKey, device_cert_).ok());
  ASSERT_TRUE(WriteFact(db(), kEnrollmentTypeKey, "Full").ok());

  const std::string root = "./Vendor/MSFT/CertificateStore/Root/System/" + Thumb(ca_.cert_pem);
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/Root/System"), Thumb(ca_.cert_pem));
  EXPECT_EQ(Get(root + "/IssuedTo"), "Test MDM CA");
  const std::string my = "./Vendor/MSFT/CertificateStore/My/User/" + Thumb(device_cert_);
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/My/User"), Thumb(device_cert_));
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/My/System"), "");
  EXPECT_EQ(Get(my + "/IssuedBy"), "Test MDM CA");
  EXPECT_EQ(Get(my + "/IssuedTo"), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(Get(my + "/ValidTo"), FormatUtc(pki::ParseCertificate(device_cert_)->not_after));
  const std::string der = Get(my + "/EncodedCertificate");
  EXPECT_NE(device_cert_.find(der.substr(0, 64)), std::string::npos);
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/My/User/0000/IssuedBy"), "(404)");

  // A Device enrollment keeps its certificate in My/System; nothing here can be changed.
  ASSERT_TRUE(WriteFact(db(), kEnrollmentTypeKey, "Device").ok());
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/My/User"), "");
  EXPECT_EQ(Get("./Vendor/MSFT/CertificateStore/My/System"), Thumb(device_cert_));
  EXPECT_EQ(tree_->Replace(ctx_, my + "/IssuedBy", NodeValue{"x", "chr"}).code, 405);
}

}  // namespace
}  // namespace dm::csp
