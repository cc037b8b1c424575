#include "agent/enroll/soap.h"

#include <gtest/gtest.h>

#include "agent/enroll/fixture_for_tests.h"

#include <fstream>
#include <sstream>

namespace dm::soap {
namespace {

std::string Fixture(const std::string& rel) { return enroll::MsMde2Fixture(rel); }

TEST(Soap, BuildsTheDiscoverHeaderByteForByte) {
  Addressing a;
  a.action =
      "http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/"
      "Discover";
  a.message_id = "urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478";
  a.reply_to_anonymous = true;
  a.to = "https://EnterpriseEnrollment.mdmwindows.com:443/EnrollmentServer/Discovery.svc";
  Envelope env(AddressingNamespaces(), a);
  const std::string xml = env.Serialize();
  const std::string golden = Fixture("fleet-poc-readme/readme-02-req-body.min.xml");
  ASSERT_FALSE(golden.empty());
  const std::string head = golden.substr(0, golden.find("<s:Body>"));
  EXPECT_EQ(xml.substr(0, head.size()), head);
}

TEST(Soap, ParsesByNamespaceNotPrefix) {
  const std::string xml =
      "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\" "
      "xmlns:w=\"http://www.w3.org/2005/08/addressing\"><e:Header><w:Action>act</w:Action>"
      "<w:MessageID> urn:uuid:1 </w:MessageID><s:Action xmlns:s=\"urn:other\">no</s:Action>"
      "</e:Header><e:Body><X xmlns=\"urn:x\"><Y>1</Y></X></e:Body></e:Envelope>";
  auto m = Message::Parse(xml);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->addressing().action, "act");
  EXPECT_EQ(m->addressing().message_id, "urn:uuid:1");
  ASSERT_NE(m->payload(), nullptr);
  EXPECT_TRUE(Is(m->payload(), "urn:x", "X"));
  EXPECT_EQ(Text(Child(m->payload(), "urn:x", "Y")), "1");
  EXPECT_EQ(m->fault(), nullptr);
}

TEST(Soap, RefusesNonSoapGarbageAndLimits) {
  EXPECT_EQ(Message::Parse("<a/>").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Message::Parse("not xml").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Message::Parse(std::string(2000, ' '), Limits{1000, 32}).status().code(),
            Code::kResourceExhausted);
  std::string deep = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>";
  for (int i = 0; i < 40; ++i) deep += "<x>";
  for (int i = 0; i < 40; ++i) deep += "</x>";
  deep += "</s:Body></s:Envelope>";
  EXPECT_EQ(Message::Parse(deep).status().code(), Code::kResourceExhausted);
}

TEST(Soap, FaultRoundTripsToStatus) {
  const std::string xml = BuildFault("s:Receiver", "s:authentication", "bad password");
  auto m = Message::Parse(xml);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_NE(m->fault(), nullptr);
  EXPECT_EQ(m->fault()->code, "Receiver");
  EXPECT_EQ(m->fault()->subcode, "authentication");
  Status st = FaultToStatus(*m->fault());
  EXPECT_EQ(st.code(), Code::kUnauthenticated);
  EXPECT_NE(st.message().find("bad password"), std::string::npos);
}

TEST(Soap, MessageIdsAreUuidV4) {
  crypto::DeterministicRandom r(7);
  auto id = NewMessageId(r);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->size(), 9u + 36u);
  EXPECT_EQ(id->substr(0, 9), "urn:uuid:");
  EXPECT_EQ((*id)[9 + 14], '4');
}

}  // namespace
}  // namespace dm::soap
