#include "csp/uri.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dm::csp {
namespace {

struct Accept {
  std::string uri;
  UriScope scope;
  std::vector<std::string> segments;
  std::string canonical;
};

TEST(UriTest, AcceptsAndNormalises) {
  const Accept cases[] = {
      {"./Vendor/MSFT/Reboot",
       UriScope::kDevice,
       {"Vendor", "MSFT", "Reboot"},
       "./Device/Vendor/MSFT/Reboot"},
      {"./Device/Vendor/MSFT/Reboot",
       UriScope::kDevice,
       {"Vendor", "MSFT", "Reboot"},
       "./Device/Vendor/MSFT/Reboot"},
      {"./User/Vendor/MSFT/Policy",
       UriScope::kUser,
       {"Vendor", "MSFT", "Policy"},
       "./User/Vendor/MSFT/Policy"},
      {"./DevInfo/DevId", UriScope::kDevice, {"DevInfo", "DevId"}, "./Device/DevInfo/DevId"},
      {"./DevDetail/Ext/Microsoft/LocalTime",
       UriScope::kDevice,
       {"DevDetail", "Ext", "Microsoft", "LocalTime"},
       "./Device/DevDetail/Ext/Microsoft/LocalTime"},
      // Relative to the root (no leading "./").
      {"Vendor/MSFT/DMClient",
       UriScope::kDevice,
       {"Vendor", "MSFT", "DMClient"},
       "./Device/Vendor/MSFT/DMClient"},
      {".", UriScope::kDevice, {}, "./Device"},
      {"./User", UriScope::kUser, {}, "./User"},
      // Percent-decoding, and re-encoding in the canonical form.
      {"./Vendor/MSFT/DMClient/Provider/MS%20DM%20Server",
       UriScope::kDevice,
       {"Vendor", "MSFT", "DMClient", "Provider", "MS DM Server"},
       "./Device/Vendor/MSFT/DMClient/Provider/MS%20DM%20Server"},
      {"./Vendor/MSFT/DMClient/Provider/MS DM Server",
       UriScope::kDevice,
       {"Vendor", "MSFT", "DMClient", "Provider", "MS DM Server"},
       "./Device/Vendor/MSFT/DMClient/Provider/MS%20DM%20Server"},
      {"./Vendor/x%2fy", UriScope::kDevice, {"Vendor", "x/y"}, "./Device/Vendor/x%2Fy"},
      // UTF-8, encoded or raw.
      {"./Vendor/caf%C3%A9",
       UriScope::kDevice,
       {"Vendor", "caf\xC3\xA9"},
       "./Device/Vendor/caf%C3%A9"},
      {"./Vendor/caf\xC3\xA9",
       UriScope::kDevice,
       {"Vendor", "caf\xC3\xA9"},
       "./Device/Vendor/caf%C3%A9"},
      // Dots inside names are fine; sub-delimiters stay unencoded.
      {"./Vendor/a.b/c..d/x@y:z",
       UriScope::kDevice,
       {"Vendor", "a.b", "c..d", "x@y:z"},
       "./Device/Vendor/a.b/c..d/x@y:z"},
      {"./Vendor/{guid}", UriScope::kDevice, {"Vendor", "{guid}"}, "./Device/Vendor/%7Bguid%7D"},
  };
  for (const Accept& c : cases) {
    SCOPED_TRACE(c.uri);
    auto p = ParseUri(c.uri);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    EXPECT_EQ(p->scope, c.scope);
    EXPECT_EQ(p->segments, c.segments);
    EXPECT_EQ(p->canonical, c.canonical);
    // The canonical form parses to itself.
    auto again = ParseUri(p->canonical);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->canonical, c.canonical);
    EXPECT_EQ(again->segments, c.segments);
  }
}

TEST(UriTest, Rejects) {
  const std::string kLongSegment(kMaxSegmentBytes + 1, 'a');
  std::string deep = ".";
  for (size_t i = 0; i < kMaxDepth + 1; ++i) deep += "/n";
  std::string long_uri = "./Vendor";
  while (long_uri.size() <= kMaxUriBytes) long_uri += "/abcdefgh";
  const std::string cases[] = {
      "",
      "/Vendor/MSFT",       // leading '/'
      "./Vendor/MSFT/",     // trailing '/'
      "./",                 // trailing '/'
      "./Vendor//MSFT",     // empty segment
      "./Vendor/../MSFT",   // '..'
      "./Vendor/./MSFT",    // '.' after the leading one
      "./Vendor/%2E%2E/x",  // encoded '..'
      "./Vendor/%2e",       // encoded '.'
      "./Vendor/*",         // '*' alone
      "././Vendor",         // second '.'
      "./Vendor/a\x01"
      "b",                   // raw control character
      "./Vendor/a\x7f",      // DEL
      "./Vendor/a%0Ab",      // encoded control character
      "./Vendor/a%00",       // encoded NUL
      "./Vendor/a%zz",       // malformed escape
      "./Vendor/a%4",        // truncated escape
      "./Vendor/a%",         // truncated escape
      "./Vendor/%C3",        // truncated UTF-8
      "./Vendor/%C0%AF",     // overlong UTF-8
      "./Vendor/%ED%A0%80",  // UTF-16 surrogate
      "./Vendor/\xFF",       // not UTF-8
      "./Vendor/a#frag",     // fragment
      "./Vendor/%",          // lone '%'
      "./Vendor/" + kLongSegment,
      deep,
      long_uri,
  };
  for (const std::string& c : cases) {
    SCOPED_TRACE(c);
    auto p = ParseUri(c);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code(), Code::kInvalidArgument);
  }
}

TEST(UriTest, LimitsAreInclusive) {
  EXPECT_TRUE(ParseUri("./Vendor/" + std::string(kMaxSegmentBytes, 'a')).ok());
  std::string deep = ".";
  for (size_t i = 0; i < kMaxDepth; ++i) deep += "/n";
  EXPECT_TRUE(ParseUri(deep).ok());
  // The scope prefix does not count towards the depth.
  EXPECT_TRUE(ParseUri("./User" + deep.substr(1)).ok());
  // Exactly kMaxUriBytes: 20 segments of 100 bytes, the last one padded.
  std::string at_limit = ".";
  for (int i = 0; i < 20; ++i) at_limit += "/" + std::string(100, 'a');
  at_limit += std::string(kMaxUriBytes - at_limit.size(), 'b');
  ASSERT_EQ(at_limit.size(), kMaxUriBytes);
  EXPECT_TRUE(ParseUri(at_limit).ok());
  EXPECT_FALSE(ParseUri(at_limit + "b").ok());
}

TEST(UriTest, QueryIsUnimplemented) {
  auto p = ParseUri("./Vendor/MSFT/Policy/Config?list=StructData");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code(), Code::kUnimplemented);
}

TEST(UriTest, EncodeDecodeRoundTrip) {
  const std::string names[] = {"plain",       "MS DM Server", "a/b",  "100%",
                               "caf\xC3\xA9", "{x}",          "a?b#c"};
  for (const std::string& n : names) {
    std::string e = EncodeSegment(n);
    EXPECT_EQ(e.find('/'), std::string::npos) << n;
    auto d = DecodeSegment(e);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, n);
  }
  EXPECT_EQ(EncodeSegment("MS DM Server"), "MS%20DM%20Server");
  EXPECT_EQ(EncodeSegment("100%"), "100%25");
  EXPECT_EQ(JoinPath({"Vendor", "a/b"}), "Vendor/a%2Fb");
  EXPECT_EQ(CanonicalUri(UriScope::kUser, {"Vendor"}), "./User/Vendor");
}

}  // namespace
}  // namespace dm::csp
