#include "agent/syncml/codec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/syncml/decode_internal.h"

namespace dm::syncml {

// Readable failure output: a message prints as its pretty encoding.
void PrintTo(const Message& m, std::ostream* os) { *os << "\n" << Encode(m, {.pretty = true}); }

namespace {

bool HasCommandErrors(const std::vector<Command>& commands) {
  for (const Command& c : commands) {
    if (!c.error.empty() || HasCommandErrors(c.children)) return true;
  }
  return false;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << p;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path RepoFixture(const std::string& rel) {
  return std::filesystem::path(DMAGENT_SOURCE_DIR) / "tests" / "fixtures" / rel;
}

// The fixture as the repository carries it; when the team's shared copy is beside the repo,
// both must be the same bytes (the repo copy is the one that must not drift).
std::string Fixture(const std::string& rel) {
  std::string repo = ReadFile(RepoFixture(rel));
  const auto shared =
      std::filesystem::path(DMAGENT_SOURCE_DIR) / ".." / "shared" / "fixtures" / rel;
  if (std::filesystem::exists(shared)) {
    EXPECT_EQ(ReadFile(shared), repo) << rel;
  }
  return repo;
}

Message MustDecode(std::string_view xml) {
  Result<Message> m = Decode(xml);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : Message{};
}

std::string Wrap(std::string_view body, std::string_view hdr_extra = "") {
  std::string s =
      "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto>"
      "<SessionID>7</SessionID><MsgID>3</MsgID><Target><LocURI>dev-1</LocURI></Target>"
      "<Source><LocURI>https://mdm.example/s</LocURI></Source>";
  s += hdr_extra;
  s += "</SyncHdr><SyncBody>";
  s += body;
  s += "</SyncBody></SyncML>";
  return s;
}

// Decode -> Encode -> Decode is the identity on the model, in both output styles.
void ExpectModelRoundTrip(const Message& m) {
  for (bool pretty : {false, true}) {
    const std::string xml = Encode(m, {.pretty = pretty});
    Result<Message> again = Decode(xml);
    ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << xml;
    EXPECT_EQ(*again, m) << xml;
  }
}

// ---- real device capture ---------------------------------------------------------------

TEST(CodecFixture, ClientPackage1MatchesTheCaptureByteForByte) {
  for (const char* name : {"windows10-capture/session1-client-pkg1.xml",
                           "windows10-capture/session2-client-pkg1-unenroll.xml"}) {
    const std::string xml = Fixture(name);
    const Message m = MustDecode(xml);
    EXPECT_EQ(Encode(m, {.pretty = true}), xml) << name;
    ExpectModelRoundTrip(m);
  }
}

TEST(CodecFixture, ClientPackage1Content) {
  const Message m = MustDecode(Fixture("windows10-capture/session1-client-pkg1.xml"));
  EXPECT_EQ(m.header.ver_dtd, "1.2");
  EXPECT_EQ(m.header.ver_proto, "DM/1.2");
  EXPECT_EQ(m.header.session_id, "1");
  EXPECT_EQ(m.header.msg_id, "1");
  EXPECT_EQ(m.header.target.loc_uri, "https://windows.fleetdm.ngrok.io/ManagementServer/MDM.svc");
  EXPECT_EQ(m.header.source.loc_uri, "B5B954E81FBCB94EB79BD08BE625F4EE");
  EXPECT_FALSE(m.header.meta.has_value());
  EXPECT_TRUE(m.final);
  ASSERT_EQ(m.commands.size(), 3u);
  EXPECT_EQ(m.commands[0].type, CommandType::kAlert);
  EXPECT_EQ(m.commands[0].cmd_id, "2");
  EXPECT_EQ(m.commands[0].data, "1201");
  EXPECT_TRUE(m.commands[0].items.empty());
  const Command& login = m.commands[1];
  EXPECT_EQ(login.data, "1224");
  ASSERT_EQ(login.items.size(), 1u);
  ASSERT_TRUE(login.items[0].meta.has_value());
  EXPECT_EQ(login.items[0].meta->type, "com.microsoft/MDM/LoginStatus");
  EXPECT_EQ(login.items[0].data->text, "user");
  const Command& rep = m.commands[2];
  EXPECT_EQ(rep.type, CommandType::kReplace);
  EXPECT_EQ(rep.cmd_id, "4");
  ASSERT_EQ(rep.items.size(), 5u);
  EXPECT_EQ(rep.items[1].source->loc_uri, "./DevInfo/Man");
  EXPECT_EQ(rep.items[1].data->text, "VMware, Inc.");
  EXPECT_FALSE(rep.items[1].target.has_value());
  for (const Command& c : m.commands) EXPECT_EQ(c.error, "") << c.name;
}

TEST(CodecFixture, UnenrollGenericAlert) {
  const Message m = MustDecode(Fixture("windows10-capture/session2-client-pkg1-unenroll.xml"));
  EXPECT_EQ(m.header.session_id, "2");
  ASSERT_EQ(m.commands.size(), 4u);
  const Command& ga = m.commands[2];
  EXPECT_EQ(ga.data, "1226");
  ASSERT_EQ(ga.items.size(), 1u);
  EXPECT_EQ(ga.items[0].meta->type, "com.microsoft:mdm.unenrollment.userrequest");
  EXPECT_EQ(ga.items[0].meta->format, "int");
  EXPECT_EQ(ga.items[0].data->text, "1");
}

TEST(CodecFixture, ServerPackage2) {
  const std::string xml = Fixture("windows10-capture/session1-server-pkg2.xml");
  const Message m = MustDecode(xml);
  EXPECT_EQ(m.header.target.loc_uri, "B5B954E81FBCB94EB79BD08BE625F4EE");
  EXPECT_TRUE(m.final);
  ASSERT_EQ(m.commands.size(), 4u);
  const char* cmds[] = {"SyncHdr", "Alert", "Alert", "Replace"};
  const char* refs[] = {"0", "2", "3", "4"};
  for (size_t i = 0; i < 4; ++i) {
    const Command& s = m.commands[i];
    EXPECT_EQ(s.type, CommandType::kStatus);
    EXPECT_EQ(s.cmd_id, std::to_string(i + 1));
    EXPECT_EQ(s.msg_ref, "1");
    EXPECT_EQ(s.cmd_ref, refs[i]);
    EXPECT_EQ(s.cmd, cmds[i]);
    EXPECT_EQ(s.data, "200");
  }
  // The capture differs from our output only by "<Final />" (a server's spelling).
  std::string expected = xml;
  expected.replace(expected.find("<Final />"), 9, "<Final/>");
  EXPECT_EQ(Encode(m, {.pretty = true, .xml_declaration = true}), expected);
  ExpectModelRoundTrip(m);
}

// ---- MS-MDM section 4 example exchange -------------------------------------------------

TEST(CodecMsMdmExample, Exchange) {
  const Message p1 = MustDecode(Fixture("msmdm-examples/client-pkg1.xml"));
  ASSERT_EQ(p1.commands.size(), 2u);
  EXPECT_EQ(p1.commands[1].items.size(), 5u);
  ExpectModelRoundTrip(p1);

  const Message p2 = MustDecode(Fixture("msmdm-examples/server-pkg2.xml"));
  ASSERT_EQ(p2.commands.size(), 3u);
  EXPECT_EQ(p2.commands[1].type, CommandType::kGet);
  EXPECT_EQ(p2.commands[1].items[0].target->loc_uri, "./DevDetail/SwV");
  EXPECT_FALSE(p2.commands[1].items[0].data.has_value());
  EXPECT_EQ(p2.commands[2].items[0].target->loc_uri, "./DevDetail/HwV");
  ExpectModelRoundTrip(p2);

  const Message p3 = MustDecode(Fixture("msmdm-examples/client-pkg3.xml"));
  ASSERT_EQ(p3.commands.size(), 5u);
  const Command& r = p3.commands[3];
  EXPECT_EQ(r.type, CommandType::kResults);
  EXPECT_EQ(r.msg_ref, "1");
  EXPECT_EQ(r.cmd_ref, "4");
  EXPECT_EQ(r.cmd, "Get");
  EXPECT_EQ(r.items[0].source->loc_uri, "./DevDetail/SwV");
  EXPECT_EQ(r.items[0].meta->format, "chr");
  EXPECT_EQ(r.items[0].data->text, "[software version]");
  ExpectModelRoundTrip(p3);
  // The encoder writes Results children in the MS-MDM order.
  const std::string out = Encode(p3);
  EXPECT_NE(out.find("<Results><CmdID>4</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef><Cmd>Get</Cmd>"
                     "<Item><Source><LocURI>./DevDetail/SwV</LocURI></Source><Meta><Format "
                     "xmlns=\"syncml:metinf\">chr</Format></Meta><Data>[software version]</Data>"
                     "</Item></Results>"),
            std::string::npos)
      << out;
}

// ---- features ----------------------------------------------------------------------------

TEST(Codec, UuidCmdIdsAndHeaderMeta) {
  const Message m = MustDecode(Wrap(
      "<Atomic><CmdID>6f3c2a8e-7d61-4a53-9c1e-0e6f7a1b2c3d</CmdID>"
      "<Replace><CmdID>0b9d3f57-aaaa-4bbb-8ccc-123456789abc</CmdID><Item><Target><LocURI>./Device/"
      "Vendor/MSFT/Policy/Config/DeviceLock/MinDevicePasswordLength</LocURI></Target><Meta><Format "
      "xmlns=\"syncml:metinf\">int</Format></Meta><Data>6</Data></Item></Replace></Atomic>",
      "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">524288</MaxMsgSize>"
      "<MaxObjSize xmlns=\"syncml:metinf\">1048576</MaxObjSize></Meta>"
      "<RespURI>https://mdm.example/s?x=1&amp;y=2</RespURI>"));
  ASSERT_TRUE(m.header.meta.has_value());
  EXPECT_EQ(m.header.meta->max_msg_size, 524288u);
  EXPECT_EQ(m.header.meta->max_obj_size, 1048576u);
  EXPECT_EQ(m.header.resp_uri, "https://mdm.example/s?x=1&y=2");
  ASSERT_EQ(m.commands.size(), 1u);
  EXPECT_EQ(m.commands[0].cmd_id, "6f3c2a8e-7d61-4a53-9c1e-0e6f7a1b2c3d");
  EXPECT_EQ(m.commands[0].children.at(0).cmd_id, "0b9d3f57-aaaa-4bbb-8ccc-123456789abc");
  EXPECT_FALSE(m.final);  // no Final: accepted
  ExpectModelRoundTrip(m);
}

TEST(Codec, MetInfNamespaceSpellings) {
  const Message m = MustDecode(
      Wrap("<Add><CmdID>1</CmdID>"
           "<Item><Target><LocURI>./a</LocURI></Target><Meta><Format xmlns=\"syncml:metinf\">int</"
           "Format><Type xmlns=\"syncml:metinf\">text/plain</Type></Meta><Data>1</Data></Item>"
           "<Item><Target><LocURI>./b</LocURI></Target><Meta xmlns=\"syncml:metinf\"><Format>bool</"
           "Format><Type>text/plain</Type></Meta><Data>true</Data></Item>"
           "<Item><Target><LocURI>./c</LocURI></Target><Meta><A:Format "
           "xmlns:A=\"syncml:metinf\">b64</A:Format><A:Type xmlns:A=\"syncml:metinf\">application/"
           "octet-stream</A:Type></Meta><Data>AAE=</Data></Item></Add>"));
  const auto& items = m.commands.at(0).items;
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].meta->format, "int");
  EXPECT_EQ(items[1].meta->format, "bool");
  EXPECT_EQ(items[1].meta->type, "text/plain");
  EXPECT_EQ(items[2].meta->format, "b64");
  EXPECT_EQ(items[2].meta->type, "application/octet-stream");
  EXPECT_EQ(m.commands[0].error, "");
}

TEST(Codec, EscapedCDataAndInnerXmlPayloads) {
  const std::string payload =
      "<wap-provisioningdoc><characteristic type=\"x\"/></wap-provisioningdoc>";
  const Message m = MustDecode(
      Wrap("<Replace><CmdID>1</CmdID>"
           "<Item><Target><LocURI>./a</LocURI></Target><Data>&lt;wap-provisioningdoc&gt;&lt;"
           "characteristic type=&quot;x&quot;/&gt;&lt;/wap-provisioningdoc&gt;</Data></Item>"
           "<Item><Target><LocURI>./b</LocURI></Target><Data><![CDATA[<wap-provisioningdoc>"
           "<characteristic type=\"x\"/></wap-provisioningdoc>]]></Data></Item>"
           "<Item><Target><LocURI>./c</LocURI></Target><Data><disabled/></Data></Item>"
           "<Item><Target><LocURI>./d</LocURI></Target><Data>  a &amp; b  </Data></Item>"
           "<Item><Target><LocURI>./e</LocURI></Target><Data/></Item>"
           "</Replace>"));
  const auto& items = m.commands.at(0).items;
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].data->text, payload);
  EXPECT_EQ(items[0].data->form, Data::Form::kText);
  EXPECT_EQ(items[1].data->text, payload);
  EXPECT_EQ(items[1].data->form, Data::Form::kCData);
  EXPECT_EQ(items[2].data->text, "<disabled/>");
  EXPECT_EQ(items[2].data->form, Data::Form::kInnerXml);
  EXPECT_EQ(items[3].data->text, "  a & b  ");
  EXPECT_EQ(items[4].data->text, "");
  ExpectModelRoundTrip(m);
  // CDATA is written back as CDATA, the escaped one escaped, the inner XML as markup.
  const std::string out = Encode(m);
  EXPECT_NE(out.find("<![CDATA[<wap-provisioningdoc>"), std::string::npos);
  EXPECT_NE(out.find("<Data>&lt;wap-provisioningdoc&gt;"), std::string::npos);
  EXPECT_NE(out.find("<Data><disabled/></Data>"), std::string::npos);
}

TEST(Codec, InnerXmlWithAttributesAndTextIsStable) {
  const Message m = MustDecode(Wrap(
      "<Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></Target><Data>"
      "<enabled/><data id=\"Pol_1\" value=\"a&amp;b\"/>tail &lt;x&gt;</Data></Item></Replace>"));
  const Data& d = *m.commands.at(0).items.at(0).data;
  EXPECT_EQ(d.form, Data::Form::kInnerXml);
  EXPECT_EQ(d.text, "<enabled/><data id=\"Pol_1\" value=\"a&amp;b\"/>tail &lt;x&gt;");
  ExpectModelRoundTrip(m);
}

TEST(Codec, PayloadRoundTripsByteForByte) {
  std::string all_bytes;
  for (int c = 1; c < 256; ++c) all_bytes += static_cast<char>(c);
  const std::string cases[] = {
      all_bytes,
      "a]]>b",
      "line1\r\nline2\rline3\n",
      "   ",
      "\n",
      "\t x \t",
      " <",
      "&amp;",
      "&#65;",
      "\"quoted\" 'single'",
      std::string(70000, 'z') + "end",
  };
  for (const std::string& payload : cases) {
    for (Data::Form form : {Data::Form::kText, Data::Form::kCData}) {
      Message m;
      m.header.session_id = "1";
      m.header.msg_id = "1";
      m.header.target.loc_uri = "t";
      m.header.source.loc_uri = "s";
      Item item;
      item.target = Location{"./x", std::nullopt};
      item.data = Data(payload, form);
      m.commands.push_back(MakeCommand(CommandType::kReplace, "1", {item}));
      Result<Message> back = Decode(Encode(m));
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(back->commands.at(0).items.at(0).data->text, payload)
          << "payload of " << payload.size() << " bytes";
    }
  }
}

TEST(Codec, LargeObjectChunk) {
  const Message m = MustDecode(
      Wrap("<Replace><CmdID>9</CmdID><Item><Target><LocURI>./Vendor/MSFT/X</LocURI></Target><Meta>"
           "<Format xmlns=\"syncml:metinf\">b64</Format><Size xmlns=\"syncml:metinf\">30000</Size>"
           "</Meta><Data>QUJD</Data><MoreData/></Item></Replace>"));
  const Item& it = m.commands.at(0).items.at(0);
  EXPECT_TRUE(it.more_data);
  EXPECT_EQ(it.meta->size, 30000u);
  ExpectModelRoundTrip(m);
  EXPECT_NE(Encode(m).find("<Data>QUJD</Data><MoreData/></Item>"), std::string::npos);
}

TEST(Codec, NestedAtomicAndSequenceKeepDocumentOrder) {
  const Message m = MustDecode(Wrap(
      "<Sequence><CmdID>1</CmdID>"
      "<Add><CmdID>2</CmdID><Item><Target><LocURI>./a</LocURI></Target><Data>1</Data></Item></Add>"
      "<Atomic><CmdID>3</CmdID>"
      "<Delete><CmdID>4</CmdID><Item><Target><LocURI>./b</LocURI></Target></Item></Delete>"
      "<Atomic><CmdID>5</CmdID><Exec><CmdID>6</CmdID><Item><Target><LocURI>./c</LocURI></Target>"
      "</Item></Exec></Atomic></Atomic>"
      "<Get><CmdID>7</CmdID><Item><Target><LocURI>./d</LocURI></Target></Item></Get>"
      "</Sequence><Final/>"));
  ASSERT_EQ(m.commands.size(), 1u);
  const Command& seq = m.commands[0];
  EXPECT_EQ(seq.type, CommandType::kSequence);
  ASSERT_EQ(seq.children.size(), 3u);
  EXPECT_EQ(seq.children[0].type, CommandType::kAdd);
  EXPECT_EQ(seq.children[1].type, CommandType::kAtomic);
  EXPECT_EQ(seq.children[2].type, CommandType::kGet);
  ASSERT_EQ(seq.children[1].children.size(), 2u);
  EXPECT_EQ(seq.children[1].children[1].type, CommandType::kAtomic);
  EXPECT_EQ(seq.children[1].children[1].children.at(0).type, CommandType::kExec);
  EXPECT_TRUE(m.final);
  ExpectModelRoundTrip(m);
}

TEST(Codec, StatusWithChalRefsAndItems) {
  const Message m = MustDecode(Wrap(
      "<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>"
      "<TargetRef>dev-1</TargetRef><SourceRef>https://mdm.example/s</SourceRef>"
      "<Chal><Meta><Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type><Format "
      "xmlns=\"syncml:metinf\">b64</Format><NextNonce xmlns=\"syncml:metinf\">bm9uY2U=</NextNonce>"
      "</Meta></Chal><Data>407</Data></Status>",
      "<Cred><Meta><Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type></Meta><Data>abc=</Data>"
      "</Cred>"));
  const Command& s = m.commands.at(0);
  EXPECT_EQ(s.error, "");
  EXPECT_EQ(s.data, "407");
  ASSERT_TRUE(s.chal.has_value());
  EXPECT_EQ(s.chal->meta.next_nonce, "bm9uY2U=");
  EXPECT_EQ(s.target_refs, std::vector<std::string>{"dev-1"});
  ASSERT_TRUE(m.header.cred.has_value());
  EXPECT_EQ(m.header.cred->data, "abc=");
  ExpectModelRoundTrip(m);
}

TEST(Codec, OriginalErrorPassthroughDeclaresMsftNamespace) {
  Message m;
  m.header.session_id = "1";
  m.header.msg_id = "2";
  m.header.target.loc_uri = "t";
  m.header.source.loc_uri = "s";
  Command r = MakeCommand(CommandType::kResults, "3");
  r.msg_ref = "1";
  r.cmd_ref = "4";
  r.cmd = "Get";
  Item it;
  it.source = Location{"./x", std::nullopt};
  it.data = Data("");
  it.original_error = "0x86000020";
  r.items.push_back(it);
  m.commands.push_back(r);
  const std::string xml = Encode(m);
  EXPECT_NE(xml.find("<SyncBody xmlns:msft=\"http://schemas.microsoft.com/MobileDevice/MDM\">"),
            std::string::npos);
  EXPECT_NE(xml.find("<Data msft:originalerror=\"0x86000020\"/>"), std::string::npos);
  ExpectModelRoundTrip(m);
}

TEST(Codec, EncodedSizesAddUp) {
  const Message m = MustDecode(Fixture("windows10-capture/session2-client-pkg1-unenroll.xml"));
  size_t total = EnvelopeSize(m.header);
  for (const Command& c : m.commands) total += EncodedSize(c);
  EXPECT_EQ(total, Encode(m).size());
  const Item& item = m.commands.at(3).items.at(0);
  std::string one;
  EncodeCommand(m.commands.at(3), &one);
  EXPECT_NE(one.find(std::string("<Item><Source><LocURI>./DevInfo/DevId</LocURI></Source>")),
            std::string::npos);
  EXPECT_EQ(EncodedSize(item),
            std::string("<Item><Source><LocURI>./DevInfo/DevId</LocURI></Source><Data>"
                        "B5B954E81FBCB94EB79BD08BE625F4EE</Data></Item>")
                .size());
}

TEST(Codec, NamespaceCaseAndXmlDeclarationAccepted) {
  std::string xml = Wrap("<Final/>");
  xml.replace(xml.find("SYNCML:SYNCML1.2"), 16, "syncml:SyncML1.2");
  const Message m =
      MustDecode("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->" + xml);
  EXPECT_TRUE(m.final);
  EXPECT_TRUE(m.commands.empty());
}

// ---- hostile and malformed input ---------------------------------------------------------

void ExpectRejected(std::string_view xml, std::string_view message_part) {
  Result<Message> m = Decode(xml);
  ASSERT_FALSE(m.ok()) << xml;
  EXPECT_EQ(m.error().code(), Code::kInvalidArgument);
  EXPECT_NE(m.error().message().find(message_part), std::string::npos) << m.error().message();
}

TEST(CodecMalformed, WholeMessageErrors) {
  const std::string good = Wrap("<Final/>");
  ExpectRejected("", "malformed XML");
  ExpectRejected(good.substr(0, good.size() / 2), "malformed XML");
  ExpectRejected("not xml at all", "malformed XML");
  ExpectRejected("<SyncML xmlns=\"SYNCML:SYNCML1.1\"/>", "namespace");
  ExpectRejected("<SyncML><SyncHdr/></SyncML>", "namespace");
  ExpectRejected("<Foo xmlns=\"SYNCML:SYNCML1.2\"/>", "expected <SyncML>");
  ExpectRejected("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncBody/></SyncML>", "missing <SyncHdr>");
  ExpectRejected(
      "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr>"
      "<SyncBody/></SyncML>",
      "has no <VerProto>");
  ExpectRejected(Wrap("", "<Bogus>1</Bogus>"), "unknown element <Bogus> in <SyncHdr>");
  ExpectRejected(Wrap("", "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">lots</MaxMsgSize></Meta>"),
                 "MaxMsgSize");
  ExpectRejected(Wrap("stray text"), "unexpected text");
  std::string two_hdr = good;
  two_hdr.insert(two_hdr.find("<SyncBody>"), "<SyncHdr/>");
  ExpectRejected(two_hdr, "duplicate <SyncHdr>");
}

TEST(CodecMalformed, DoctypeAndEntitiesAreRefused) {
  ExpectRejected(
      "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;\">"
      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;\">]>" +
          Wrap("<Alert><CmdID>1</CmdID><Data>&lol3;</Data></Alert>"),
      "DOCTYPE");
  ExpectRejected("<!DOCTYPE SyncML SYSTEM \"file:///etc/passwd\">" + Wrap(""), "DOCTYPE");
  ExpectRejected(Wrap("<Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></Target>"
                      "<Data><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>&e;</Data>"
                      "</Item></Replace>"),
                 "");
  // An undeclared entity is not expanded: the text stays literally "&e;".
  const Message m = MustDecode(Wrap(
      "<Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></Target><Data>&e;</Data></Item>"
      "</Replace>"));
  EXPECT_EQ(m.commands.at(0).items.at(0).data->text, "&e;");
  // A payload that merely talks about DOCTYPE (escaped or in CDATA) is fine.
  const Message ok =
      MustDecode(Wrap("<Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></"
                      "Target><Data><![CDATA[<!DOCTYPE "
                      "x>]]></Data></Item></Replace>"));
  EXPECT_EQ(ok.commands.at(0).items.at(0).data->text, "<!DOCTYPE x>");
}

TEST(CodecMalformed, DeepNesting) {
  // 40 nested Atomics: decoded down to kMaxNestingDepth, the one below carries the error.
  std::string body;
  for (int i = 1; i <= 40; ++i) body += "<Atomic><CmdID>" + std::to_string(i) + "</CmdID>";
  body += "<Get><CmdID>99</CmdID><Item><Target><LocURI>./x</LocURI></Target></Item></Get>";
  for (int i = 1; i <= 40; ++i) body += "</Atomic>";
  const Message m = MustDecode(Wrap(body));
  const Command* c = &m.commands.at(0);
  for (int depth = 1; depth <= kMaxNestingDepth; ++depth) {
    ASSERT_EQ(c->error, "") << depth;
    ASSERT_EQ(c->children.size(), 1u);
    c = &c->children[0];
  }
  EXPECT_EQ(c->cmd_id, std::to_string(kMaxNestingDepth + 1));
  EXPECT_NE(c->error.find("nested deeper"), std::string::npos);
  EXPECT_TRUE(c->children.empty());

  // Element nesting beyond what tinyxml2 accepts fails the decode cleanly.
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "<a>";
  ExpectRejected(Wrap(deep), "malformed XML");
}

TEST(CodecMalformed, PerCommandErrorsKeepTheRest) {
  const Message m = MustDecode(Wrap(
      "<Replace><Item><Target><LocURI>./nocmdid</LocURI></Target><Data>1</Data></Item></Replace>"
      "<Copy><CmdID>2</CmdID><Item><Target><LocURI>./a</LocURI></Target></Item></Copy>"
      "<Frobnicate><CmdID>3</CmdID></Frobnicate>"
      "<Add><CmdID>4</CmdID><Bogus/><Item><Target><LocURI>./b</LocURI></Target></Item></Add>"
      "<Add><CmdID>5</CmdID><Item><Target><LocURI>./c</LocURI></Target><Meta><Size "
      "xmlns=\"syncml:metinf\">-1</Size></Meta><Data>x</Data></Item></Add>"
      "<Get><CmdID>6</CmdID></Get>"
      "<Atomic><CmdID>7</CmdID><Add><CmdID>8</CmdID><Item><Target><LocURI>./d</LocURI></Target>"
      "<Data>1</Data></Item></Add><Final/><Bogus><CmdID>9</CmdID></Bogus></Atomic>"
      "<Get><CmdID>0</CmdID><Item><Target><LocURI>./e</LocURI></Target></Item></Get>"
      "<Status><CmdID>10</CmdID><MsgRef>1</MsgRef><Cmd>Get</Cmd><Data>200</Data></Status>"
      "<Replace><CmdID>11</CmdID><Item><Target><LocURI>./f</LocURI></Target><Data>ok</Data></Item>"
      "</Replace><Final/>"));
  ASSERT_EQ(m.commands.size(), 10u);
  EXPECT_EQ(m.commands[0].cmd_id, "");
  EXPECT_EQ(m.commands[0].error, "missing <CmdID>");
  EXPECT_EQ(m.commands[1].type, CommandType::kUnsupported);
  EXPECT_EQ(m.commands[1].name, "Copy");
  EXPECT_EQ(m.commands[1].error, "");
  EXPECT_EQ(m.commands[2].type, CommandType::kUnknown);
  EXPECT_EQ(m.commands[2].cmd_id, "3");
  EXPECT_NE(m.commands[2].error.find("unknown command <Frobnicate>"), std::string::npos);
  EXPECT_NE(m.commands[3].error.find("unknown element <Bogus> in <Add>"), std::string::npos);
  EXPECT_NE(m.commands[4].error.find("Size"), std::string::npos);
  EXPECT_NE(m.commands[5].error.find("has no <Item>"), std::string::npos);
  const Command& atomic = m.commands[6];
  EXPECT_EQ(atomic.error, "");
  ASSERT_EQ(atomic.children.size(), 3u);
  EXPECT_EQ(atomic.children[0].error, "");
  EXPECT_EQ(atomic.children[1].type, CommandType::kUnknown);  // Final is no Atomic member
  EXPECT_EQ(atomic.children[2].cmd_id, "9");
  EXPECT_NE(atomic.children[2].error, "");
  EXPECT_NE(m.commands[7].error.find("reserved"), std::string::npos);
  EXPECT_NE(m.commands[8].error.find("no <CmdRef>"), std::string::npos);
  EXPECT_EQ(m.commands[9].error, "");
  EXPECT_TRUE(m.final);
}

TEST(CodecMalformed, ErrorMessagesDoNotEchoLongNames) {
  const std::string name(500, 'Q');
  const Message m = MustDecode(Wrap("<" + name + "><CmdID>1</CmdID></" + name + ">"));
  EXPECT_LT(m.commands.at(0).error.size(), 100u);
}

// Cheap deterministic fuzzing: byte mutations of real messages never crash the decoder, and
// whatever it accepts survives an encode/decode round trip unchanged.
TEST(CodecMalformed, MutatedMessagesNeverCrash) {
  const std::string seeds[] = {Fixture("windows10-capture/session2-client-pkg1-unenroll.xml"),
                               Fixture("msmdm-examples/client-pkg3.xml")};
  uint32_t rng = 12345;
  auto next = [&rng] {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
  };
  const char alphabet[] = "<>/&;![]CDATA\"= x\n";
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string xml = seeds[round % 2];
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = next() % xml.size();
      switch (next() % 3) {
        case 0:
          xml[pos] = alphabet[next() % (sizeof alphabet - 1)];
          break;
        case 1:
          xml.erase(pos, 1 + next() % 8);
          break;
        default:
          xml.insert(pos, 1, alphabet[next() % (sizeof alphabet - 1)]);
          break;
      }
      if (xml.empty()) xml.push_back('<');
    }
    Result<Message> m = Decode(xml);
    if (!m.ok()) continue;
    ++accepted;
    // A command the decoder marked malformed is not meant to survive re-encoding.
    if (HasCommandErrors(m->commands)) continue;
    Result<Message> again = Decode(Encode(*m));
    ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << xml;
    EXPECT_EQ(*again, *m) << xml;
  }
  EXPECT_GT(accepted, 0);  // some mutations only touch data, and those must decode
}

// ---- the fast reader against tinyxml2 ------------------------------------------------------

// Decode (fast reader first) and the tinyxml2 path agree on `xml`: same success, same message,
// same error text; and whenever the fast reader answers, tinyxml2 accepts the same message.
void ExpectSameAsReference(const std::string& xml) {
  Result<Message> reference = internal::DecodeWithTinyxml2(xml);
  Result<Message> decoded = Decode(xml);
  ASSERT_EQ(decoded.ok(), reference.ok()) << xml;
  if (reference.ok()) {
    EXPECT_EQ(*decoded, *reference) << xml;
  } else {
    EXPECT_EQ(decoded.status().ToString(), reference.status().ToString()) << xml;
  }
  if (std::optional<Message> fast = internal::DecodeFast(xml)) {
    ASSERT_TRUE(reference.ok()) << reference.status().ToString() << "\n" << xml;
    EXPECT_EQ(*fast, *reference) << xml;
  }
}

std::vector<std::string> ReaderCorpus() {
  std::vector<std::string> corpus = {
      Fixture("windows10-capture/session1-client-pkg1.xml"),
      Fixture("windows10-capture/session1-server-pkg2.xml"),
      Fixture("windows10-capture/session2-client-pkg1-unenroll.xml"),
      Fixture("msmdm-examples/client-pkg1.xml"),
      Fixture("msmdm-examples/client-pkg3.xml"),
      Fixture("msmdm-examples/server-pkg2.xml"),
  };
  auto item = [](std::string_view data) {
    return "<Replace><CmdID>2</CmdID><Item><Target><LocURI>./a</LocURI></Target><Meta>"
           "<Format xmlns=\"syncml:metinf\">chr</Format></Meta>" +
           std::string(data) + "</Item></Replace>";
  };
  // Each exercises one rule of the reader's subset, from both sides of its edge.
  const std::string bodies[] = {
      item("<Data>plain</Data>"),
      item("<Data>  spaced  </Data>"),
      item("<Data>   </Data>"),
      item("<Data>\t\n</Data>"),
      item("<Data>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;</Data>"),
      item("<Data>&#65;&#x42;</Data>"),
      item("<Data>&#0;</Data>"),
      item("<Data>a &unknown; b</Data>"),
      item("<Data>a & b</Data>"),
      item("<Data>&amp</Data>"),
      item("<Data>line1\r\nline2\rline3\n\rline4</Data>"),
      item("<Data><![CDATA[<x a=\"1\"/> & ]]></Data>"),
      item("<Data><![CDATA[]]></Data>"),
      item("<Data><![CDATA[   ]]></Data>"),
      item("<Data>text<![CDATA[cdata]]>more</Data>"),
      item("<Data>  <![CDATA[x]]>  </Data>"),
      item("<Data><![CDATA[a\r\nb]]></Data>"),
      item("<Data><disabled/></Data>"),
      item("<Data>a<!-- comment -->b</Data>"),
      item("<Data>a > b ]]> c</Data>"),
      item("<Data>caf\xc3\xa9 \xe2\x82\xac</Data>"),
      item("<Data/>"),
      item("<Data />"),
      item("<Data msft:originalerror=\"0x86000020\">x</Data>"),
      item("<Data msft:originalerror='0x86000020'>x</Data>"),
      item("<Data msft:originalerror = \"0x1\" >x</Data>"),
      item("<Data a=\"1\" a=\"2\">x</Data>"),
      item("<Data a=\"1\"b=\"2\">x</Data>"),
      item("<Data a=\"x &amp; y\">x</Data>"),
      item("<Data a=\"x\ry\">x</Data>"),
      item("<Data a=\"<\">x</Data>"),
      item("<Data >x</Data >"),
      item("<Data>x</ Data>"),
      item("<Data>x</Data"),
      item("<Data>x</Dat>"),
      item("<D\xc3\xa4ta>x</D\xc3\xa4ta>"),
      item("<Data>x\vy</Data>"),
      item("<Data>x\fy</Data>"),
      item(std::string("<Data>x") + '\0' + "y</Data>"),
      "<Replace><CmdID>2</CmdID>stray<Item><Target><LocURI>./a</LocURI></Target></Item></Replace>",
      "<Replace><CmdID>2</CmdID><Item><Target><LocURI>  ./a  </LocURI></Target></Item></Replace>",
      "<Replace><CmdID>2</CmdID><Item><Target><LocURI>./a</LocURI><LocURI>./b</LocURI></Target>"
      "</Item></Replace>",
      "<Get><CmdID>2</CmdID></Get>",
      "<Get><CmdID/><Item><Target><LocURI>./a</LocURI></Target></Item></Get>",
      "<Frobnicate><CmdID>2</CmdID></Frobnicate>",
      "<Atomic><CmdID>2</CmdID><Atomic><CmdID>3</CmdID><Sequence><CmdID>4</CmdID><Get><CmdID>5"
      "</CmdID><Item><Target><LocURI>./a</LocURI></Target></Item></Get></Sequence></Atomic>"
      "</Atomic>",
      "<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Chal><Meta>"
      "<Type xmlns=\"syncml:metinf\">syncml:auth-md5</Type><NextNonce xmlns=\"syncml:metinf\">"
      "Tm9uY2U=</NextNonce></Meta></Chal><Data>401</Data></Status>",
      "<Alert><CmdID>2</CmdID><Data>1226</Data><Item><Meta><Type xmlns=\"syncml:metinf\">t"
      "</Type><Size xmlns=\"syncml:metinf\">12</Size></Meta><Data>x</Data><MoreData/></Item>"
      "</Alert>",
      "<Alert><CmdID>2</CmdID><Data>1226</Data><Item><Meta><Size xmlns=\"syncml:metinf\">-1"
      "</Size></Meta></Item></Alert>",
  };
  for (const std::string& body : bodies) corpus.push_back(Wrap(body + "<Final/>"));
  // Document-level rules.
  const std::string ok = Wrap("<Final/>");
  corpus.push_back(ok);
  corpus.push_back("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + ok);
  corpus.push_back("<?xml version=\"1.0\"?><?other x?>\r\n" + ok + "\r\n\r\n");
  corpus.push_back(ok + "<?late?>");
  corpus.push_back("\xef\xbb\xbf" + ok);
  corpus.push_back("<!DOCTYPE SyncML []>" + ok);
  corpus.push_back("<!-- hello -->" + ok);
  corpus.push_back(ok + "<!-- bye -->");
  corpus.push_back(ok + "trailing");
  corpus.push_back(ok + ok);
  corpus.push_back("stray" + ok);
  corpus.push_back(ok.substr(0, ok.size() - 3));
  corpus.push_back("");
  corpus.push_back("   ");
  corpus.push_back("<SyncML xmlns='SYNCML:SYNCML1.2'></SyncML>");
  corpus.push_back("<SyncML><SyncHdr/><SyncBody/></SyncML>");
  corpus.push_back("<syncml xmlns=\"SYNCML:SYNCML1.2\"/>");
  std::string deep = Wrap("<Final/>");
  for (int i = 0; i < 70; ++i) deep.insert(deep.find("<Final/>"), "<Atomic><CmdID>9</CmdID>");
  corpus.push_back(deep);
  return corpus;
}

TEST(CodecFastReader, AgreesWithTinyxml2OnTheCorpus) {
  for (const std::string& xml : ReaderCorpus()) ExpectSameAsReference(xml);
}

TEST(CodecFastReader, TakesTheUsualMessages) {
  // Real messages stay on the fast path (else the benchmark would measure tinyxml2 twice).
  for (const char* name :
       {"windows10-capture/session1-client-pkg1.xml", "windows10-capture/session1-server-pkg2.xml",
        "windows10-capture/session2-client-pkg1-unenroll.xml", "msmdm-examples/server-pkg2.xml"}) {
    EXPECT_TRUE(internal::DecodeFast(Fixture(name)).has_value()) << name;
  }
  EXPECT_TRUE(internal::DecodeFast(Wrap("<Replace><CmdID>2</CmdID><Item><Target><LocURI>./a"
                                        "</LocURI></Target><Data>&lt;a&gt; &amp; <![CDATA[b]]>"
                                        "</Data></Item></Replace>"))
                  .has_value());
}

// Random edits of real messages: wherever the fast reader answers, it answers like tinyxml2.
TEST(CodecFastReader, AgreesWithTinyxml2OnMutatedMessages) {
  std::vector<std::string> seeds = ReaderCorpus();
  seeds.resize(6);  // the fixtures
  seeds.push_back(
      Wrap("<Replace><CmdID>2</CmdID><Item><Target><LocURI>./a</LocURI></Target>"
           "<Data a='1'>x &amp; y<![CDATA[z]]></Data></Item></Replace><Final />"));
  uint32_t rng = 777;
  auto next = [&rng] {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
  };
  const char alphabet[] = "<>/&;!?[]-\"'= \t\n\raxAX#0CDT:\xc3\x80";
  int fast = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string xml = seeds[round % seeds.size()];
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = next() % xml.size();
      const char c = alphabet[next() % (sizeof alphabet - 1)];
      switch (next() % 3) {
        case 0:
          xml[pos] = c;
          break;
        case 1:
          xml.erase(pos, 1 + next() % 4);
          break;
        default:
          xml.insert(pos, 1, c);
          break;
      }
      if (xml.empty()) xml.push_back('<');
    }
    if (internal::DecodeFast(xml)) ++fast;
    ExpectSameAsReference(xml);
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(fast, 1000);  // the edits that keep a message valid are many; they must be compared
}

TEST(CodecSalvage, HeaderOfATruncatedMessage) {
  const std::string good = Wrap(
      "<Replace><CmdID>1</CmdID><Item><Target><LocURI>./x</LocURI></Target><Data>1</Data></Item>"
      "</Replace>");
  const std::string truncated = good.substr(0, good.find("<Data>") + 3);
  ASSERT_FALSE(Decode(truncated).ok());
  std::optional<SyncHdr> hdr = SalvageHeader(truncated);
  ASSERT_TRUE(hdr.has_value());
  EXPECT_EQ(hdr->msg_id, "3");
  EXPECT_EQ(hdr->session_id, "7");
  EXPECT_EQ(hdr->source.loc_uri, "https://mdm.example/s");
  // Lenient about unknown header elements, but not about an unreadable header.
  EXPECT_TRUE(SalvageHeader(Wrap("", "<Bogus>1</Bogus>")).has_value());
  EXPECT_FALSE(SalvageHeader(good.substr(0, good.find("</SyncHdr>"))).has_value());
  EXPECT_FALSE(SalvageHeader("garbage").has_value());
}

}  // namespace
}  // namespace dm::syncml
