// Hostile server input through the session engine and the real device tree, as `dmagent exec`
// and a networked session run it (agent::Device + agent::Session::Process on a temporary SQLite
// file). Cases a module test already covers are listed in SECURITY.md instead of repeated here.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/runtime/device.h"
#include "agent/session/session.h"
#include "agent/syncml/codec.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "policy/policy.h"

namespace dm::agent {
namespace {

namespace fs = std::filesystem;
using syncml::Command;
using syncml::CommandType;

constexpr char kUser[] = "alice@contoso.test";
constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr char kServer[] = "https://mdm.contoso.example/ManagementServer/MDM.svc";

std::string Pfw(std::string_view rest = {}) {
  std::string uri = "./Device/Vendor/MSFT/PassportForWork/" + std::string(kTenant);
  return rest.empty() ? uri : uri + "/" + std::string(rest);
}

std::string Message(std::string_view body, std::string_view session_id = "1",
                    std::string_view msg_id = "1") {
  return "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2"
         "</VerProto><SessionID>" +
         std::string(session_id) + "</SessionID><MsgID>" + std::string(msg_id) +
         "</MsgID><Target><LocURI>DEV</LocURI></Target><Source><LocURI>" + kServer +
         "</LocURI></Source></SyncHdr><SyncBody>" + std::string(body) +
         "<Final/></SyncBody></SyncML>";
}

std::string Item(std::string_view uri, std::string_view data = {}, std::string_view format = {}) {
  std::string s = "<Item><Target><LocURI>" + std::string(uri) + "</LocURI></Target>";
  if (!format.empty()) {
    s += "<Meta><Format xmlns=\"syncml:metinf\">" + std::string(format) + "</Format></Meta>";
  }
  if (!data.empty() || !format.empty()) s += "<Data>" + std::string(data) + "</Data>";
  return s + "</Item>";
}

std::string Cmd(std::string_view name, std::string_view id, std::string_view inner) {
  return "<" + std::string(name) + "><CmdID>" + std::string(id) + "</CmdID>" + std::string(inner) +
         "</" + std::string(name) + ">";
}

// "CmdRef Cmd code" for each Status but the SyncHdr's, in order.
std::vector<std::string> Statuses(const syncml::Message& m) {
  std::vector<std::string> out;
  for (const Command& c : m.commands) {
    if (c.type != CommandType::kStatus || c.cmd_ref == "0") continue;
    out.push_back(c.cmd_ref + " " + c.cmd + " " + c.data);
  }
  return out;
}

std::string HeaderStatus(const syncml::Message& m) {
  for (const Command& c : m.commands) {
    if (c.type == CommandType::kStatus && c.cmd_ref == "0") return c.data;
  }
  return "";
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dm-hostile-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    DeviceOptions o;
    o.state_dir = dir_ / "state";
    o.clock = &clock_;
    o.random = &random_;
    o.pin_kdf = crypto::ScryptParams::ForTests();
    auto device = Device::Open(std::move(o));
    ASSERT_TRUE(device.ok()) << device.error().ToString();
    device_ = std::move(*device);
    ASSERT_TRUE(device_->policy().OnSignIn(kUser).ok());
    ASSERT_TRUE(device_->SetSignedInUser(kUser).ok());
    // The first read of DevId creates the device id: do it now, so fingerprints taken by the
    // tests compare only what their messages did.
    ASSERT_EQ(device_->tree().Get({.user = kUser}, "./DevInfo/DevId").code, 200);
  }
  void TearDown() override {
    device_.reset();
    fs::remove_all(dir_);
  }

  // What `dmagent exec` does with one message: a fresh session, no package 1.
  syncml::Message Exec(const std::string& xml) {
    Session session(device_->tree(), device_->db(), SessionOptions{});
    session.SetUser(kUser);
    auto out = session.Process(xml);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok() || !*out) return {};
    auto decoded = syncml::Decode(**out);
    EXPECT_TRUE(decoded.ok()) << "the agent's answer does not decode: " << **out;
    return decoded.ok() ? *decoded : syncml::Message{};
  }

  // Every row of every table, so a test can say "nothing changed".
  std::string Fingerprint() {
    std::string out;
    auto tables =
        device_->db().Prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    EXPECT_TRUE(tables.ok());
    std::vector<std::string> names;
    while (tables.ok() && tables->Step().value_or(false)) names.push_back(tables->Text(0));
    for (const std::string& t : names) {
      auto cols = device_->db().Prepare("SELECT name FROM pragma_table_info(?)");
      EXPECT_TRUE(cols.ok());
      cols->Bind(1, t);
      std::string expr = "''";
      while (cols->Step().value_or(false)) expr += "||quote(\"" + cols->Text(0) + "\")||'|'";
      auto rows = device_->db().Prepare("SELECT " + expr + " FROM \"" + t + "\" ORDER BY 1");
      EXPECT_TRUE(rows.ok()) << t;
      out += "[" + t + "]\n";
      while (rows.ok() && rows->Step().value_or(false)) out += rows->Text(0) + "\n";
    }
    return out;
  }

  std::optional<std::string> Desired(const std::string& setting) {
    auto d = device_->policy().Desired(
        policy::Source::kMdm, {.scope = policy::Scope::kDevice, .user = "", .setting = setting});
    EXPECT_TRUE(d.ok());
    return d.ok() ? *d : std::nullopt;
  }

  fs::path dir_;
  FakeClock clock_;
  crypto::DeterministicRandom random_{42};
  std::unique_ptr<Device> device_;
};

TEST_F(HostileInputTest, HugeAttributeIsIgnoredOrRefusedWithoutHarm) {
  const std::string huge(8u << 20, 'A');  // 8 MiB: under the 16 MiB message limit
  const std::string before = Fingerprint();
  // On the root, on a command and on Data: none of them is anything the agent reads.
  for (const std::string& xml :
       {"<SyncML xmlns=\"SYNCML:SYNCML1.2\" junk=\"" + huge + "\"" + Message("").substr(33),
        Message("<Replace junk=\"" + huge + "\"><CmdID>2</CmdID>" +
                Item(Pfw("Policies/UsePassportForWork"), "maybe", "bool") + "</Replace>"),
        Message(Cmd("Get", "2",
                    "<Item><Target><LocURI>./DevInfo/DevId</LocURI></Target>"
                    "<Data junk=\"" +
                        huge + "\"/></Item>"))}) {
    const syncml::Message m = Exec(xml);
    ASSERT_FALSE(m.commands.empty());
    // Answered: either the whole message is refused (400) or each command gets its Status.
    const std::string hdr = HeaderStatus(m);
    EXPECT_TRUE(hdr == "200" || hdr == "400") << hdr;
    for (const Command& c : m.commands) {
      // Nothing of the attribute comes back in the answer.
      for (const syncml::Item& i : c.items) {
        EXPECT_LT(i.data ? i.data->text.size() : 0, 4096u);
      }
    }
  }
  EXPECT_EQ(Fingerprint(), before) << "a message with an invalid bool changed the state";
}

TEST_F(HostileInputTest, DeepSequenceNestingIsAnsweredAndBounded) {
  // 40 nested Sequences around a Replace: the decoder keeps 32 levels, the 33rd is a 400 whose
  // members are not executed, and every level is answered in order.
  std::string body;
  for (int i = 1; i <= 40; ++i) body += "<Sequence><CmdID>" + std::to_string(i) + "</CmdID>";
  body += Cmd("Replace", "99", Item(Pfw("Policies/UsePassportForWork"), "false", "bool"));
  for (int i = 1; i <= 40; ++i) body += "</Sequence>";
  const syncml::Message m = Exec(Message(body));
  const std::vector<std::string> s = Statuses(m);
  ASSERT_GE(s.size(), 33u);
  for (int i = 1; i <= syncml::kMaxNestingDepth; ++i) {
    EXPECT_EQ(s[static_cast<size_t>(i - 1)], std::to_string(i) + " Sequence 200");
  }
  EXPECT_EQ(s[32], "33 Sequence 400");
  EXPECT_EQ(Desired("PassportForWork/UsePassportForWork"), std::nullopt)
      << "a command below the nesting limit was executed";
}

TEST_F(HostileInputTest, CmdIdCollisionInsideAtomicRollsItBack) {
  const std::string before = Fingerprint();
  // A member reusing the Atomic's own CmdID, and two members sharing one.
  const syncml::Message m = Exec(Message(
      Cmd("Atomic", "5",
          Cmd("Add", "6", Item(Pfw(), "", "node")) +
              Cmd("Replace", "5", Item(Pfw("Policies/EnablePinRecovery"), "true", "bool"))) +
      Cmd("Atomic", "7",
          Cmd("Replace", "8", Item(Pfw("Policies/UsePassportForWork"), "false", "bool")) +
              Cmd("Replace", "8", Item(Pfw("Policies/RequireSecurityDevice"), "true", "bool")))));
  EXPECT_EQ(Statuses(m),
            (std::vector<std::string>{"5 Atomic 507", "6 Add 216", "5 Replace 400", "7 Atomic 507",
                                      "8 Replace 216", "8 Replace 400"}));
  EXPECT_EQ(Fingerprint(), before) << "a rolled-back Atomic left something behind";
}

TEST_F(HostileInputTest, TraversalUrisAre400AndTouchNothing) {
  const std::string before = Fingerprint();
  const std::vector<std::string> uris = {
      "./Vendor/MSFT/../../etc",
      "./Vendor/MSFT/%2e%2e/%2e%2e/etc",
      "./Vendor/MSFT/%2E%2e/Reboot",
      "/Vendor/MSFT/Reboot",
      "/etc/passwd",
      "./Device/../User/Vendor/MSFT/PassportForWork",
      "./Vendor/MSFT/PassportForWork/./" + std::string(kTenant),
      "../Vendor/MSFT/Reboot",
      ".//Vendor/MSFT/Reboot",
  };
  for (const std::string& uri : uris) {
    SCOPED_TRACE(uri);
    const syncml::Message m = Exec(Message(
        Cmd("Add", "2", Item(uri, "x", "chr")) + Cmd("Replace", "3", Item(uri, "x", "chr")) +
        Cmd("Delete", "4", Item(uri)) + Cmd("Exec", "5", Item(uri)) + Cmd("Get", "6", Item(uri))));
    EXPECT_EQ(Statuses(m), (std::vector<std::string>{"2 Add 400", "3 Replace 400", "4 Delete 400",
                                                     "5 Exec 400", "6 Get 400"}));
    for (const Command& c : m.commands) EXPECT_NE(c.type, CommandType::kResults);
  }
  // A '/' that is part of a node name stays inside that name: never a path separator.
  const syncml::Message m =
      Exec(Message(Cmd("Get", "2", Item("./Vendor%2FMSFT%2FDMAgent%2FReport"))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"2 Get 404"}));
  EXPECT_EQ(Fingerprint(), before);
}

TEST_F(HostileInputTest, BoolNodeRefusesEveryOtherFormat) {
  ASSERT_EQ(Statuses(Exec(Message(Cmd("Add", "2", Item(Pfw(), "", "node"))))),
            (std::vector<std::string>{"2 Add 200"}));
  const std::string before = Fingerprint();
  struct Case {
    const char* format;
    const char* data;
  };
  // int and chr are covered by PassportForWorkTest.BoolNodeWithIntFormatIs415.
  for (const Case& c : {Case{"b64", "dHJ1ZQ=="}, Case{"xml", "<b>true</b>"}, Case{"node", ""},
                        Case{"null", ""}, Case{"bin", "true"}, Case{"float", "1.0"},
                        Case{"date", "20261122"}, Case{"time", "101010"}}) {
    SCOPED_TRACE(c.format);
    const syncml::Message m = Exec(
        Message(Cmd("Replace", "3", Item(Pfw("Policies/EnablePinRecovery"), c.data, c.format)) +
                Cmd("Add", "4", Item(Pfw("Policies/UsePassportForWork"), c.data, c.format))));
    EXPECT_EQ(Statuses(m), (std::vector<std::string>{"3 Replace 415", "4 Add 415"}));
  }
  // A format the protocol does not know, and a bool value in a bool format's clothing.
  EXPECT_EQ(Statuses(Exec(Message(
                Cmd("Replace", "5", Item(Pfw("Policies/EnablePinRecovery"), "true", "boolean")) +
                Cmd("Replace", "6", Item(Pfw("Policies/EnablePinRecovery"), "1", "bool"))))),
            (std::vector<std::string>{"5 Replace 415", "6 Replace 400"}));
  EXPECT_EQ(Fingerprint(), before);
  EXPECT_EQ(Desired("PassportForWork/EnablePinRecovery"), std::nullopt);
}

// Replay. A networked session has a SessionID of its own (package 1); a server message that
// carries another one (a message of an earlier session played back) is refused without running
// any of its commands. Local management (`dmagent exec`) has no session to match: it answers a
// message in that message's own session, since whoever can run it already has the device's
// root privileges.
TEST_F(HostileInputTest, MessageFromAnotherSessionIsRefusedInANetworkedSession) {
  SessionOptions so;
  so.server_url = kServer;
  const std::string recorded = Message(
      Cmd("Replace", "2", Item(Pfw("Policies/UsePassportForWork"), "false", "bool")), "1", "1");

  SessionStart start;
  start.user = kUser;
  Session first(device_->tree(), device_->db(), so);
  ASSERT_TRUE(first.Start(start).ok());
  ASSERT_EQ(first.session_id(), "1");
  auto out = first.Process(Message(Cmd("Get", "2", Item("./DevInfo/DevId")), "1", "1"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();

  Session second(device_->tree(), device_->db(), so);
  ASSERT_TRUE(second.Start(start).ok());
  ASSERT_EQ(second.session_id(), "2");
  const std::string before = Fingerprint();
  auto replayed = second.Process(recorded);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  ASSERT_TRUE(replayed->has_value());
  auto answer = syncml::Decode(**replayed);
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(HeaderStatus(*answer), "400");
  EXPECT_TRUE(Statuses(*answer).empty());
  EXPECT_TRUE(second.last_outcomes().empty());
  EXPECT_EQ(Fingerprint(), before);

  // The same message with this session's ID is processed.
  auto fresh = second.Process(Message(
      Cmd("Replace", "2", Item(Pfw("Policies/UsePassportForWork"), "false", "bool")), "2", "2"));
  ASSERT_TRUE(fresh.ok());
  auto fresh_answer = syncml::Decode(**fresh);
  ASSERT_TRUE(fresh_answer.ok());
  EXPECT_EQ(Statuses(*fresh_answer), (std::vector<std::string>{"2 Replace 200"}));
}

TEST_F(HostileInputTest, LocalExecAnswersInTheMessagesSessionAndPinsIt) {
  Session session(device_->tree(), device_->db(), SessionOptions{});
  session.SetUser(kUser);
  auto a = session.Process(Message(Cmd("Get", "2", Item("./DevInfo/DevId")), "77", "1"));
  ASSERT_TRUE(a.ok() && a->has_value());
  auto decoded = syncml::Decode(**a);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->header.session_id, "77");
  EXPECT_EQ(Statuses(*decoded), (std::vector<std::string>{"2 Get 200"}));
  // Within one local session, a message of another session is refused like on the network.
  auto b = session.Process(Message(
      Cmd("Replace", "2", Item(Pfw("Policies/UsePassportForWork"), "false", "bool")), "78", "2"));
  ASSERT_TRUE(b.ok() && b->has_value());
  auto decoded_b = syncml::Decode(**b);
  ASSERT_TRUE(decoded_b.ok());
  EXPECT_EQ(HeaderStatus(*decoded_b), "400");
  EXPECT_EQ(Desired("PassportForWork/UsePassportForWork"), std::nullopt);
}

}  // namespace
}  // namespace dm::agent
