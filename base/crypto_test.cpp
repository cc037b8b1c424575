#include "base/crypto.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace dm::crypto {
namespace {

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string Hex(const Result<Bytes>& r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? HexEncode(*r) : std::string();
}

// pki::GenerateKeyPair is the project's way; the crypto test stays independent of pki.
SecretBytes GenerateEcKeyForTest() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  EXPECT_NE(key, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  SecretBytes out(reinterpret_cast<const uint8_t*>(p), static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return out;
}

SecretBytes Key32(uint8_t fill) {
  SecretBytes k(kAesKeySize);
  for (size_t i = 0; i < k.size(); ++i) k.data()[i] = static_cast<uint8_t>(fill + i);
  return k;
}

TEST(CryptoTest, Sha256AndSha1KnownAnswers) {
  EXPECT_EQ(Hex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha1(AsBytes("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(CryptoTest, HmacKnownAnswersRfc4231AndRfc2202) {
  EXPECT_EQ(Hex(HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Hex(HmacSha1(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(CryptoTest, ScryptKnownAnswerRfc7914) {
  SecretBytes password(std::string_view("password"));
  auto out = Scrypt(password, AsBytes("NaCl"), {1024, 8, 16}, 64);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(HexEncode(out->span()),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff1"
            "09279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

TEST(CryptoTest, ScryptStrongDefaultRunsAndSaltMatters) {
  SecretBytes pin(std::string_view("1234"));
  Bytes salt1(16, 1), salt2(16, 2);
  auto a = Scrypt(pin, salt1, ScryptParams::Strong());
  auto b = Scrypt(pin, salt1, ScryptParams::Strong());
  auto c = Scrypt(pin, salt2, ScryptParams::Strong());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_TRUE(*a == *b);
  EXPECT_FALSE(*a == *c);
}

TEST(CryptoTest, ScryptRejectsBadParameters) {
  SecretBytes pin(std::string_view("1234"));
  Bytes salt(16, 1);
  EXPECT_EQ(Scrypt(pin, salt, {1000, 8, 1}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Scrypt(pin, salt, {1024, 0, 1}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Scrypt(pin, salt, {uint64_t{1} << 30, 8, 1}).status().code(), Code::kInvalidArgument);
}

TEST(CryptoTest, AesGcmRoundTripAndLayout) {
  SecretBytes key = Key32(7);
  auto sealed = Seal(key, AsBytes("master key bytes"), "ctx");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->size(), kGcmNonceSize + 16 + kGcmTagSize);
  auto opened = Open(key, *sealed, "ctx");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->view(), "master key bytes");
  // A fresh nonce each time: the same plaintext never seals to the same bytes.
  auto again = Seal(key, AsBytes("master key bytes"), "ctx");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sealed);
}

TEST(CryptoTest, AesGcmRejectsWrongKeyContextAndTampering) {
  SecretBytes key = Key32(7);
  auto sealed = Seal(key, AsBytes("secret"), "user=alice");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(Open(Key32(8), *sealed, "user=alice").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(Open(key, *sealed, "user=bob").status().code(), Code::kUnauthenticated);
  for (size_t i : {size_t{0}, kGcmNonceSize, sealed->size() - 1}) {
    Bytes bad = *sealed;
    bad[i] ^= 0x01;
    EXPECT_EQ(Open(key, bad, "user=alice").status().code(), Code::kUnauthenticated) << i;
  }
  EXPECT_EQ(Open(key, Bytes(10), "user=alice").status().code(), Code::kCorruption);
  EXPECT_EQ(Seal(SecretBytes(16), AsBytes("x"), "").status().code(), Code::kInvalidArgument);
}

TEST(CryptoTest, AesGcmEmptyPlaintext) {
  SecretBytes key = Key32(1);
  auto sealed = Seal(key, {}, "ad");
  ASSERT_TRUE(sealed.ok());
  auto opened = Open(key, *sealed, "ad");
  ASSERT_TRUE(opened.ok());
  EXPECT_TRUE(opened->empty());
}

TEST(CryptoTest, DeterministicRandomIsReproducible) {
  DeterministicRandom a(42), b(42), c(43);
  Bytes x(70), y(70), z(70);
  ASSERT_TRUE(a.Fill(x).ok());
  ASSERT_TRUE(b.Fill(y).ok());
  ASSERT_TRUE(c.Fill(z).ok());
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
  Bytes next(70);
  ASSERT_TRUE(a.Fill(next).ok());
  EXPECT_NE(next, x);
}

TEST(CryptoTest, OsRandomProducesDistinctSecrets) {
  auto a = OsRandom().Secret(32);
  auto b = OsRandom().Secret(32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(*a == *b);
}

TEST(CryptoTest, HotpAndTotpKnownAnswersRfc4226Rfc6238) {
  SecretBytes secret(std::string_view("12345678901234567890"));
  const char* hotp[] = {"755224", "287082", "359152", "969429", "338314"};
  for (uint64_t i = 0; i < 5; ++i) {
    auto code = Hotp(secret, i);
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, hotp[i]);
  }
  struct {
    int64_t t;
    const char* code;
  } totp[] = {{59, "94287082"},
              {1111111109, "07081804"},
              {1234567890, "89005924"},
              {2000000000, "69279037"}};
  for (const auto& v : totp) {
    auto code = Totp(secret, FromUnixSeconds(v.t), std::chrono::seconds(30), 8);
    ASSERT_TRUE(code.ok());
    EXPECT_EQ(*code, v.code) << v.t;
  }
}

TEST(CryptoTest, HexAndBase64) {
  EXPECT_EQ(HexEncode(B("\x01\xab")), "01ab");
  EXPECT_EQ(HexEncode(B("\x01\xab"), true), "01AB");
  auto dec = HexDecode("01aB");
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(*dec, B("\x01\xab"));
  EXPECT_FALSE(HexDecode("0").ok());
  EXPECT_FALSE(HexDecode("zz").ok());

  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(Base64Encode(AsBytes(plain[i])), enc[i]);
    auto d = Base64Decode(enc[i]);
    ASSERT_TRUE(d.ok()) << enc[i];
    EXPECT_EQ(*d, B(plain[i]));
  }
  EXPECT_FALSE(Base64Decode("Zg=").ok());
  EXPECT_FALSE(Base64Decode("Zh==").ok());  // non-canonical trailing bits
  EXPECT_FALSE(Base64Decode("Z===").ok());
  EXPECT_FALSE(Base64Decode("Zm9v\n").ok());
  EXPECT_FALSE(Base64Decode("Zg==Zg==").ok());
}

TEST(CryptoTest, EcdsaSignVerify) {
  SecretBytes priv = GenerateEcKeyForTest();
  auto pub = PublicKeyPem(priv);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  auto sig = EcdsaSign(priv, AsBytes("challenge"));
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ((*sig)[0], 0x30);  // DER SEQUENCE
  EXPECT_TRUE(EcdsaVerify(*pub, AsBytes("challenge"), *sig).ok());
  EXPECT_EQ(EcdsaVerify(*pub, AsBytes("challengE"), *sig).code(), Code::kUnauthenticated);
  Bytes bad = *sig;
  bad.back() ^= 1;
  EXPECT_EQ(EcdsaVerify(*pub, AsBytes("challenge"), bad).code(), Code::kUnauthenticated);
}

TEST(CryptoTest, Base64Url) {
  EXPECT_EQ(Base64UrlEncode(B("\xfb\xff")), "-_8");
  auto d = Base64UrlDecode("-_8");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, B("\xfb\xff"));
  EXPECT_FALSE(Base64UrlDecode("+/8").ok());
  EXPECT_FALSE(Base64UrlDecode("Zg==").ok());
  EXPECT_FALSE(Base64UrlDecode("Z").ok());
}

TEST(CryptoTest, LooksLikeJwtIsAboutShapeOnly) {
  EXPECT_TRUE(LooksLikeJwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
  EXPECT_FALSE(LooksLikeJwt("0123456789abcdef0123456789abcdef"));  // a bulk token
  EXPECT_FALSE(LooksLikeJwt("eyJhbGci.eyJzdWIi"));                 // two parts
  EXPECT_FALSE(LooksLikeJwt("eyJhbGci.eyJz+dWIi.c2ln"));           // not base64url
  EXPECT_FALSE(LooksLikeJwt("abc.def.ghi"));                       // no JSON header
}

TEST(CryptoTest, EcdsaRawFormRoundTripsAndVerifies) {
  SecretBytes priv = GenerateEcKeyForTest();
  auto pub = PublicKeyPem(priv);
  ASSERT_TRUE(pub.ok());
  auto der = EcdsaSign(priv, AsBytes("jws"));
  ASSERT_TRUE(der.ok());
  auto raw = EcdsaDerToRaw(*der);
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_EQ(raw->size(), 64u);
  auto back = EcdsaRawToDer(*raw);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(EcdsaVerify(*pub, AsBytes("jws"), *back).ok());
  EXPECT_FALSE(EcdsaRawToDer(std::span<const uint8_t>(raw->data(), 63)).ok());
  EXPECT_FALSE(EcdsaDerToRaw(B("\x30\x00junk")).ok());
}

class RsaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto k = GenerateRsaPrivateKey(2048);
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    key_ = new SecretBytes(std::move(*k));
  }
  static void TearDownTestSuite() {
    delete key_;
    key_ = nullptr;
  }
  static SecretBytes* key_;
};
SecretBytes* RsaTest::key_ = nullptr;

TEST_F(RsaTest, OaepRoundTripAndWrongKey) {
  auto pub = PublicKeyPem(*key_);
  ASSERT_TRUE(pub.ok());
  EXPECT_NE(pub->find("BEGIN PUBLIC KEY"), std::string::npos);
  Bytes msg(32, 0x5a);
  auto ct = RsaOaepEncrypt(*pub, msg);
  ASSERT_TRUE(ct.ok()) << ct.status().ToString();
  EXPECT_EQ(ct->size(), 256u);
  auto pt = RsaOaepDecrypt(*key_, *ct);
  ASSERT_TRUE(pt.ok()) << pt.status().ToString();
  EXPECT_EQ(Bytes(pt->data(), pt->data() + pt->size()), msg);

  auto other = GenerateRsaPrivateKey(2048);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(RsaOaepDecrypt(*other, *ct).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(RsaOaepEncrypt("not a key", msg).status().code(), Code::kInvalidArgument);
}

// The ciphertext is standard OAEP(SHA-256, MGF1-SHA-256): the openssl CLI decrypts it.
TEST_F(RsaTest, OaepInteroperatesWithOpensslPkeyutl) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
  std::string dir_tmpl = ::testing::TempDir() + "crypto-oaep-XXXXXX";
  ASSERT_NE(mkdtemp(dir_tmpl.data()), nullptr);
  std::filesystem::path dir = dir_tmpl;
  auto pub = PublicKeyPem(*key_);
  ASSERT_TRUE(pub.ok());
  Bytes msg(32);
  ASSERT_TRUE(OsRandom().Fill(msg).ok());
  auto ct = RsaOaepEncrypt(*pub, msg);
  ASSERT_TRUE(ct.ok());
  {
    std::ofstream(dir / "k.pem") << key_->view();
    std::ofstream(dir / "ct.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(ct->data()), static_cast<std::streamsize>(ct->size()));
  }
  std::string cmd = "openssl pkeyutl -decrypt -inkey " + (dir / "k.pem").string() + " -in " +
                    (dir / "ct.bin").string() +
                    " -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256"
                    " -pkeyopt rsa_mgf1_md:sha256 | od -An -tx1 | tr -d ' \\n'";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  pclose(f);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(out, HexEncode(msg));
}

}  // namespace
}  // namespace dm::crypto
