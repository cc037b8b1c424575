#include "base/pki.h"

#include "base/crypto.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <string>

namespace dm::pki {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

constexpr auto kDay = hours(24);

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = CreateCa("dmagent Test Root", clock_.Now(), seconds(kDay * 3650));
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = std::move(ca).value();
  }

  IssueOptions DeviceOptions(std::string cn = "device-1234") {
    IssueOptions o;
    o.common_name = std::move(cn);
    o.not_before = clock_.Now();
    o.validity = seconds(kDay * 30);
    o.client_auth = true;
    return o;
  }

  std::string IssueDevice(const IssueOptions& o) {
    auto key = GenerateKeyPair(KeyType::kEcP256);
    EXPECT_TRUE(key.ok());
    auto cert = IssueForPublicKey(ca_, key->public_pem, o);
    EXPECT_TRUE(cert.ok()) << cert.status().ToString();
    return cert.value_or("");
  }

  FakeClock clock_;
  CertificateAuthority ca_;
};

TEST_F(PkiTest, GeneratesPkcs8KeysWhosePublicHalfMatches) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kRsa2048}) {
    auto pair = GenerateKeyPair(type);
    ASSERT_TRUE(pair.ok()) << pair.status().ToString();
    EXPECT_TRUE(pair->private_pem.view().starts_with("-----BEGIN PRIVATE KEY-----"));
    EXPECT_TRUE(pair->public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    auto pub = PublicKeyOf(pair->private_pem);
    ASSERT_TRUE(pub.ok());
    EXPECT_EQ(*pub, pair->public_pem);
  }
  auto a = GenerateKeyPair(KeyType::kEcP256);
  auto b = GenerateKeyPair(KeyType::kEcP256);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->public_pem, b->public_pem);
}

TEST_F(PkiTest, PemAndBase64DerRoundTrip) {
  const std::string b64 = PemBase64(ca_.cert_pem);
  ASSERT_FALSE(b64.empty());
  EXPECT_EQ(b64.find('\n'), std::string::npos);
  auto der = crypto::Base64Decode(b64);
  ASSERT_TRUE(der.ok());
  EXPECT_EQ(PemFromDer(*der, "CERTIFICATE"), ca_.cert_pem);  // OpenSSL's 64-column layout
  EXPECT_EQ(PemBase64("no PEM here"), "");
  const auto both = SplitCertificatePems("junk\n" + ca_.cert_pem + "between\n" + ca_.cert_pem);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0], ca_.cert_pem);
  EXPECT_TRUE(SplitCertificatePems("-----BEGIN CERTIFICATE-----\ntruncated").empty());
}

TEST_F(PkiTest, PublicKeyOfRejectsGarbage) {
  auto r = PublicKeyOf(SecretBytes(std::string_view("not a key")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
}

TEST_F(PkiTest, CaCertificateDescribesItself) {
  auto info = ParseCertificate(ca_.cert_pem);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->is_ca);
  EXPECT_EQ(info->subject_cn, "dmagent Test Root");
  EXPECT_EQ(info->issuer_cn, "dmagent Test Root");
  EXPECT_EQ(info->not_before, clock_.Now());
  EXPECT_EQ(info->not_after, clock_.Now() + kDay * 3650);
  EXPECT_EQ(info->thumbprint.size(), 40u);
  EXPECT_TRUE(std::all_of(info->thumbprint.begin(), info->thumbprint.end(),
                          [](char c) { return std::isdigit(c) || (c >= 'A' && c <= 'F'); }));
  auto pub = PublicKeyOf(ca_.key_pem);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(info->public_key_pem, *pub);
  EXPECT_TRUE(VerifyCertificate(ca_.cert_pem, ca_.cert_pem, clock_.Now() + hours(1)).ok());
}

TEST_F(PkiTest, IssuedCertificateChainsToItsCaAndCarriesOptions) {
  IssueOptions o = DeviceOptions();
  std::string cert = IssueDevice(o);
  auto info = ParseCertificate(cert);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->subject_cn, "device-1234");
  EXPECT_EQ(info->issuer_cn, "dmagent Test Root");
  EXPECT_EQ(info->not_after, clock_.Now() + kDay * 30);
  // 128 random bits with the top bit cleared and a non-zero first byte: 31 or 32 hex digits.
  EXPECT_GE(info->serial_hex.size(), 31u);
  EXPECT_LE(info->serial_hex.size(), 32u);

  Status ok = VerifyCertificate(cert, ca_.cert_pem, clock_.Now() + hours(1));
  EXPECT_TRUE(ok.ok()) << ok.ToString();
}

TEST_F(PkiTest, SerialsAreRandomPerCertificate) {
  auto a = ParseCertificate(IssueDevice(DeviceOptions()));
  auto b = ParseCertificate(IssueDevice(DeviceOptions()));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->serial_hex, b->serial_hex);
  EXPECT_NE(a->thumbprint, b->thumbprint);
}

TEST_F(PkiTest, ExpiredAndNotYetValidCertificatesFail) {
  std::string cert = IssueDevice(DeviceOptions());
  Status later = VerifyCertificate(cert, ca_.cert_pem, clock_.Now() + kDay * 31);
  EXPECT_EQ(later.code(), Code::kUnauthenticated);
  EXPECT_NE(later.message().find("expired"), std::string::npos) << later.message();

  Status earlier = VerifyCertificate(cert, ca_.cert_pem, clock_.Now() - hours(1));
  EXPECT_EQ(earlier.code(), Code::kUnauthenticated);
  EXPECT_NE(earlier.message().find("not yet valid"), std::string::npos) << earlier.message();
}

TEST_F(PkiTest, CertificateDoesNotChainToAnotherCa) {
  std::string cert = IssueDevice(DeviceOptions());
  auto other = CreateCa("Other Root", clock_.Now(), seconds(kDay * 365));
  ASSERT_TRUE(other.ok());
  Status s = VerifyCertificate(cert, other->cert_pem, clock_.Now() + hours(1));
  EXPECT_EQ(s.code(), Code::kUnauthenticated);
  EXPECT_NE(s.message().find("unable to get local issuer certificate"), std::string::npos)
      << s.message();
}

TEST_F(PkiTest, IssueFromCsrTakesSubjectFromOptionsAndKeyFromRequest) {
  auto key = GenerateKeyPair(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  auto csr = CreateCsr(key->private_pem, "Administrator");
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();
  EXPECT_TRUE(csr->starts_with("-----BEGIN CERTIFICATE REQUEST-----"));

  auto cert = IssueFromCsr(ca_, *csr, DeviceOptions("device-42"));
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  auto info = ParseCertificate(*cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "device-42");  // not "Administrator"
  EXPECT_EQ(info->public_key_pem, key->public_pem);
  EXPECT_TRUE(VerifyCertificate(*cert, ca_.cert_pem, clock_.Now() + hours(1)).ok());
}

// Re-encodes the CSR with one byte of its signed subject changed; the signature no longer covers
// what the request says, so the CA must refuse it.
std::string TamperCsr(const std::string& csr_pem, std::string_view needle) {
  BIO* in = BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size()));
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* der = nullptr;
  long len = 0;
  EXPECT_EQ(PEM_read_bio(in, &name, &header, &der, &len), 1);
  BIO_free(in);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  size_t at = bytes.find(needle);
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) bytes[at] ^= 0x01;
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio(out, name, header, reinterpret_cast<const unsigned char*>(bytes.data()),
                static_cast<long>(bytes.size()));
  char* p = nullptr;
  long n = BIO_get_mem_data(out, &p);
  std::string result(p, static_cast<size_t>(n));
  BIO_free(out);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(der);
  return result;
}

TEST_F(PkiTest, IssueFromCsrRejectsTamperedAndMalformedRequests) {
  auto key = GenerateKeyPair(KeyType::kRsa2048);
  ASSERT_TRUE(key.ok());
  auto csr = CreateCsr(key->private_pem, "device-77");
  ASSERT_TRUE(csr.ok());
  ASSERT_TRUE(IssueFromCsr(ca_, *csr, DeviceOptions()).ok());  // the untampered one is fine

  std::string tampered = TamperCsr(*csr, "device-77");
  ASSERT_NE(tampered, *csr);
  auto r = IssueFromCsr(ca_, tampered, DeviceOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("CSR signature does not verify"), std::string::npos)
      << r.error().message();

  auto garbage = IssueFromCsr(ca_, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", DeviceOptions());
  EXPECT_EQ(garbage.status().code(), Code::kInvalidArgument);
}

TEST_F(PkiTest, RejectsBadOptionsAndMismatchedCa) {
  auto key = GenerateKeyPair(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());

  IssueOptions empty_cn = DeviceOptions("");
  EXPECT_EQ(IssueForPublicKey(ca_, key->public_pem, empty_cn).status().code(),
            Code::kInvalidArgument);

  IssueOptions smuggled = DeviceOptions();
  smuggled.dns_names = {"a.example,DNS:evil.example"};
  EXPECT_EQ(IssueForPublicKey(ca_, key->public_pem, smuggled).status().code(),
            Code::kInvalidArgument);

  IssueOptions bad_ip = DeviceOptions();
  bad_ip.ip_addresses = {"300.1.1.1"};
  EXPECT_EQ(IssueForPublicKey(ca_, key->public_pem, bad_ip).status().code(),
            Code::kInvalidArgument);

  auto other = CreateCa("Other Root", clock_.Now(), seconds(kDay));
  ASSERT_TRUE(other.ok());
  CertificateAuthority mismatched{ca_.cert_pem, std::move(other->key_pem)};
  EXPECT_FALSE(IssueForPublicKey(mismatched, key->public_pem, DeviceOptions()).ok());

  // A leaf certificate is not allowed to act as an issuer.
  std::string leaf = IssueDevice(DeviceOptions());
  CertificateAuthority not_ca{leaf, key->private_pem.Clone()};
  EXPECT_FALSE(IssueForPublicKey(not_ca, key->public_pem, DeviceOptions()).ok());
}

TEST_F(PkiTest, SelfSignedCertificateNamesItsOwnIssuer) {
  auto key = GenerateKeyPair(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  IssueOptions o = DeviceOptions("self");
  auto cert = SelfSign(key->private_pem, o);
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  auto info = ParseCertificate(*cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "self");
  EXPECT_EQ(info->issuer_cn, "self");
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->public_key_pem, key->public_pem);
  // It does not chain to our CA.
  EXPECT_FALSE(VerifyCertificate(*cert, ca_.cert_pem, clock_.Now() + hours(1)).ok());
}

// --- Cross-checks against the openssl command line -----------------------------------------

bool HaveOpensslCli() { return std::system("openssl version >/dev/null 2>&1") == 0; }

struct CmdResult {
  int exit_code = -1;
  std::string output;
};

CmdResult RunCommand(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class PkiOpensslCliTest : public PkiTest {
 protected:
  void SetUp() override {
    if (!HaveOpensslCli()) GTEST_SKIP() << "openssl command line tool not on PATH";
    PkiTest::SetUp();
    std::string tmpl = ::testing::TempDir() + "pki_cli_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string Write(const std::string& name, std::string_view content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  static std::string AtTime(TimePoint t) { return std::to_string(ToUnixSeconds(t)); }

  std::string dir_;
};

TEST_F(PkiOpensslCliTest, OpensslVerifiesChainPurposeAndExpiry) {
  IssueOptions o = DeviceOptions();
  o.server_auth = true;
  o.client_auth = false;
  o.dns_names = {"dm.example.com"};
  o.ip_addresses = {"127.0.0.1"};
  std::string ca = Write("ca.pem", ca_.cert_pem);
  std::string leaf = Write("leaf.pem", IssueDevice(o));
  std::string base = "openssl verify -x509_strict -CAfile '" + ca + "' ";

  CmdResult ok = RunCommand(base + "-purpose sslserver -attime " + AtTime(clock_.Now() + hours(1)) +
                            " '" + leaf + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find(": OK"), std::string::npos) << ok.output;

  // extendedKeyUsage is serverAuth only, so openssl must refuse it as a TLS client cert.
  CmdResult wrong_purpose = RunCommand(base + "-purpose sslclient -attime " +
                                       AtTime(clock_.Now() + hours(1)) + " '" + leaf + "'");
  EXPECT_NE(wrong_purpose.exit_code, 0) << wrong_purpose.output;

  CmdResult expired =
      RunCommand(base + "-attime " + AtTime(clock_.Now() + kDay * 31) + " '" + leaf + "'");
  EXPECT_NE(expired.exit_code, 0) << expired.output;
  EXPECT_NE(expired.output.find("expired"), std::string::npos) << expired.output;

  CmdResult host = RunCommand("openssl x509 -noout -in '" + leaf +
                              "' -checkhost dm.example.com -checkip 127.0.0.1");
  EXPECT_EQ(host.exit_code, 0) << host.output;
  EXPECT_NE(host.output.find("Hostname dm.example.com does match"), std::string::npos)
      << host.output;
  EXPECT_NE(host.output.find("IP 127.0.0.1 does match"), std::string::npos) << host.output;
}

TEST_F(PkiOpensslCliTest, ThumbprintAndSerialMatchOpenssl) {
  std::string cert = IssueDevice(DeviceOptions());
  auto info = ParseCertificate(cert);
  ASSERT_TRUE(info.ok());
  std::string path = Write("leaf.pem", cert);
  CmdResult fp = RunCommand("openssl x509 -noout -fingerprint -sha1 -serial -in '" + path + "'");
  ASSERT_EQ(fp.exit_code, 0) << fp.output;
  std::string colon_free = fp.output;
  colon_free.erase(std::remove(colon_free.begin(), colon_free.end(), ':'), colon_free.end());
  EXPECT_NE(colon_free.find(info->thumbprint), std::string::npos) << fp.output;
  EXPECT_NE(fp.output.find("serial=" + info->serial_hex), std::string::npos) << fp.output;
}

// The CRL a dmserver CA signs is what `openssl verify -crl_check` takes: the listed serial is
// revoked, another certificate of the CA verifies, and a bad serial or a stranger's CA key is
// refused when the CRL is made.
TEST_F(PkiOpensslCliTest, OpensslChecksOurCrl) {
  const std::string revoked = IssueDevice(DeviceOptions("device-revoked"));
  const std::string kept = IssueDevice(DeviceOptions("device-kept"));
  auto info = ParseCertificate(revoked);
  ASSERT_TRUE(info.ok());
  auto crl = CreateCrl(ca_, {info->serial_hex}, clock_.Now(), kDay * 7, 42);
  ASSERT_TRUE(crl.ok()) << crl.status().ToString();
  const std::string ca = Write("ca.pem", ca_.cert_pem);
  const std::string crl_path = Write("crl.pem", *crl);
  const std::string base = "openssl verify -crl_check -CAfile '" + ca + "' -CRLfile '" + crl_path +
                           "' -attime " + AtTime(clock_.Now() + hours(1)) + " ";
  CmdResult bad = RunCommand(base + "'" + Write("revoked.pem", revoked) + "'");
  EXPECT_NE(bad.exit_code, 0) << bad.output;
  EXPECT_NE(bad.output.find("certificate revoked"), std::string::npos) << bad.output;
  CmdResult good = RunCommand(base + "'" + Write("kept.pem", kept) + "'");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  CmdResult stale = RunCommand("openssl verify -crl_check -CAfile '" + ca + "' -CRLfile '" +
                               crl_path + "' -attime " + AtTime(clock_.Now() + kDay * 8) + " '" +
                               Write("kept2.pem", kept) + "'");
  EXPECT_NE(stale.exit_code, 0) << stale.output;
  EXPECT_NE(stale.output.find("CRL has expired"), std::string::npos) << stale.output;
  CmdResult text = RunCommand("openssl crl -noout -text -in '" + crl_path + "'");
  EXPECT_NE(text.output.find("X509v3 CRL Number"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("42"), std::string::npos) << text.output;

  EXPECT_EQ(CreateCrl(ca_, {"not-hex"}, clock_.Now(), kDay, 1).status().code(),
            Code::kInvalidArgument);
  auto other = CreateCa("Other Root", clock_.Now(), kDay);
  ASSERT_TRUE(other.ok());
  CertificateAuthority mixed{ca_.cert_pem, other->key_pem.Clone()};
  EXPECT_EQ(CreateCrl(mixed, {}, clock_.Now(), kDay, 1).status().code(), Code::kInvalidArgument);
}

TEST_F(PkiOpensslCliTest, OpensslAcceptsOurCsr) {
  auto key = GenerateKeyPair(KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  auto csr = CreateCsr(key->private_pem, "device-9");
  ASSERT_TRUE(csr.ok());
  std::string path = Write("req.pem", *csr);
  CmdResult r = RunCommand("openssl req -noout -verify -subject -in '" + path + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CN = device-9"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace dm::pki
