// The bodies the agent sends, compared byte for byte with what a real Windows 10 device sent
// (tests/fixtures/ms-mde2/fleet-poc-readme), and the answers of a real MS-MDE2 server parsed.
#include "agent/enroll/mde2_client.h"

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include "agent/enroll/fixture_for_tests.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "agent/enroll/soap.h"

namespace dm::enroll {
namespace {

std::string Fixture(const std::string& rel) { return enroll::MsMde2Fixture(rel); }

DeviceContext ReadmeDevice() {
  DeviceContext d;
  d.email = "demo@mdmwindows.com";
  d.device_id = "1E08C6E95D8BB843B1278FF45BC60CC6";
  d.hw_dev_id = "3B3ED6D0EA88CBFCF37D36F90F22FE61172348C0162FC3840D6703149870CE76";
  d.device_name = "DESKTOP-28FGAI6";
  d.macs = {"00-0C-29-51-60-9D", "1A-77-20-52-41-53", "1A-77-20-52-41-53",
            "00-0C-29-51-60-A7", "18-14-20-52-41-53", "00-0C-29-51-60-93"};
  d.os_version = "10.0.19043.2364";
  d.application_version = "10.0.19043.2364";
  return d;
}

Credential DemoPassword() {
  Credential c;
  c.kind = Credential::Kind::kUsernameToken;
  c.username = "demo@mdmwindows.com";
  c.secret = SecretBytes(std::string_view("demo"));
  return c;
}

constexpr char kTokenId[] = "uuid-cc1ccc1f-2fba-4bcf-b063-ffc0cac77917-4";

TEST(Mde2Golden, DiscoverIsByteForByteTheDevicesRequest) {
  const std::string golden = Fixture("fleet-poc-readme/readme-02-req-body.min.xml");
  ASSERT_EQ(golden.size(), 1042u);
  EXPECT_EQ(BuildDiscover(ReadmeDevice(),
                          "https://EnterpriseEnrollment.mdmwindows.com:443/EnrollmentServer/"
                          "Discovery.svc",
                          "urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478"),
            golden);
}

TEST(Mde2Golden, GetPoliciesIsByteForByteTheDevicesRequest) {
  const std::string golden = Fixture("fleet-poc-readme/readme-03-req-body.min.xml");
  ASSERT_EQ(golden.size(), 1495u);
  EXPECT_EQ(BuildGetPolicies(DemoPassword(), "https://mdmwindows.com/EnrollmentServer/Policy.svc",
                             "urn:uuid:72048B64-0F19-448F-8C2E-B4C661860AA0", kTokenId),
            golden);
}

TEST(Mde2Golden, RequestSecurityTokenIsByteForByteTheDevicesRequest) {
  const std::string golden = Fixture("fleet-poc-readme/readme-04-req-body.min.xml");
  ASSERT_EQ(golden.size(), 4295u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(golden, m, std::regex("#base64binary\">([^<]+)<")));
  EXPECT_EQ(BuildRequestSecurityToken(DemoPassword(), ReadmeDevice(), m[1].str(),
                                      "https://mdmwindows.com/EnrollmentServer/Enrollment.svc",
                                      "urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749", kTokenId),
            golden);
}

TEST(Mde2Golden, BinaryTokenCredentialKeepsPrefixAndAttributeOrder) {
  Credential c;
  c.kind = Credential::Kind::kBinaryToken;
  c.secret = SecretBytes(std::string_view("tok"));
  const std::string xml = BuildGetPolicies(c, "https://x/p", "urn:uuid:1", kTokenId);
  EXPECT_NE(xml.find("<wsse:Security s:mustUnderstand=\"1\"><wsse:BinarySecurityToken "
                     "ValueType=\"" +
                     std::string(kUserTokenType) +
                     "\" EncodingType=\"http://docs.oasis-open.org/wss/2004/01/"
                     "oasis-200401-wss-wssecurity-secext-1.0.xsd#base64binary\">dG9r<"),
            std::string::npos)
      << xml;
}

TEST(Mde2Answers, ParsesTheServersDiscoverPoliciesAndRst) {
  auto disc = ParseDiscoverResponse(Fixture("server-answers/02-discovery.xml"));
  ASSERT_TRUE(disc.ok()) << disc.status().ToString();
  EXPECT_EQ(disc->auth_policy, "OnPremise");
  EXPECT_EQ(disc->policy_url, "https://mdmwindows.com/EnrollmentServer/Policy.svc");
  EXPECT_EQ(disc->enrollment_url, "https://mdmwindows.com/EnrollmentServer/Enrollment.svc");
  auto pol = ParseGetPoliciesResponse(Fixture("server-answers/03-policy.xml"));
  ASSERT_TRUE(pol.ok()) << pol.status().ToString();
  EXPECT_EQ(pol->minimal_key_length, 2048);
  EXPECT_EQ(pol->hash_oid, "1.3.14.3.2.29");
  EXPECT_FALSE(pol->allows_ec);
  auto doc = ParseRstResponse(Fixture("server-answers/04-enroll.xml"));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(*doc, Fixture("server-answers/04-enroll-wap-provisioningdoc.xml"));
}

TEST(Mde2Answers, WrongAnswerAndFaultsAreErrors) {
  auto wrong = ParseDiscoverResponse(Fixture("server-answers/03-policy.xml"));
  EXPECT_EQ(wrong.status().code(), Code::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("DiscoverResponse"), std::string::npos);
  auto fault = ParseRstResponse(soap::BuildFault("s:Receiver", "s:certificaterequest", "no"));
  EXPECT_EQ(fault.status().code(), Code::kUnavailable);
  EXPECT_NE(fault.status().message().find("certificaterequest"), std::string::npos);
}

TEST(Mde2Csr, CarriesTheDeviceIdExtensionAndVerifies) {
  auto key = crypto::GenerateRsaPrivateKey(2048);
  ASSERT_TRUE(key.ok());
  auto der = BuildCsr(*key, "ABCDEF", "ABCDEF");
  ASSERT_TRUE(der.ok()) << der.status().ToString();
  const unsigned char* p = der->data();
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(req, nullptr);
  EVP_PKEY* pub = X509_REQ_get_pubkey(req);
  EXPECT_EQ(X509_REQ_verify(req, pub), 1);
  EXPECT_EQ(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  ASSERT_NE(exts, nullptr);
  ASSERT_EQ(sk_X509_EXTENSION_num(exts), 1);
  X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, 0);
  char oid[64];
  OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(ext), 1);
  EXPECT_STREQ(oid, kDeviceIdExtensionOid);
  ASN1_OCTET_STRING* v = X509_EXTENSION_get_data(ext);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                        static_cast<size_t>(ASN1_STRING_length(v))),
            "ABCDEF");
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  EVP_PKEY_free(pub);
  X509_REQ_free(req);
}

}  // namespace
}  // namespace dm::enroll
