#include <gtest/gtest.h>

#include "container/container.h"
#include "container/container_internal.h"

namespace dm::container {
namespace {

bool Allowed(const std::vector<AllowedHost>& list, std::string_view url) {
  auto t = internal::ParseNavigationUrl(url);
  if (!t.ok()) return false;
  for (const auto& h : list) {
    if (h.host == t->host && h.port == t->port) return true;
  }
  return false;
}

TEST(WebSignInTest, ParsesBareHostsAndUrlsCaseInsensitively) {
  auto list = ParseWebSignInAllowList(
      " Signin.Contoso.com ; https://portal.contoso.com/adfs/ls?x=1;;login.microsoftonline.us;"
      "https://idp.contoso.com:8443/;signin.contoso.com");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);  // the duplicate is dropped
  EXPECT_EQ((*list)[0], (AllowedHost{"signin.contoso.com", 443}));
  EXPECT_EQ((*list)[1], (AllowedHost{"portal.contoso.com", 443}));
  EXPECT_EQ((*list)[2], (AllowedHost{"login.microsoftonline.us", 443}));
  EXPECT_EQ((*list)[3], (AllowedHost{"idp.contoso.com", 8443}));
  auto empty = ParseWebSignInAllowList("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(WebSignInTest, RefusesBadEntriesNamingThem) {
  for (const char* bad :
       {"http://signin.contoso.com", "*.contoso.com", "user@contoso.com", "contoso.com.",
        "con%74oso.com", "[::1]", "contoso.com:0", "contoso.com:99999", "contoso.com:", "-bad.com",
        "a..b.com", "127.1", "ftp://contoso.com", "cont oso.com", "caf\xc3\xa9.com"}) {
    auto r = ParseWebSignInAllowList(std::string("ok.com;") + bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ConfigureWebSignInAllowedUrls entry"), std::string::npos);
  }
}

TEST(WebSignInTest, ExactHostsAreAllowed) {
  auto list = ParseWebSignInAllowList("signin.contoso.com;idp.contoso.com:8443;10.1.2.3");
  ASSERT_TRUE(list.ok());
  for (const char* url :
       {"https://signin.contoso.com", "https://signin.contoso.com/", "HTTPS://SIGNIN.CONTOSO.COM/x",
        "https://signin.contoso.com/path?q=a@b.com#frag", "https://signin.contoso.com:443/",
        "https://idp.contoso.com:8443/adfs", "https://10.1.2.3/"}) {
    EXPECT_TRUE(Allowed(*list, url)) << url;
  }
}

TEST(WebSignInTest, AttackUrlsAreBlocked) {
  auto list = ParseWebSignInAllowList("allowed.com;signin.contoso.com");
  ASSERT_TRUE(list.ok());
  const char* attacks[] = {
      // user info: the real host is after the '@'
      "https://allowed.com@evil.com",
      "https://allowed.com@evil.com/",
      "https://allowed.com:443@evil.com",
      "https://user:pass@allowed.com/",
      "https://evil.com#@allowed.com",
      "https://evil.com?@allowed.com",
      "https://evil.com\\@allowed.com",
      "https://allowed.com\\@evil.com",
      // suffix / prefix / sub-domain look-alikes
      "https://evilallowed.com",
      "https://allowed.com.evil.com",
      "https://sub.allowed.com",
      "https://allowed.co",
      "https://allowed.comm",
      "https://llowed.com",
      // trailing dot, percent-encoding, whitespace and control characters
      "https://allowed.com./",
      "https://allowed%2ecom",
      "https://%61llowed.com",
      "https://allowed.com%2f@evil.com",
      "https://allowed.com%00.evil.com",
      "https://allo\twed.com",
      "https://allowed.com\n.evil.com",
      " https://allowed.com",
      // ports: only the listed (default 443) port
      "https://allowed.com:8443/",
      "https://allowed.com:0443/",
      "https://allowed.com:/",
      "https://allowed.com:443:80/",
      "https://allowed.com:65536/",
      // schemes and shapes that are not an absolute https URL
      "http://allowed.com/",
      "javascript://allowed.com/%0aalert(1)",
      "//allowed.com",
      "allowed.com",
      "https:/allowed.com",
      "https:///allowed.com",
      "https://",
      "data:text/html,<a href=https://allowed.com>",
      "file://allowed.com/etc/passwd",
      // numeric and IPv6 hosts, IDN look-alikes
      "https://[::1]/",
      "https://2130706433/",
      "https://0x7f.0.0.1/",
      "https://127.1/",
      "https://xn--llowed-5ve.com/",
      "https://\xd0\xb0llowed.com/",
  };
  for (const char* url : attacks) EXPECT_FALSE(Allowed(*list, url)) << url;
}

}  // namespace
}  // namespace dm::container
