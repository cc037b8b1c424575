// Engine-logic tests: the session against a small DM tree fake that keeps its nodes in a table of
// the real agent database, so transactions and Atomic savepoints really commit and roll back.
#include "agent/session/session.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "agent/syncml/codec.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace dm::agent {
namespace {

namespace st = csp::status;
using syncml::Command;
using syncml::CommandType;

// Nodes live in fake_nodes (uri -> data, format). Names steer the outcome: a URI containing
// "Fail500" fails with 500, "ReadOnly" refuses writes with 405, a URI not starting with "./" is
// 400 (as the real tree does for malformed URIs).
class FakeTree : public csp::DmTree {
 public:
  explicit FakeTree(storage::Database& db) : db_(db) {
    EXPECT_TRUE(db_.Exec("CREATE TABLE IF NOT EXISTS fake_nodes (uri TEXT PRIMARY KEY, "
                         "data TEXT NOT NULL, format TEXT NOT NULL)")
                    .ok());
  }

  csp::OpResult Add(const csp::Context&, std::string_view uri, const csp::NodeValue& v) override {
    if (auto bad = Check(uri, true)) return *bad;
    if (Exists(uri)) return {st::kAlreadyExists, "exists"};
    return Write(uri, v);
  }
  csp::OpResult Replace(const csp::Context&, std::string_view uri,
                        const csp::NodeValue& v) override {
    if (auto bad = Check(uri, true)) return *bad;
    if (!Exists(uri)) return {st::kNotFound, "no such node"};
    return Write(uri, v);
  }
  csp::OpResult Delete(const csp::Context&, std::string_view uri) override {
    if (auto bad = Check(uri, true)) return *bad;
    if (!Exists(uri)) return {st::kNotFound, "no such node"};
    EXPECT_TRUE(db_.Run("DELETE FROM fake_nodes WHERE uri = ?", uri).ok());
    return {};
  }
  csp::GetResult Get(const csp::Context& ctx, std::string_view uri) override {
    last_user = ctx.user;
    csp::GetResult r;
    if (auto bad = Check(uri, false)) {
      r.code = bad->code;
      return r;
    }
    auto q = db_.Prepare("SELECT data, format FROM fake_nodes WHERE uri = ?");
    q->Bind(1, std::string_view(uri));
    if (!*q->Step()) {
      r.code = st::kNotFound;
      return r;
    }
    r.value.data = q->Text(0);
    r.value.format = q->Text(1);
    return r;
  }
  csp::OpResult Exec(const csp::Context&, std::string_view uri, const csp::NodeValue& v) override {
    if (auto bad = Check(uri, true)) return *bad;
    const std::string key = std::string(uri) + "#exec";
    return Write(key, v);
  }
  void OnCommitted() override {
    ++committed;
    // What the hook sees must already be durable: not inside a transaction any more.
    committed_outside_txn = committed_outside_txn && !db_.InTransaction();
  }

  void Set(const std::string& uri, const std::string& data, const std::string& format = "chr") {
    ASSERT_TRUE(db_.Run("INSERT OR REPLACE INTO fake_nodes VALUES (?, ?, ?)", std::string_view(uri),
                        std::string_view(data), std::string_view(format))
                    .ok());
  }
  std::optional<std::string> Value(const std::string& uri) {
    auto q = db_.Prepare("SELECT data FROM fake_nodes WHERE uri = ?");
    q->Bind(1, std::string_view(uri));
    if (!*q->Step()) return std::nullopt;
    return q->Text(0);
  }
  // Everything in the tree, for "nothing changed" checks.
  std::string Dump() {
    std::string out;
    auto q = db_.Prepare("SELECT uri, data, format FROM fake_nodes ORDER BY uri");
    while (*q->Step()) out += q->Text(0) + "=" + q->Text(1) + ":" + q->Text(2) + "\n";
    return out;
  }

  int committed = 0;
  bool committed_outside_txn = true;
  std::string last_user;

 private:
  std::optional<csp::OpResult> Check(std::string_view uri, bool write) {
    if (uri.substr(0, 2) != "./") return csp::OpResult{st::kBadRequest, "malformed URI"};
    if (uri.find("Fail500") != std::string_view::npos)
      return csp::OpResult{st::kCommandFailed, "boom"};
    if (write && uri.find("ReadOnly") != std::string_view::npos) {
      return csp::OpResult{st::kNotAllowed, "read-only"};
    }
    return std::nullopt;
  }
  bool Exists(std::string_view uri) { return Value(std::string(uri)).has_value(); }
  csp::OpResult Write(std::string_view uri, const csp::NodeValue& v) {
    EXPECT_TRUE(db_.InTransaction());  // the engine always holds the message's transaction
    Status s = db_.Run("INSERT OR REPLACE INTO fake_nodes VALUES (?, ?, ?)", uri,
                       std::string_view(v.data), std::string_view(v.format));
    return s.ok() ? csp::OpResult{} : csp::OpResult{st::kCommandFailed, s.message()};
  }
  storage::Database& db_;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr char kServerUrl[] = "https://windows.fleetdm.ngrok.io/ManagementServer/MDM.svc";
constexpr char kDevId[] = "B5B954E81FBCB94EB79BD08BE625F4EE";

// A server message. `body` goes into SyncBody; Final is added unless told otherwise.
std::string ServerMsg(std::string_view body, int msg_id = 1, bool final = true,
                      std::string_view hdr_extra = "") {
  std::string s =
      "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD>"
      "<VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>" +
      std::to_string(msg_id) + "</MsgID><Target><LocURI>" + kDevId +
      "</LocURI></Target><Source><LocURI>" + kServerUrl + "</LocURI></Source>";
  s += hdr_extra;
  s += "</SyncHdr><SyncBody><Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef>"
       "<Cmd>SyncHdr</Cmd><Data>200</Data></Status>";
  s += body;
  if (final) s += "<Final/>";
  s += "</SyncBody></SyncML>";
  return s;
}

std::string Item(std::string_view uri, std::string_view data = {}, std::string_view format = {}) {
  std::string s = "<Item><Target><LocURI>" + std::string(uri) + "</LocURI></Target>";
  if (!format.empty()) {
    s += "<Meta><Format xmlns=\"syncml:metinf\">" + std::string(format) + "</Format></Meta>";
  }
  if (!data.empty()) s += "<Data>" + std::string(data) + "</Data>";
  return s + "</Item>";
}

std::string Cmd(std::string_view name, std::string_view id, std::string_view items) {
  return "<" + std::string(name) + "><CmdID>" + std::string(id) + "</CmdID>" + std::string(items) +
         "</" + std::string(name) + ">";
}

// "CmdRef Cmd Code[ TargetRef]" for every Status after the SyncHdr one.
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

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "sessiontest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    OpenDb();
    tree_ = std::make_unique<FakeTree>(*db_);
    tree_->Set("./DevInfo/DevId", kDevId);
    tree_->Set("./DevInfo/Man", "VMware, Inc.");
    tree_->Set("./DevInfo/Mod", "VMware7,1");
    tree_->Set("./DevInfo/DmV", "1.3");
    tree_->Set("./DevInfo/Lang", "en-US");
    options_.server_url = kServerUrl;
  }
  void TearDown() override {
    tree_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenDb() {
    auto db = storage::Database::Open(dir_ / "agent.db", {.migrations = storage::AgentSchema()});
    ASSERT_TRUE(db.ok()) << db.error().ToString();
    db_ = std::move(*db);
  }

  // A session past package 1.
  std::unique_ptr<Session> Started(SessionStart start = {}) {
    auto s = std::make_unique<Session>(*tree_, *db_, options_);
    Result<std::string> p1 = s->Start(start);
    EXPECT_TRUE(p1.ok()) << p1.status().ToString();
    return s;
  }
  // Process() that must produce a message; returns it decoded.
  syncml::Message Answer(Session& s, const std::string& server) {
    Result<std::optional<std::string>> r = s.Process(server);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no answer";
      return {};
    }
    last_xml_ = **r;
    Result<syncml::Message> m = syncml::Decode(**r);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : syncml::Message{};
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<FakeTree> tree_;
  SessionOptions options_;
  std::string last_xml_;
};

// ---- package 1 ---------------------------------------------------------------------------

TEST_F(SessionTest, Package1IsTheCapturedWindowsPackage) {
  options_.encode.pretty = true;
  const auto fixtures =
      std::filesystem::path(DMAGENT_SOURCE_DIR) / "tests/fixtures/windows10-capture";
  Session s1(*tree_, *db_, options_);
  Result<std::string> p1 = s1.Start({});
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(*p1, ReadFile(fixtures / "session1-client-pkg1.xml"));
  EXPECT_EQ(s1.session_id(), "1");
  EXPECT_EQ(tree_->last_user, "");

  // The next session (counter persisted across a reopen of the database) with the pending
  // unenrollment alert.
  tree_.reset();
  db_.reset();
  OpenDb();
  tree_ = std::make_unique<FakeTree>(*db_);
  Session s2(*tree_, *db_, options_);
  SessionStart start;
  start.alerts.push_back({"com.microsoft:mdm.unenrollment.userrequest", "int", {}, {}, "1"});
  Result<std::string> p2 = s2.Start(start);
  ASSERT_TRUE(p2.ok()) << p2.status().ToString();
  EXPECT_EQ(*p2, ReadFile(fixtures / "session2-client-pkg1-unenroll.xml"));
  EXPECT_EQ(s2.session_id(), "2");
}

TEST_F(SessionTest, Package1Variants) {
  SessionStart start;
  start.server_initiated = true;
  start.login_status = "others";
  start.user = "alice";
  Session s(*tree_, *db_, options_);
  Result<std::string> p1 = s.Start(start);
  ASSERT_TRUE(p1.ok());
  const syncml::Message m = *syncml::Decode(*p1);
  EXPECT_EQ(m.commands.at(0).data, "1200");
  EXPECT_EQ(m.commands.at(1).items.at(0).data->text, "others");
  EXPECT_EQ(tree_->last_user, "alice");
  EXPECT_FALSE(s.Start(start).ok());  // once per session

  Session bad(*tree_, *db_, options_);
  start.login_status = "admin";
  EXPECT_EQ(bad.Start(start).status().code(), Code::kInvalidArgument);
}

TEST_F(SessionTest, Package1NeedsDevInfo) {
  ASSERT_TRUE(db_->Run("DELETE FROM fake_nodes WHERE uri = './DevInfo/Mod'").ok());
  Session s(*tree_, *db_, options_);
  Result<std::string> p1 = s.Start({});
  ASSERT_FALSE(p1.ok());
  EXPECT_NE(p1.error().message().find("./DevInfo/Mod"), std::string::npos);
}

TEST_F(SessionTest, ServerStatusesForGenericAlertsAreReported) {
  SessionStart start;
  start.alerts.push_back({"com.example.a", "chr", {}, {}, "1"});
  start.alerts.push_back({"com.example.b", "int", "critical", "./Vendor/MSFT/X", "2"});
  start.alerts.push_back({"com.example.c", "chr", {}, {}, "3"});
  Session s(*tree_, *db_, options_);
  Result<std::string> p1 = s.Start(start);
  ASSERT_TRUE(p1.ok());
  const syncml::Message m = *syncml::Decode(*p1);
  ASSERT_EQ(m.commands.size(), 6u);  // 1201, 1224, three 1226, Replace
  EXPECT_EQ(m.commands[3].cmd_id, "5");
  EXPECT_EQ(m.commands[3].items.at(0).meta->mark, "critical");
  EXPECT_EQ(m.commands[3].items.at(0).source->loc_uri, "./Vendor/MSFT/X");
  EXPECT_EQ(s.generic_alert_statuses(),
            (std::vector<std::optional<int>>{std::nullopt, std::nullopt, std::nullopt}));
  auto status = [](const char* ref, const char* code) {
    return std::string("<Status><CmdID>9</CmdID><MsgRef>1</MsgRef><CmdRef>") + ref +
           "</CmdRef><Cmd>Alert</Cmd><Data>" + code + "</Data></Status>";
  };
  Result<std::optional<std::string>> r =
      s.Process(ServerMsg(status("4", "200") + status("5", "500")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s.generic_alert_statuses(), (std::vector<std::optional<int>>{200, 500, std::nullopt}));
}

TEST_F(SessionTest, SessionIdWrapsAfter9999) {
  ASSERT_TRUE(db_->Run("INSERT INTO agent_session (id, last_session_id) VALUES (1, 9999)").ok());
  EXPECT_EQ(Started()->session_id(), "1");
  EXPECT_EQ(Started()->session_id(), "2");
}

// ---- status discipline --------------------------------------------------------------------

TEST_F(SessionTest, CapturedServerAnswerEndsTheSession) {
  auto s = Started();
  const std::string pkg2 = ReadFile(std::filesystem::path(DMAGENT_SOURCE_DIR) /
                                    "tests/fixtures/windows10-capture/session1-server-pkg2.xml");
  Result<std::optional<std::string>> r = s->Process(pkg2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(s->over());
  EXPECT_FALSE(s->aborted());
  EXPECT_EQ(s->Process(pkg2).status().code(), Code::kFailedPrecondition);
}

TEST_F(SessionTest, StatusOrderAndContent) {
  tree_->Set("./Vendor/MSFT/R1", "old");
  tree_->Set("./DevDetail/SwV", "10.0.19043.1");
  tree_->Set("./DevDetail/HwV", "7&8", "chr");
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Add", "a-1", Item("./Vendor/MSFT/A1", "1", "int")) +
                               Cmd("Replace", "r-1", Item("./Vendor/MSFT/R1", "new")) +
                               Cmd("Get", "g-1", Item("./DevDetail/SwV")) +
                               Cmd("Delete", "d-1", Item("./Vendor/MSFT/Missing")) +
                               Cmd("Get", "g-2", Item("./DevDetail/HwV")) +
                               Cmd("Exec", "e-1", Item("./Vendor/MSFT/Reboot/RebootNow")),
                           /*msg_id=*/1));
  EXPECT_EQ(m.header.session_id, "1");
  EXPECT_EQ(m.header.msg_id, "2");
  EXPECT_EQ(m.header.target.loc_uri, kServerUrl);
  EXPECT_EQ(m.header.source.loc_uri, kDevId);
  ASSERT_GE(m.commands.size(), 9u);
  const Command& hdr = m.commands[0];
  EXPECT_EQ(hdr.cmd_id, "1");
  EXPECT_EQ(hdr.msg_ref, "1");
  EXPECT_EQ(hdr.cmd_ref, "0");
  EXPECT_EQ(hdr.cmd, "SyncHdr");
  EXPECT_EQ(hdr.data, "200");
  EXPECT_EQ(Statuses(m),
            (std::vector<std::string>{"a-1 Add 200", "r-1 Replace 200", "g-1 Get 200",
                                      "d-1 Delete 404", "g-2 Get 200", "e-1 Exec 200"}));
  // Results come after every Status, one per Get, and CmdIDs run 1..n in order.
  ASSERT_EQ(m.commands.size(), 9u);
  for (size_t i = 0; i < m.commands.size(); ++i) {
    EXPECT_EQ(m.commands[i].cmd_id, std::to_string(i + 1));
    EXPECT_EQ(m.commands[i].type, i < 7 ? CommandType::kStatus : CommandType::kResults);
  }
  const Command& r1 = m.commands[7];
  EXPECT_EQ(r1.cmd_ref, "g-1");
  EXPECT_EQ(r1.msg_ref, "1");
  EXPECT_EQ(r1.cmd, "Get");
  EXPECT_EQ(r1.items.at(0).source->loc_uri, "./DevDetail/SwV");
  EXPECT_EQ(r1.items.at(0).meta->format, "chr");
  EXPECT_EQ(r1.items.at(0).data->text, "10.0.19043.1");
  EXPECT_EQ(m.commands[8].items.at(0).data->text, "7&8");
  EXPECT_TRUE(m.final);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/A1"), "1");
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/R1"), "new");
  EXPECT_EQ(tree_->committed, 1);
  EXPECT_TRUE(tree_->committed_outside_txn);
  ASSERT_EQ(s->last_outcomes().size(), 6u);
  EXPECT_EQ(s->last_outcomes()[3].uri, "./Vendor/MSFT/Missing");
  EXPECT_EQ(s->last_outcomes()[3].code, 404);

  // The server acknowledges with Statuses only: nothing more is sent.
  Result<std::optional<std::string>> end = s->Process(ServerMsg("", 2));
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
  EXPECT_TRUE(s->over());
}

TEST_F(SessionTest, MultiItemCommandGetsOneStatusPerItemWhenCodesDiffer) {
  tree_->Set("./Vendor/MSFT/B", "x");
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/A", "1") + Item("./Vendor/MSFT/C", "2")) +
                    Cmd("Add", "2", Item("./Vendor/MSFT/D", "1") + Item("./Vendor/MSFT/B", "2"))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"1 Add 200", "2 Add 200 ./Vendor/MSFT/D",
                                                   "2 Add 418 ./Vendor/MSFT/B"}));
}

TEST_F(SessionTest, NoRespSuppressesTheStatusAndStatusOnlyAnswerIsNotSent) {
  auto s = Started();
  Result<std::optional<std::string>> r = s->Process(
      ServerMsg("<Add><CmdID>1</CmdID><NoResp/>" + Item("./Vendor/MSFT/Quiet", "1") + "</Add>"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());  // it would hold only the SyncHdr Status
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Quiet"), "1");
}

// ---- a server message re-sent ------------------------------------------------------------

// The server did not get our answer and sends its message again: the same answer, byte for
// byte, and nothing runs twice (a second Add would be 418, a second Exec a second action).
TEST_F(SessionTest, AServerMessageSentAgainGetsTheSameAnswerAndRunsNothingTwice) {
  auto s = Started();
  const std::string server_msg = ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/Once", "1")) +
                                               Cmd("Get", "2", Item("./Vendor/MSFT/Once")),
                                           1, /*final=*/false);
  Result<std::optional<std::string>> first = s->Process(server_msg);
  ASSERT_TRUE(first.ok() && first->has_value());
  tree_->Set("./Vendor/MSFT/Once", "changed since");  // a re-run would show this
  Result<std::optional<std::string>> again = s->Process(server_msg);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ(**again, **first);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Once"), "changed since");

  // A different message under the MsgID already answered: refused, none of it runs.
  Result<std::optional<std::string>> forged =
      s->Process(ServerMsg(Cmd("Add", "3", Item("./Vendor/MSFT/Other", "1")), 1));
  ASSERT_TRUE(forged.ok() && forged->has_value());
  Result<syncml::Message> decoded = syncml::Decode(**forged);
  ASSERT_TRUE(decoded.ok());
  ASSERT_FALSE(decoded->commands.empty());
  EXPECT_EQ(decoded->commands[0].cmd, "SyncHdr");
  EXPECT_EQ(decoded->commands[0].data, "400");
  EXPECT_EQ(Statuses(*decoded), std::vector<std::string>{});
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Other"), std::nullopt);

  // The next message is processed as usual.
  const syncml::Message next =
      Answer(*s, ServerMsg(Cmd("Add", "4", Item("./Vendor/MSFT/Next", "1")), 2));
  EXPECT_EQ(Statuses(next), (std::vector<std::string>{"4 Add 200"}));
}

// ---- Atomic and Sequence ----------------------------------------------------------------

TEST_F(SessionTest, AtomicFailureRollsBackEverything) {
  tree_->Set("./Vendor/MSFT/Existing", "keep");
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Atomic", "at",
                               Cmd("Add", "1", Item("./Vendor/MSFT/New1", "1")) +
                                   Cmd("Replace", "2", Item("./Vendor/MSFT/Existing", "changed")) +
                                   Cmd("Replace", "3", Item("./Vendor/MSFT/Fail500", "x")) +
                                   Cmd("Add", "4", Item("./Vendor/MSFT/New2", "2"))) +
                           Cmd("Add", "5", Item("./Vendor/MSFT/Outside", "kept"))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"at Atomic 507", "1 Add 216", "2 Replace 216",
                                                   "3 Replace 500", "4 Add 216", "5 Add 200"}));
  // The storage really rolled back the Atomic, and only the Atomic.
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/New1"), std::nullopt);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Existing"), "keep");
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Outside"), "kept");
}

TEST_F(SessionTest, AtomicSuccessCommits) {
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg(Cmd("Atomic", "at",
                        Cmd("Add", "1", Item("./Vendor/MSFT/X", "1")) +
                            Cmd("Sequence", "2", Cmd("Add", "3", Item("./Vendor/MSFT/Y", "2"))))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"at Atomic 200", "1 Add 200", "2 Sequence 200",
                                                   "3 Add 200"}));
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/X"), "1");
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Y"), "2");
}

TEST_F(SessionTest, NestedAtomicIsRefused) {
  const std::string before = tree_->Dump();
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg(Cmd("Atomic", "o",
                        Cmd("Add", "1", Item("./Vendor/MSFT/X", "1")) +
                            Cmd("Atomic", "i", Cmd("Add", "2", Item("./Vendor/MSFT/Y", "2"))) +
                            Cmd("Add", "3", Item("./Vendor/MSFT/Z", "3")))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"o Atomic 507", "1 Add 216", "i Atomic 500",
                                                   "2 Add 216", "3 Add 216"}));
  EXPECT_EQ(tree_->Dump(), before);
}

TEST_F(SessionTest, GetInsideAtomicIs500) {
  tree_->Set("./Vendor/MSFT/G", "v");
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg(Cmd("Atomic", "a",
                        Cmd("Add", "1", Item("./Vendor/MSFT/X", "1")) +
                            Cmd("Sequence", "2", Cmd("Get", "3", Item("./Vendor/MSFT/G"))))));
  EXPECT_EQ(Statuses(m),
            (std::vector<std::string>{"a Atomic 507", "1 Add 216", "2 Sequence 216", "3 Get 500"}));
  for (const Command& c : m.commands) EXPECT_NE(c.type, CommandType::kResults);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/X"), std::nullopt);
}

// A command that cannot run for a reason of its own keeps its code when a sibling fails first;
// only the ones that would have run are 216.
TEST_F(SessionTest, InAFailedAtomicOwnRefusalsKeepTheirCodes) {
  tree_->Set("./Vendor/MSFT/G", "v");
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg(Cmd("Atomic", "a",
                        Cmd("Replace", "1", Item("./Vendor/MSFT/Fail500", "x")) +
                            Cmd("Get", "2", Item("./Vendor/MSFT/G")) +
                            Cmd("Copy", "3", Item("./Vendor/MSFT/G")) +
                            Cmd("Atomic", "4", Cmd("Add", "5", Item("./Vendor/MSFT/Y", "2"))) +
                            Cmd("Sequence", "6", Cmd("Get", "7", Item("./Vendor/MSFT/G"))) +
                            Cmd("Add", "8", Item("./Vendor/MSFT/Z", "3")) +
                            Cmd("Add", "8", Item("./Vendor/MSFT/Z", "3")))));
  EXPECT_EQ(Statuses(m),
            (std::vector<std::string>{"a Atomic 507", "1 Replace 500", "2 Get 500", "3 Copy 406",
                                      "4 Atomic 500", "5 Add 216", "6 Sequence 216", "7 Get 500",
                                      "8 Add 216", "8 Add 400"}));
  for (const Command& c : m.commands) EXPECT_NE(c.type, CommandType::kResults);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Z"), std::nullopt);
}

TEST_F(SessionTest, AddThenReplaceOfOneNodeInAtomicIsRefused) {
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Atomic", "a",
                               Cmd("Add", "1", Item("./Vendor/MSFT/N", "1")) +
                                   Cmd("Replace", "2", Item("./Device/Vendor/MSFT/N", "2")))));
  // ./Vendor/... and ./Device/Vendor/... name the same node.
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"a Atomic 507", "1 Add 216", "2 Replace 500"}));
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/N"), std::nullopt);
}

TEST_F(SessionTest, SequenceRunsInOrderAndIsNotTransactional) {
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Sequence", "s",
                               Cmd("Add", "1", Item("./Vendor/MSFT/S1", "1")) +
                                   Cmd("Replace", "2", Item("./Vendor/MSFT/Fail500", "x")) +
                                   Cmd("Replace", "3", Item("./Vendor/MSFT/S1", "2")))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"s Sequence 200", "1 Add 200", "2 Replace 500",
                                                   "3 Replace 200"}));
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/S1"), "2");  // applied in order, kept despite the 500
}

// ---- session end, Final, abort ------------------------------------------------------------

TEST_F(SessionTest, MissingFinalIsAccepted) {
  auto s = Started();
  // Commands without Final (Fleet never sets it): the server's package is open and we have
  // nothing of our own to say, so the answer asks for more with Alert 1222 and has no Final.
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/A", "1")), 1, /*final=*/false));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"1 Add 200"}));
  ASSERT_EQ(m.commands.size(), 3u);
  EXPECT_EQ(m.commands[2].type, CommandType::kAlert);
  EXPECT_EQ(m.commands[2].data, "1222");
  EXPECT_FALSE(m.final);

  // With Results to send there is something to say: no 1222.
  tree_->Set("./Vendor/MSFT/G", "v");
  const syncml::Message m2 =
      Answer(*s, ServerMsg(Cmd("Get", "2", Item("./Vendor/MSFT/G")), 2, /*final=*/false));
  for (const Command& c : m2.commands) EXPECT_NE(c.type, CommandType::kAlert);
  EXPECT_EQ(m2.commands.back().type, CommandType::kResults);

  // Statuses only, still no Final: the session is over.
  Result<std::optional<std::string>> r = s->Process(ServerMsg("", 3, /*final=*/false));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(s->over());
}

TEST_F(SessionTest, UuidCmdIdsAreAnsweredVerbatim) {
  // Fleet and dmserver number their commands with UUIDs, not 1, 2, 3.
  constexpr char kAdd[] = "6f1c2a3e-58b0-4c7e-9d2a-0b5e8f3a7c11";
  constexpr char kGet[] = "0d9e4b7a-2c1f-4e68-8a3b-5f6d7c8e9a00";
  tree_->Set("./Vendor/MSFT/G", "v");
  auto s = Started();
  const syncml::Message m = Answer(*s, ServerMsg(Cmd("Add", kAdd, Item("./Vendor/MSFT/A", "1")) +
                                                 Cmd("Get", kGet, Item("./Vendor/MSFT/G"))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{std::string(kAdd) + " Add 200",
                                                   std::string(kGet) + " Get 200"}));
  ASSERT_EQ(m.commands.back().type, CommandType::kResults);
  EXPECT_EQ(m.commands.back().cmd_ref, kGet);
  // Our own CmdIDs stay small integers, unique in the message.
  std::set<std::string> ids;
  for (const Command& c : m.commands) EXPECT_TRUE(ids.insert(c.cmd_id).second) << c.cmd_id;
}

TEST_F(SessionTest, ServerWithoutStatusesForAlertsEndsTheSessionNormally) {
  // Fleet answers package 1 (Alert 1201, 1224, a 1226) with the SyncHdr Status alone.
  SessionStart start;
  start.alerts.push_back(
      {.type = "com.example/T", .format = "chr", .mark = {}, .source = {}, .data = "x"});
  auto s = Started(start);
  Result<std::optional<std::string>> r = s->Process(ServerMsg(""));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(s->over());
  ASSERT_EQ(s->generic_alert_statuses().size(), 1u);
  EXPECT_FALSE(s->generic_alert_statuses()[0].has_value()) << "unanswered: stays in the outbox";
}

TEST_F(SessionTest, Alert1223AbortsAndKeepsNothing) {
  const std::string before = tree_->Dump();
  auto s = Started();
  Result<std::optional<std::string>> r =
      s->Process(ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/A", "1")) +
                           "<Alert><CmdID>2</CmdID><Data>1223</Data></Alert>" +
                           Cmd("Add", "3", Item("./Vendor/MSFT/B", "1"))));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(s->over());
  EXPECT_TRUE(s->aborted());
  EXPECT_EQ(tree_->Dump(), before);
  EXPECT_EQ(tree_->committed, 0);
}

TEST_F(SessionTest, Status214StopsProcessing) {
  const std::string before = tree_->Dump();
  auto s = Started();
  Result<std::optional<std::string>> r = s->Process(
      ServerMsg("<Status><CmdID>2</CmdID><MsgRef>1</MsgRef><CmdRef>4</CmdRef><Cmd>Replace</Cmd>"
                "<Data>214</Data></Status>" +
                Cmd("Add", "3", Item("./Vendor/MSFT/A", "1"))));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(s->over());
  EXPECT_EQ(tree_->Dump(), before);
}

TEST_F(SessionTest, CredentialChallengeEndsWithUnauthenticated) {
  auto s = Started();
  std::string msg = ServerMsg(Cmd("Add", "3", Item("./Vendor/MSFT/A", "1")));
  msg.replace(msg.find("<Data>200</Data>"), 16, "<Data>407</Data>");
  Result<std::optional<std::string>> r = s->Process(msg);
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_TRUE(s->over());
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/A"), std::nullopt);
}

TEST_F(SessionTest, ServerAlertsAndUnsupportedCommands) {
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg("<Alert><CmdID>1</CmdID><Data>1222</Data></Alert>"
                           "<Alert><CmdID>2</CmdID><Data>1101</Data></Alert>"
                           "<Alert><CmdID>3</CmdID><Data>soon</Data></Alert>" +
                           Cmd("Copy", "4", Item("./Vendor/MSFT/A")) + Cmd("Teleport", "5", "") +
                           "<Results><CmdID>6</CmdID><CmdRef>1</CmdRef>" + Item("./x", "1") +
                           "</Results>"));
  // Copy is SyncML but not OMA-DM/MS-MDM: 406. Teleport is no command at all: 400. Results
  // from the server get no Status.
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"1 Alert 200", "2 Alert 406", "3 Alert 400",
                                                   "4 Copy 406", "5 Teleport 400"}));
}

// ---- malformed input ------------------------------------------------------------------------

TEST_F(SessionTest, UndecodableMessageWithReadableHeaderGets400) {
  const std::string before = tree_->Dump();
  auto s = Started();
  std::string msg = ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/A", "1")), 5);
  msg = msg.substr(0, msg.find("<Data>1"));  // truncated in the body
  const syncml::Message m = Answer(*s, msg);
  ASSERT_EQ(m.commands.size(), 1u);
  EXPECT_EQ(m.commands[0].cmd, "SyncHdr");
  EXPECT_EQ(m.commands[0].msg_ref, "5");
  EXPECT_EQ(m.commands[0].data, "400");
  EXPECT_TRUE(m.final);
  EXPECT_EQ(tree_->Dump(), before);
  EXPECT_FALSE(s->over());  // the server may answer and go on

  // Wrong namespace: nothing applied, 400 on the header.
  std::string wrong = ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/A", "1")), 6);
  wrong.replace(wrong.find("SYNCML:SYNCML1.2"), 16, "SYNCML:SYNCML1.1");
  const syncml::Message w = Answer(*s, wrong);
  EXPECT_EQ(w.commands.at(0).data, "400");
  EXPECT_EQ(w.commands.at(0).msg_ref, "6");
  EXPECT_EQ(tree_->Dump(), before);
}

TEST_F(SessionTest, UnreadableMessageIsAnError) {
  auto s = Started();
  for (const char* bad : {"", "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2", "garbage",
                          "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>"}) {
    Result<std::optional<std::string>> r = s->Process(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(tree_->committed, 0);
}

TEST_F(SessionTest, PerCommandProblemsGet400AndTheRestProceeds) {
  tree_->Set("./Vendor/MSFT/Keep", "orig");
  auto s = Started();
  const syncml::Message m = Answer(
      *s, ServerMsg("<Replace>" + Item("./Vendor/MSFT/Keep", "nocmdid") + "</Replace>" +
                    Cmd("Add", "7", Item("./Vendor/MSFT/First", "1")) +
                    Cmd("Add", "7", Item("./Vendor/MSFT/Dup", "1")) +
                    Cmd("Add", "8", Item("/Vendor/MSFT/Abs", "1")) +
                    Cmd("Add", "9", Item("./Vendor/MSFT/Fmt", "1", "integer")) +
                    "<Add><CmdID>10</CmdID><Item><Source><LocURI>./x</LocURI></Source>"
                    "<Data>1</Data></Item></Add>" +
                    Cmd("Replace", "11", Item("./Vendor/MSFT/ReadOnly", "1")) +
                    Cmd("Atomic", "12", "") + Cmd("Add", "13", Item("./Vendor/MSFT/Last", "1"))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{
                             " Replace 400", "7 Add 200", "7 Add 400", "8 Add 400", "9 Add 415",
                             "10 Add 400", "11 Replace 405", "12 Atomic 400", "13 Add 200"}));
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Keep"), "orig");
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/First"), "1");
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Dup"), std::nullopt);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Fmt"), std::nullopt);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Last"), "1");
}

TEST_F(SessionTest, MalformedContainerMembersAreNotExecuted) {
  const std::string before = tree_->Dump();
  auto s = Started();
  const syncml::Message m = Answer(
      *s,
      ServerMsg("<Sequence>" + Cmd("Add", "1", Item("./Vendor/MSFT/A", "1")) + "</Sequence>" +
                Cmd("Atomic", "2", Cmd("Add", "3", Item("./Vendor/MSFT/B", "1")) + "<Bogus/>")));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{" Sequence 400", "1 Add 215", "2 Atomic 507",
                                                   "3 Add 216", " Bogus 400"}));
  EXPECT_EQ(tree_->Dump(), before);
}

TEST_F(SessionTest, OversizedDataIs413) {
  options_.max_obj_size = 100;
  const std::string before = tree_->Dump();
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/Big", std::string(101, 'x'))) +
                           Cmd("Add", "2", Item("./Vendor/MSFT/Fits", std::string(100, 'y')))));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"1 Add 413", "2 Add 200"}));
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Big"), std::nullopt);

  options_.max_message_size = 300;
  auto s2 = Started();
  const syncml::Message m2 =
      Answer(*s2, ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/Huge", std::string(400, 'x')))));
  ASSERT_EQ(m2.commands.size(), 1u);
  EXPECT_EQ(m2.commands[0].data, "413");
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/Huge"), std::nullopt);
}

// ---- large objects and multi-message packages -------------------------------------------

std::string Chunk(std::string_view id, std::string_view uri, std::string_view data, bool more,
                  std::optional<size_t> size = std::nullopt, std::string_view cmd = "Replace") {
  std::string s = "<" + std::string(cmd) + "><CmdID>" + std::string(id) +
                  "</CmdID><Item><Target><LocURI>" + std::string(uri) + "</LocURI></Target>";
  if (size) {
    s += "<Meta><Format xmlns=\"syncml:metinf\">chr</Format><Size xmlns=\"syncml:metinf\">" +
         std::to_string(*size) + "</Size></Meta>";
  }
  s += "<Data>" + std::string(data) + "</Data>";
  if (more) s += "<MoreData/>";
  return s + "</Item></" + std::string(cmd) + ">";
}

TEST_F(SessionTest, IncomingLargeObjectIsReassembled) {
  tree_->Set("./Vendor/MSFT/LO", "old");
  auto s = Started();
  const syncml::Message a =
      Answer(*s, ServerMsg(Chunk("1", "./Vendor/MSFT/LO", "abc", true, 9), 1, false));
  EXPECT_EQ(Statuses(a), (std::vector<std::string>{"1 Replace 213"}));
  EXPECT_EQ(a.commands.back().data, "1222");  // pull the next message
  EXPECT_FALSE(a.final);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/LO"), "old");  // nothing applied before the last chunk

  const syncml::Message b =
      Answer(*s, ServerMsg(Chunk("1", "./Vendor/MSFT/LO", "def", true), 2, false));
  EXPECT_EQ(Statuses(b), (std::vector<std::string>{"1 Replace 213"}));
  const syncml::Message c = Answer(*s, ServerMsg(Chunk("1", "./Vendor/MSFT/LO", "ghi", false), 3));
  EXPECT_EQ(Statuses(c), (std::vector<std::string>{"1 Replace 200"}));
  EXPECT_TRUE(c.final);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/LO"), "abcdefghi");
}

TEST_F(SessionTest, IncomingLargeObjectErrors) {
  options_.max_obj_size = 10;
  tree_->Set("./Vendor/MSFT/LO", "old");
  auto s = Started();
  // Size mismatch against Meta Size: 424 on the last chunk, nothing applied.
  Answer(*s, ServerMsg(Chunk("1", "./Vendor/MSFT/LO", "abc", true, 5), 1, false));
  syncml::Message m = Answer(*s, ServerMsg(Chunk("2", "./Vendor/MSFT/LO", "d", false), 2, false));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"2 Replace 424"}));
  // Declared above our MaxObjSize: 413 at once and for every later chunk.
  m = Answer(*s, ServerMsg(Chunk("3", "./Vendor/MSFT/LO", "abc", true, 11), 3, false));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"3 Replace 413"}));
  m = Answer(*s, ServerMsg(Chunk("4", "./Vendor/MSFT/LO", "def", false), 4, false));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"4 Replace 413"}));
  // No Size, but the chunks add up past MaxObjSize.
  m = Answer(*s, ServerMsg(Chunk("5", "./Vendor/MSFT/LO", "123456", true), 5, false));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"5 Replace 213"}));
  m = Answer(*s, ServerMsg(Chunk("6", "./Vendor/MSFT/LO", "789012", false), 6, false));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"6 Replace 413"}));
  // Interrupted by another command: Alert 1225 for the abandoned object, the command runs.
  m = Answer(*s, ServerMsg(Chunk("7", "./Vendor/MSFT/LO", "abc", true, 6), 7, false));
  m = Answer(*s, ServerMsg(Cmd("Add", "8", Item("./Vendor/MSFT/Other", "1")), 8));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"8 Add 200"}));
  bool saw_1225 = false;
  for (const Command& c : m.commands) {
    if (c.type == CommandType::kAlert && c.data == "1225") {
      saw_1225 = true;
      EXPECT_EQ(c.items.at(0).target->loc_uri, "./Device/Vendor/MSFT/LO");
    }
  }
  EXPECT_TRUE(saw_1225);
  EXPECT_EQ(tree_->Value("./Vendor/MSFT/LO"), "old");
  // MoreData on a Get is a bad request.
  m = Answer(*s, ServerMsg(Chunk("9", "./Vendor/MSFT/LO", "", true, std::nullopt, "Get"), 9));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"9 Get 400"}));
}

// Drives the session until the server has everything: the server answers each client message
// with Statuses only (213 for chunks) plus Alert 1222 while the client's package is not final.
std::vector<syncml::Message> DrainClientPackage(Session& s, syncml::Message first,
                                                std::vector<std::string>* xmls, int* msg_id) {
  std::vector<syncml::Message> sent{first};
  while (!sent.back().final) {
    const syncml::Message& last = sent.back();
    std::string body;
    for (const Command& c : last.commands) {
      if (c.type != CommandType::kResults) continue;
      const bool more = !c.items.empty() && c.items.back().more_data;
      body += "<Status><CmdID>" + std::to_string(*msg_id) + "0</CmdID><MsgRef>" +
              last.header.msg_id + "</MsgRef><CmdRef>" + c.cmd_id +
              "</CmdRef><Cmd>Results</Cmd><Data>" + (more ? "213" : "200") + "</Data></Status>";
    }
    body += "<Alert><CmdID>99</CmdID><Data>1222</Data></Alert>";
    Result<std::optional<std::string>> r = s.Process(ServerMsg(body, ++*msg_id));
    EXPECT_TRUE(r.ok() && r->has_value());
    if (!r.ok() || !r->has_value()) break;
    xmls->push_back(**r);
    sent.push_back(*syncml::Decode(**r));
    if (sent.size() > 200) {
      ADD_FAILURE() << "no end";
      break;
    }
  }
  return sent;
}

TEST_F(SessionTest, LargeResultsAreChunkedUnderTheServersMaxMsgSize) {
  std::string big;
  for (int i = 0; i < 700; ++i) big += "<a&b> \xC3\xA9\xE2\x82\xAC ";  // escapes + UTF-8
  tree_->Set("./Vendor/MSFT/Big", big);
  tree_->Set("./Vendor/MSFT/Small", "s");
  auto s = Started();
  constexpr size_t kMax = 2000;
  const std::string meta =
      "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">" + std::to_string(kMax) + "</MaxMsgSize></Meta>";
  const std::string get =
      Cmd("Get", "g", Item("./Vendor/MSFT/Big")) + Cmd("Get", "h", Item("./Vendor/MSFT/Small"));
  Result<std::optional<std::string>> r = s->Process(ServerMsg(get, 1, true, meta));
  ASSERT_TRUE(r.ok() && r->has_value());
  std::vector<std::string> xmls{**r};
  int msg_id = 1;
  const std::vector<syncml::Message> sent =
      DrainClientPackage(*s, *syncml::Decode(**r), &xmls, &msg_id);
  ASSERT_GT(sent.size(), 3u);
  for (const std::string& x : xmls) EXPECT_LE(x.size(), kMax);
  for (size_t i = 0; i + 1 < sent.size(); ++i) EXPECT_FALSE(sent[i].final) << i;
  EXPECT_TRUE(sent.back().final);

  std::string assembled;
  std::optional<uint64_t> declared;
  bool small_seen = false;
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].header.msg_id, std::to_string(i + 2));
    EXPECT_EQ(sent[i].commands.at(0).cmd, "SyncHdr");  // the SyncHdr Status is always first
    for (const Command& c : sent[i].commands) {
      if (c.type != CommandType::kResults) continue;
      for (const syncml::Item& it : c.items) {
        if (it.source->loc_uri == "./Vendor/MSFT/Small") {
          small_seen = true;
          continue;
        }
        EXPECT_EQ(c.cmd_ref, "g");
        if (it.meta && it.meta->size) {
          EXPECT_FALSE(declared.has_value());  // Size only on the first chunk
          declared = it.meta->size;
          EXPECT_TRUE(it.more_data);
        }
        assembled += it.data->text;
      }
    }
  }
  EXPECT_TRUE(small_seen);
  EXPECT_EQ(declared, big.size());
  EXPECT_EQ(assembled, big);

  // The server ends with Statuses only: session over.
  Result<std::optional<std::string>> end = s->Process(ServerMsg("", ++msg_id));
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST_F(SessionTest, ServerRefusingAChunkStopsTheLargeObject) {
  tree_->Set("./Vendor/MSFT/Big", std::string(5000, 'q'));
  auto s = Started();
  const std::string meta = "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1500</MaxMsgSize></Meta>";
  const syncml::Message first =
      Answer(*s, ServerMsg(Cmd("Get", "g", Item("./Vendor/MSFT/Big")), 1, true, meta));
  const Command& chunk = first.commands.back();
  ASSERT_EQ(chunk.type, CommandType::kResults);
  ASSERT_TRUE(chunk.items.at(0).more_data);
  EXPECT_FALSE(first.final);
  // The server answers the chunk with 413: nothing more of the object is sent, and with only
  // Statuses from the server the session ends.
  Result<std::optional<std::string>> r =
      s->Process(ServerMsg("<Status><CmdID>2</CmdID><MsgRef>2</MsgRef><CmdRef>" + chunk.cmd_id +
                               "</CmdRef><Cmd>Results</Cmd><Data>413</Data></Status>",
                           2, true, meta));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_TRUE(s->over());
}

TEST_F(SessionTest, StatusesSpillOverSeveralMessages) {
  auto s = Started();
  std::string body;
  for (int i = 0; i < 40; ++i) {
    body += Cmd("Add", "c" + std::to_string(i), Item("./Vendor/MSFT/N" + std::to_string(i), "1"));
  }
  const std::string meta = "<Meta><MaxMsgSize xmlns=\"syncml:metinf\">1200</MaxMsgSize></Meta>";
  Result<std::optional<std::string>> r = s->Process(ServerMsg(body, 1, true, meta));
  ASSERT_TRUE(r.ok() && r->has_value());
  std::vector<std::string> xmls{**r};
  int msg_id = 1;
  const std::vector<syncml::Message> sent =
      DrainClientPackage(*s, *syncml::Decode(**r), &xmls, &msg_id);
  ASSERT_GT(sent.size(), 2u);
  std::vector<std::string> refs;
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_LE(xmls[i].size(), 1200u);
    EXPECT_EQ(sent[i].commands.at(0).cmd, "SyncHdr");
    for (const Command& c : sent[i].commands) {
      if (c.type == CommandType::kStatus && c.cmd == "Add") refs.push_back(c.cmd_ref);
    }
  }
  ASSERT_EQ(refs.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(refs[i], "c" + std::to_string(i));  // request order
}

TEST_F(SessionTest, ResultAboveServersMaxObjSizeIs413) {
  tree_->Set("./Vendor/MSFT/Big", std::string(500, 'x'));
  auto s = Started();
  const std::string meta = "<Meta><MaxObjSize xmlns=\"syncml:metinf\">100</MaxObjSize></Meta>";
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Get", "1", Item("./Vendor/MSFT/Big")), 1, true, meta));
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"1 Get 413"}));
  for (const Command& c : m.commands) EXPECT_NE(c.type, CommandType::kResults);
}

// ---- local management (dmagent exec) ------------------------------------------------------

TEST_F(SessionTest, ProcessWithoutStartAnswersInTheServersSession) {
  options_.server_url.clear();
  Session s(*tree_, *db_, options_);
  std::string msg = ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/L", "1")), 4);
  msg.replace(msg.find("<SessionID>1</SessionID>"), 24, "<SessionID>AB</SessionID>");
  Result<std::optional<std::string>> r = s.Process(msg);
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status().ToString();
  const syncml::Message m = *syncml::Decode(**r);
  EXPECT_EQ(m.header.session_id, "AB");
  EXPECT_EQ(m.header.msg_id, "1");
  EXPECT_EQ(m.header.target.loc_uri, kServerUrl);
  EXPECT_EQ(m.header.source.loc_uri, kDevId);
  EXPECT_EQ(m.commands.at(0).msg_ref, "4");
  EXPECT_EQ(Statuses(m), (std::vector<std::string>{"1 Add 200"}));
}

TEST_F(SessionTest, RespUriAndAdvertisedLimits) {
  options_.advertise_limits = true;
  options_.max_msg_size = 65536;
  auto s = Started();
  const syncml::Message m =
      Answer(*s, ServerMsg(Cmd("Add", "1", Item("./Vendor/MSFT/A", "1")), 1, true,
                           "<RespURI>https://mdm.example/next?s=1</RespURI>"));
  EXPECT_EQ(s->resp_uri(), "https://mdm.example/next?s=1");
  ASSERT_TRUE(m.header.meta.has_value());
  EXPECT_EQ(m.header.meta->max_msg_size, 65536u);
  EXPECT_EQ(m.header.meta->max_obj_size, options_.max_obj_size);
}

}  // namespace
}  // namespace dm::agent
