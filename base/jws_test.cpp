#include "base/jws.h"

#include <gtest/gtest.h>

#include "base/crypto.h"
#include "base/pki.h"

namespace dm::jws {
namespace {

using nlohmann::json;

SecretBytes NewKey() {
  auto pair = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  EXPECT_TRUE(pair.ok());
  return pair.ok() ? std::move(pair->private_pem) : SecretBytes();
}

TEST(JwsTest, SignsAndVerifiesEs256) {
  SecretBytes key = NewKey();
  auto pub = crypto::PublicKeyPem(key);
  ASSERT_TRUE(pub.ok());
  auto token = SignEs256(key, {{"alg", "ES256"}, {"typ", "JWT"}}, {{"sub", "alice"}});
  ASSERT_TRUE(token.ok());
  auto parsed = Parse(*token);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->claims["sub"], "alice");
  EXPECT_TRUE(VerifyEs256(*parsed, *pub).ok());

  SecretBytes other = NewKey();
  EXPECT_EQ(VerifyEs256(*parsed, *crypto::PublicKeyPem(other)).code(), Code::kUnauthenticated);
}

TEST(JwsTest, RefusesOtherAlgorithmsAndTamperedClaims) {
  SecretBytes key = NewKey();
  const std::string none = SigningInput({{"alg", "none"}}, {{"sub", "alice"}}) + ".";
  EXPECT_EQ(Parse(none).status().code(), Code::kUnauthenticated);
  auto hs = SignEs256(key, {{"alg", "HS256"}}, {{"sub", "alice"}});
  ASSERT_TRUE(hs.ok());
  EXPECT_EQ(Parse(*hs).status().code(), Code::kUnauthenticated);

  auto token = SignEs256(key, {{"alg", "ES256"}}, {{"sub", "alice"}});
  ASSERT_TRUE(token.ok());
  const size_t dot1 = token->find('.'), dot2 = token->rfind('.');
  std::string forged = token->substr(0, dot1 + 1) +
                       crypto::Base64UrlEncode(crypto::AsBytes(json{{"sub", "mallory"}}.dump())) +
                       token->substr(dot2);
  auto parsed = Parse(forged);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(VerifyEs256(*parsed, *crypto::PublicKeyPem(key)).code(), Code::kUnauthenticated);
  EXPECT_EQ(Parse(std::string(kMaxTokenSize + 1, 'a')).status().code(), Code::kUnauthenticated);
}

}  // namespace
}  // namespace dm::jws
