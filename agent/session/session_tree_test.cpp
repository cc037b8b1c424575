// The session engine through the real DM tree (csp::MakeDeviceTree: DevInfo, DevDetail,
// DMClient, Reboot, PassportForWork, Policy, DMAgent) on a real SQLite file.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "agent/session/session.h"
#include "agent/syncml/codec.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "container/container.h"
#include "container/key_sealer_test_support.h"
#include "csp/device_facts.h"
#include "csp/device_tree.h"
#include "csp/dmclient.h"
#include "policy/policy.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace dm::agent {
namespace {

using syncml::Command;
using syncml::CommandType;

constexpr char kServer[] = "https://mdm.contoso.example/ManagementServer/MDM.svc";
constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";

std::string Pfw(std::string_view rest) {
  return "./Device/Vendor/MSFT/PassportForWork/" + std::string(kTenant) + "/" + std::string(rest);
}

std::string Item(std::string_view uri, std::string_view data = {}, std::string_view format = {}) {
  std::string s = "<Item><Target><LocURI>" + std::string(uri) + "</LocURI></Target>";
  if (!format.empty()) {
    s += "<Meta><Format xmlns=\"syncml:metinf\">" + std::string(format) + "</Format></Meta>";
  }
  if (!data.empty() || !format.empty()) s += "<Data>" + std::string(data) + "</Data>";
  return s + "</Item>";
}

std::string Cmd(std::string_view name, std::string_view id, std::string_view items) {
  return "<" + std::string(name) + "><CmdID>" + std::string(id) + "</CmdID>" + std::string(items) +
         "</" + std::string(name) + ">";
}

std::vector<std::string> Statuses(const syncml::Message& m) {
  std::vector<std::string> out;
  for (const Command& c : m.commands) {
    if (c.type != CommandType::kStatus || c.cmd_ref == "0") continue;
    std::string s = c.cmd_ref + " " + c.cmd + " " + c.data;
    for (const std::string& t : c.target_refs) s += " " + t;
    out.push_back(s);
  }
  return out;
}

class SessionTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "sessiontree-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto db = storage::Database::Open(dir_ / "agent.db", {.migrations = storage::AgentSchema()});
    ASSERT_TRUE(db.ok()) << db.error().ToString();
    db_ = std::move(*db);
    container::StoreOptions so;
    so.clock = &clock_;
    so.random = &random_;
    so.kdf = crypto::ScryptParams::ForTests();
    store_ = std::make_unique<container::ContainerStore>(*db_, sealer_, so);
    engine_ = std::make_unique<policy::PolicyEngine>(*db_, *store_, clock_);
    csp::DeviceTreeOptions options;
    options.host_facts = [] {
      csp::HostFacts h;
      h.manufacturer = "Contoso Ltd";
      h.product_name = "Contoso Book 14";
      h.language = "de-DE";
      h.os_name = "Debian GNU/Linux 12 (bookworm)";
      h.kernel_release = "6.1.0-18-amd64";
      return h;
    };
    tree_ = csp::MakeDeviceTree(*db_, *engine_, *store_, clock_, options);
  }
  void Close() {
    tree_.reset();
    engine_.reset();
    store_.reset();
    db_.reset();
  }

  std::unique_ptr<Session> Started() {
    SessionOptions o;
    o.server_url = kServer;
    auto s = std::make_unique<Session>(*tree_, *db_, o);
    Result<std::string> p1 = s->Start({});
    EXPECT_TRUE(p1.ok()) << p1.status().ToString();
    if (p1.ok()) pkg1_ = *syncml::Decode(*p1);
    return s;
  }
  std::string ServerMsg(std::string_view body, int msg_id = 1) {
    return "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2"
           "</VerProto><SessionID>" +
           pkg1_.header.session_id + "</SessionID><MsgID>" + std::to_string(msg_id) +
           "</MsgID><Target><LocURI>" + pkg1_.header.source.loc_uri +
           "</LocURI></Target><Source><LocURI>" + kServer +
           "</LocURI></Source></SyncHdr><SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef>"
           "<CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>" +
           std::string(body) + "<Final/></SyncBody></SyncML>";
  }
  syncml::Message Answer(Session& s, const std::string& server) {
    Result<std::optional<std::string>> r = s.Process(server);
    EXPECT_TRUE(r.ok() && r->has_value()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) return {};
    return *syncml::Decode(**r);
  }
  std::optional<std::string> Effective(const char* setting) {
    auto e = engine_->Effective(policy::Target{policy::Scope::kDevice, "", setting});
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.value_or(std::nullopt);
  }
  std::optional<std::string> Desired(const char* setting) {
    auto d =
        engine_->Desired(policy::Source::kMdm, policy::Target{policy::Scope::kDevice, "", setting});
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.value_or(std::nullopt);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  crypto::DeterministicRandom random_{11};
  std::unique_ptr<storage::Database> db_;
  container::testing::FixedKeySealer sealer_;
  std::unique_ptr<container::ContainerStore> store_;
  std::unique_ptr<policy::PolicyEngine> engine_;
  std::unique_ptr<csp::DmTree> tree_;
  syncml::Message pkg1_;
};

TEST_F(SessionTreeTest, Package1ReportsTheRealDevInfo) {
  auto s = Started();
  Result<std::string> dev_id = csp::DeviceId(*db_);
  ASSERT_TRUE(dev_id.ok());
  EXPECT_EQ(pkg1_.header.source.loc_uri, *dev_id);
  EXPECT_EQ(pkg1_.header.target.loc_uri, kServer);
  const Command& replace = pkg1_.commands.back();
  ASSERT_EQ(replace.type, CommandType::kReplace);
  ASSERT_EQ(replace.items.size(), 5u);
  EXPECT_EQ(replace.cmd_id, "4");
  EXPECT_EQ(replace.items[0].data->text, *dev_id);
  EXPECT_EQ(replace.items[1].data->text, "Contoso Ltd");
  EXPECT_EQ(replace.items[2].data->text, "Contoso Book 14");
  EXPECT_EQ(replace.items[3].data->text, "1.3");
  EXPECT_EQ(replace.items[4].data->text, "de-DE");
  EXPECT_EQ(s->session_id(), "1");

  // The SessionID counter survives a restart of the agent; DevId stays the same.
  Close();
  Open();
  Started();
  EXPECT_EQ(pkg1_.header.session_id, "2");
  EXPECT_EQ(pkg1_.header.source.loc_uri, *dev_id);
}

TEST_F(SessionTreeTest, ProfileThenReadBack) {
  auto s = Started();
  const syncml::Message m = Answer(
      *s,
      ServerMsg(
          Cmd("Atomic", "p1",
              Cmd("Add", "a",
                  Item("./Vendor/MSFT/PassportForWork/" + std::string(kTenant), "", "node")) +
                  Cmd("Replace", "b", Item(Pfw("Policies/UsePassportForWork"), "true", "bool")) +
                  Cmd("Replace", "c",
                      Item(Pfw("Policies/PINComplexity/MinimumPINLength"), "6", "int"))) +
          Cmd("Get", "g1", Item(Pfw("Policies/PINComplexity/MinimumPINLength"))) +
          Cmd("Get", "g2", Item("./DevInfo")) +
          Cmd("Replace", "r", Item("./DevInfo/Man", "Evil Corp")) +
          Cmd("Get", "g3", Item("/DevInfo/Man")) + Cmd("Get", "g4", Item("./DevInfo?list=Struct")) +
          Cmd("Replace", "f", Item(Pfw("Policies/PINComplexity/Digits"), "1", "chr"))));
  EXPECT_EQ(Statuses(m),
            (std::vector<std::string>{"p1 Atomic 200", "a Add 200", "b Replace 200",
                                      "c Replace 200", "g1 Get 200", "g2 Get 200", "r Replace 405",
                                      "g3 Get 400", "g4 Get 406", "f Replace 415"}));
  std::vector<const Command*> results;
  for (const Command& c : m.commands) {
    if (c.type == CommandType::kResults) results.push_back(&c);
  }
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]->items.at(0).data->text, "6");
  EXPECT_EQ(results[0]->items.at(0).meta->format, "int");
  EXPECT_EQ(results[1]->items.at(0).meta->format, "node");
  EXPECT_EQ(results[1]->items.at(0).data->text, "DevId/Man/Mod/DmV/Lang");

  // The message committed, then the tree's after-commit hook evaluated policy: the value is in
  // force, not only desired.
  EXPECT_EQ(Desired("PassportForWork/PINComplexity/MinimumPINLength"), "6");
  EXPECT_EQ(Effective("PassportForWork/PINComplexity/MinimumPINLength"), "6");
}

TEST_F(SessionTreeTest, FailedAtomicLeavesTheDatabaseAsItWas) {
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg(
              Cmd("Atomic", "p1",
                  Cmd("Add", "a",
                      Item("./Vendor/MSFT/PassportForWork/" + std::string(kTenant), "", "node")) +
                      Cmd("Replace", "b",
                          Item(Pfw("Policies/PINComplexity/MinimumPINLength"), "6", "int")) +
                      Cmd("Replace", "c",
                          Item(Pfw("Policies/PINComplexity/MaximumPINLength"), "128", "int")) +
                      Cmd("Add", "d",
                          Item("./Vendor/MSFT/DMClient/Provider/MS%20DM%20Server", "", "node")))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"p1 Atomic 507", "a Add 216", "b Replace 216",
                                                   "c Replace 400", "d Add 216"}));
  EXPECT_EQ(Desired("PassportForWork/PINComplexity/MinimumPINLength"), std::nullopt);
  EXPECT_EQ(tree_->Get({}, "./Vendor/MSFT/PassportForWork/" + std::string(kTenant)).code, 404);

  // Read from a fresh connection: nothing of the Atomic reached the file.
  Close();
  Open();
  EXPECT_TRUE(db_->CheckIntegrity().ok());
  EXPECT_EQ(Desired("PassportForWork/PINComplexity/MinimumPINLength"), std::nullopt);
  Result<std::vector<std::string>> providers = csp::ListProviders(*db_);
  ASSERT_TRUE(providers.ok());
  EXPECT_TRUE(providers->empty());
}

TEST_F(SessionTreeTest, DmClientPollConfiguredInOneSession) {
  auto s = Started();
  const std::string provider = "./Vendor/MSFT/DMClient/Provider/MS%20DM%20Server";
  const syncml::Message m = Answer(
      *s,
      ServerMsg(Cmd("Add", "1", Item(provider, "", "node")) +
                Cmd("Add", "2", Item(provider + "/Poll/IntervalForFirstSetOfRetries", "3", "int")) +
                Cmd("Add", "3", Item(provider + "/Poll/NumberOfFirstRetries", "5", "int")) +
                Cmd("Add", "4", Item(provider, "", "node"))));
  EXPECT_EQ(Statuses(m),
            (std::vector<std::string>{"1 Add 200", "2 Add 200", "3 Add 200", "4 Add 418"}));
  Result<csp::PollSettings> poll = csp::ReadPollSettings(*db_, "MS DM Server");
  ASSERT_TRUE(poll.ok()) << poll.status().ToString();
  EXPECT_EQ(poll->interval_first_min, 3);
  EXPECT_EQ(poll->count_first, 5);
}

}  // namespace
}  // namespace dm::agent
