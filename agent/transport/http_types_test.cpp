#include "agent/transport/http_types.h"

#include <gtest/gtest.h>

#include "agent/transport/https_client.h"

namespace dm::transport {
namespace {

TEST(HttpHeadersTest, NamesCompareCaseInsensitively) {
  HttpHeaders h = {{"Content-Type", "a"}, {"X-One", "1"}};
  EXPECT_EQ(FindHeader(h, "content-type"), "a");
  EXPECT_EQ(FindHeader(h, "X-Two"), std::nullopt);
  SetHeader(h, "CONTENT-TYPE", "b");
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(FindHeader(h, "Content-Type"), "b");
  SetHeader(h, "X-Two", "2");
  EXPECT_EQ(FindHeader(h, "x-two"), "2");
}

TEST(HttpStatusToStatusTest, MapsToActionableCodes) {
  auto code = [](int s) { return HttpStatusToStatus(HttpResponse{s, {}, ""}).code(); };
  EXPECT_EQ(code(200), Code::kOk);
  EXPECT_EQ(code(204), Code::kOk);
  EXPECT_EQ(code(302), Code::kFailedPrecondition);
  EXPECT_EQ(code(400), Code::kInvalidArgument);
  EXPECT_EQ(code(401), Code::kUnauthenticated);
  EXPECT_EQ(code(403), Code::kPermissionDenied);
  EXPECT_EQ(code(404), Code::kNotFound);
  EXPECT_EQ(code(413), Code::kResourceExhausted);
  EXPECT_EQ(code(429), Code::kUnavailable);
  EXPECT_EQ(code(503), Code::kUnavailable);
  Status s = HttpStatusToStatus(HttpResponse{500, {}, "database\r\nis down"});
  EXPECT_EQ(s.message(), "HTTP 500: database  is down");
}

TEST(ParseHttpsUrlTest, SplitsHostPortAndTarget) {
  auto u = ParseHttpsUrl("https://mdm.example.com/ManagementServer/MDM.svc?mode=Maintenance");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "mdm.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/ManagementServer/MDM.svc?mode=Maintenance");
  EXPECT_EQ(u->Authority(), "mdm.example.com");

  auto p = ParseHttpsUrl("HTTPS://127.0.0.1:8443");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host, "127.0.0.1");
  EXPECT_EQ(p->port, 8443);
  EXPECT_EQ(p->target, "/");
  EXPECT_EQ(p->Authority(), "127.0.0.1:8443");

  auto q = ParseHttpsUrl("https://h?x=1#frag");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->target, "/?x=1");

  auto v6 = ParseHttpsUrl("https://[::1]:4443/a");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 4443);
  EXPECT_EQ(v6->Authority(), "[::1]:4443");
}

TEST(ParseHttpsUrlTest, RejectsWhatItCannotSafelyUse) {
  for (const char* bad :
       {"http://mdm.example.com/", "ftp://x", "mdm.example.com", "https://", "https://:443/",
        "https://h:0/", "https://h:65536/", "https://h:abc/", "https://h:/", "https://user:pw@h/",
        "https://::1/", "https://[::1/", "https://h/a b", "https://[zz]/"}) {
    auto r = ParseHttpsUrl(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << bad;
    }
  }
  EXPECT_NE(ParseHttpsUrl("http://h/").error().message().find("plain http"), std::string::npos);
}

}  // namespace
}  // namespace dm::transport
