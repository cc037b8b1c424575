// The generic status rules, on a small CSP table that has one node of every kind.
#include "csp/tree.h"

#include <gtest/gtest.h>

#include <map>

#include "csp/test_support.h"

namespace dm::csp {
namespace {

using testing::Bool;
using testing::Chr;
using testing::Int;
using testing::NodeFmt;

constexpr char kGuid[] = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";
constexpr char kGuid2[] = "11111111-2222-3333-4444-555555555555";

class TreeTest : public testing::DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    tree_ = std::make_unique<Tree>(db(), clock_);
    tree_->Mount("Vendor/MSFT", TestCsp());
  }

  // ./Vendor/MSFT/Test
  //   {Id}         GUID, stored, Add/Delete/Get
  //     Child      stored, Add/Delete/Get
  //       Flag     bool, stored
  //       Level    int 1..5, stored
  //     Ext        bool, external (held in `external_`)
  //   DeviceOnly   permanent, device scope
  //     Leaf       chr, stored
  //   ReadOnly     chr, computed Get-only
  //   Action       null, Exec (counts in `execs_`)
  //   Defaulted    int, stored, default 7
  NodeDef TestCsp() {
    NodeDef level = Leaf("Level", Format::kInt, access::kAddDeleteGetReplace, Storage::kStored);
    level.validate = [](const NodeAddress&, std::string_view v) -> Status {
      if (v.size() != 1 || v[0] < '1' || v[0] > '5') return InvalidArgument("Level 1..5");
      return Status::Ok();
    };
    NodeDef ext = Leaf("Ext", Format::kBool, access::kAddDeleteGetReplace, Storage::kExternal);
    ext.read = [this](const NodeAddress& a) -> Result<std::optional<std::string>> {
      auto it = external_.find(a.Uri());
      if (it == external_.end()) return std::optional<std::string>();
      return std::optional<std::string>(it->second);
    };
    ext.write = [this](const NodeAddress& a, std::string_view v) -> Status {
      if (fail_writes_) return Internal("writer down");
      external_[a.Uri()] = std::string(v);
      tenant_seen_ = a.dynamic.empty() ? "" : a.dynamic.front();
      return Status::Ok();
    };
    ext.clear = [this](const NodeAddress& a) -> Status {
      if (external_.erase(a.Uri()) == 0) return NotFound("nothing");
      return Status::Ok();
    };
    NodeDef action = ComputedLeaf("Action", Format::kNull, [](const NodeAddress&) {
      return Result<std::optional<std::string>>(std::optional<std::string>(""));
    });
    action.access = access::kExec | access::kGet;
    action.exec = [this](const NodeAddress&, const NodeValue& v) {
      ++execs_;
      last_exec_data_ = v.data;
      return OpResult{};
    };
    return Interior(
        "Test", access::kGet, Storage::kPermanent,
        {DynamicInterior(
             Naming::kGuid, "{Id}", access::kAddDeleteGet, Storage::kStored,
             {Interior("Child", access::kAddDeleteGet, Storage::kStored,
                       {Leaf("Flag", Format::kBool, access::kAddDeleteGetReplace, Storage::kStored),
                        std::move(level)}),
              std::move(ext)}),
         std::move(
             Interior("DeviceOnly", access::kGet, Storage::kPermanent,
                      {Leaf("Leaf", Format::kChr, access::kAddDeleteGetReplace, Storage::kStored)}))
             .DeviceOnly(),
         ComputedLeaf("ReadOnly", Format::kChr,
                      [](const NodeAddress&) {
                        return Result<std::optional<std::string>>(std::optional<std::string>("ro"));
                      }),
         std::move(action),
         std::move(Leaf("Defaulted", Format::kInt, access::kAddDeleteGetReplace, Storage::kStored))
             .Default("7")});
  }

  std::string Base(std::string_view id = kGuid) { return "./Vendor/MSFT/Test/" + std::string(id); }

  Context device_;
  Context alice_{"alice"};
  std::unique_ptr<Tree> tree_;
  std::map<std::string, std::string> external_;
  bool fail_writes_ = false;
  std::string tenant_seen_;
  int execs_ = 0;
  std::string last_exec_data_;
};

TEST_F(TreeTest, AddInteriorThenAddAgainIs418) {
  EXPECT_EQ(tree_->Add(device_, Base(), NodeFmt()).code, 200);
  EXPECT_EQ(tree_->Add(device_, Base(), NodeFmt()).code, 418);
  // No Meta Format (the session passes chr) and no data is an interior Add too.
  EXPECT_EQ(tree_->Add(device_, Base(kGuid2), Chr("")).code, 200);
  auto g = tree_->Get(device_, "./Vendor/MSFT/Test");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.format, "node");
  EXPECT_EQ(g.value.data,
            std::string(kGuid) + "/" + kGuid2 + "/DeviceOnly/ReadOnly/Action/Defaulted");
}

TEST_F(TreeTest, InteriorAddWithDataOrLeafFormatIsRefused) {
  EXPECT_EQ(tree_->Add(device_, Base(), Chr("x")).code, 400);
  EXPECT_EQ(tree_->Add(device_, Base(), Int("")).code, 415);
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);
}

TEST_F(TreeTest, AddCreatesMissingInteriorNodesImplicitly) {
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("true")).code, 200);
  auto g = tree_->Get(device_, Base());
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "Child");
  g = tree_->Get(device_, Base() + "/Child");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "Flag");
  g = tree_->Get(device_, Base() + "/Child/Flag");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "true");
  EXPECT_EQ(g.value.format, "bool");
}

TEST_F(TreeTest, AddOfExistingLeafWithSameValueIsIdempotent) {
  ASSERT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("true")).code, 200);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("true")).code, 200);
  // Same value after normalisation.
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("TRUE")).code, 200);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("false")).code, 418);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").value.data, "true");
  ASSERT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("3")).code, 200);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("+03")).code, 200);
}

TEST_F(TreeTest, GetAndDeleteOfMissingNodesAre404) {
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").code, 404);
  EXPECT_EQ(tree_->Delete(device_, Base()).code, 404);
  EXPECT_EQ(tree_->Delete(device_, Base() + "/Child/Flag").code, 404);
  ASSERT_EQ(tree_->Add(device_, Base(), NodeFmt()).code, 200);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child").code, 404);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Level").code, 404);
  EXPECT_EQ(tree_->Delete(device_, Base() + "/Child").code, 404);
}

TEST_F(TreeTest, UndefinedUriIs404ForEveryOperation) {
  const std::string undefined = "./Vendor/MSFT/Test/DeviceOnly/NoSuchNode";
  EXPECT_EQ(tree_->Get(device_, undefined).code, 404);
  EXPECT_EQ(tree_->Add(device_, undefined, Chr("x")).code, 404);
  EXPECT_EQ(tree_->Replace(device_, undefined, Chr("x")).code, 404);
  EXPECT_EQ(tree_->Delete(device_, undefined).code, 404);
  EXPECT_EQ(tree_->Exec(device_, undefined, Chr("")).code, 404);
  EXPECT_EQ(tree_->Replace(device_, Base() + "/Child/Nope", Bool("true")).code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Nope").code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Nope").code, 404);
}

TEST_F(TreeTest, ReplaceOfDefinedLeafCreatesMissingDynamicParents) {
  auto r = tree_->Replace(device_, Base() + "/Child/Level", Int("4"));
  ASSERT_EQ(r.code, 200) << r.reason;
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Level").value.data, "4");
  EXPECT_EQ(tree_->Replace(device_, Base() + "/Child/Level", Int("5")).code, 200);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Level").value.data, "5");
  // Interior nodes cannot be replaced.
  EXPECT_EQ(tree_->Replace(device_, Base(), NodeFmt()).code, 405);
}

TEST_F(TreeTest, ReadOnlyNodesAre405) {
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Test/ReadOnly").value.data, "ro");
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/Test/ReadOnly", Chr("x")).code, 405);
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/Test/ReadOnly", Chr("ro")).code, 405);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT/Test/ReadOnly").code, 405);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT/Test").code, 405);
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/Test", NodeFmt()).code, 405);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT").code, 405);
}

TEST_F(TreeTest, ExecRules) {
  EXPECT_EQ(tree_->Exec(device_, "./Vendor/MSFT/Test/ReadOnly", Chr("")).code, 405);
  EXPECT_EQ(tree_->Exec(device_, "./Vendor/MSFT/Test/Defaulted", Chr("")).code, 405);
  EXPECT_EQ(execs_, 0);
  EXPECT_EQ(tree_->Exec(device_, "./Vendor/MSFT/Test/Action", Chr("payload")).code, 200);
  EXPECT_EQ(execs_, 1);
  EXPECT_EQ(last_exec_data_, "payload");
  auto g = tree_->Get(device_, "./Vendor/MSFT/Test/Action");
  EXPECT_EQ(g.code, 200);
  EXPECT_EQ(g.value.format, "null");
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/Test/Action", Chr("")).code, 405);
}

TEST_F(TreeTest, DeviceOnlyNodeUnderUserIs405) {
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/Test/DeviceOnly/Leaf", Chr("d")).code, 200);
  EXPECT_EQ(tree_->Get(device_, "./Device/Vendor/MSFT/Test/DeviceOnly/Leaf").value.data, "d");
  auto r = tree_->Replace(alice_, "./User/Vendor/MSFT/Test/DeviceOnly/Leaf", Chr("u"));
  EXPECT_EQ(r.code, 405);
  EXPECT_NE(r.reason.find("device-only"), std::string::npos) << r.reason;
  EXPECT_EQ(tree_->Get(alice_, "./User/Vendor/MSFT/Test/DeviceOnly").code, 405);
  // The user's view of the parent does not list it.
  auto g = tree_->Get(alice_, "./User/Vendor/MSFT/Test");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data.find("DeviceOnly"), std::string::npos);
  EXPECT_NE(tree_->Get(device_, "./Vendor/MSFT/Test").value.data.find("DeviceOnly"),
            std::string::npos);
}

TEST_F(TreeTest, UserScopeNeedsAUserAndIsPerUser) {
  const std::string user_base = "./User/Vendor/MSFT/Test/" + std::string(kGuid);
  EXPECT_EQ(tree_->Add(device_, user_base, NodeFmt()).code, 404);  // no signed-in user
  ASSERT_EQ(tree_->Add(alice_, user_base + "/Child/Flag", Bool("true")).code, 200);
  Context bob{"bob"};
  EXPECT_EQ(tree_->Get(bob, user_base + "/Child/Flag").code, 404);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").code, 404);
  EXPECT_EQ(tree_->Get(alice_, user_base + "/Child/Flag").value.data, "true");
}

TEST_F(TreeTest, WrongFormatIs415) {
  auto r = tree_->Add(device_, Base() + "/Child/Flag", Chr("true"));
  EXPECT_EQ(r.code, 415);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Int("1")).code, 415);
  EXPECT_EQ(tree_->Replace(device_, Base() + "/Child/Level", Bool("true")).code, 415);
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);  // nothing created on the way
  // Format names are matched case-insensitively.
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", NodeValue{"true", "BOOL"}).code, 200);
}

TEST_F(TreeTest, BadValuesAre400) {
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("yes")).code, 400);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("abc")).code, 400);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("")).code, 400);
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("99999999999999999999")).code, 400);
  auto r = tree_->Add(device_, Base() + "/Child/Level", Int("9"));
  EXPECT_EQ(r.code, 400);
  EXPECT_NE(r.reason.find("1..5"), std::string::npos);
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);
}

TEST_F(TreeTest, DynamicNameRules) {
  // Braces, or not a GUID at all: 400 when creating, 404 when addressing.
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/Test/{" + std::string(kGuid) + "}", NodeFmt()).code,
            400);
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/Test/tenant/Child/Flag", Bool("true")).code, 400);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Test/tenant").code, 404);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT/Test/tenant").code, 404);
  EXPECT_EQ(tree_->Exec(device_, "./Vendor/MSFT/Test/tenant", Chr("")).code, 404);
  // A name that is neither static nor a valid GUID with a child the {Id} node lacks: 404.
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/Test/Typo/Nope", Chr("")).code, 404);
  // GUIDs compare case-insensitively: the node is stored lower-case.
  std::string upper = kGuid;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_EQ(tree_->Add(device_, Base(upper), NodeFmt()).code, 200);
  EXPECT_EQ(tree_->Add(device_, Base(), NodeFmt()).code, 418);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Test").value.data.substr(0, 36), kGuid);
}

TEST_F(TreeTest, StaticNamesMatchCaseInsensitively) {
  ASSERT_EQ(
      tree_->Add(device_, "./vendor/msft/test/" + std::string(kGuid) + "/child/flag", Bool("true"))
          .code,
      200);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").value.data, "true");
}

TEST_F(TreeTest, DeleteRemovesSubtreeAndClearsExternalValues) {
  ASSERT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("true")).code, 200);
  ASSERT_EQ(tree_->Add(device_, Base() + "/Ext", Bool("true")).code, 200);
  EXPECT_EQ(tenant_seen_, kGuid);
  ASSERT_EQ(external_.size(), 1u);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Ext").value.data, "true");
  EXPECT_EQ(tree_->Get(device_, Base()).value.data, "Child/Ext");
  EXPECT_EQ(tree_->Delete(device_, Base()).code, 200);
  EXPECT_TRUE(external_.empty());
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").code, 404);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Ext").code, 404);
  // And it can be added again from scratch.
  EXPECT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("false")).code, 200);
}

TEST_F(TreeTest, DeleteOfLeaf) {
  ASSERT_EQ(tree_->Add(device_, Base() + "/Ext", Bool("false")).code, 200);
  ASSERT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("2")).code, 200);
  EXPECT_EQ(tree_->Delete(device_, Base() + "/Ext").code, 200);
  EXPECT_TRUE(external_.empty());
  EXPECT_EQ(tree_->Get(device_, Base() + "/Ext").code, 404);
  EXPECT_EQ(tree_->Delete(device_, Base() + "/Child/Level").code, 200);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Level").code, 404);
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child").code, 200);  // the parent stays
}

TEST_F(TreeTest, DefaultedLeaf) {
  const std::string uri = "./Vendor/MSFT/Test/Defaulted";
  auto g = tree_->Get(device_, uri);
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "7");
  EXPECT_EQ(g.value.format, "int");
  EXPECT_EQ(tree_->Delete(device_, uri).code, 200);  // already the default
  EXPECT_EQ(tree_->Add(device_, uri, Int("8")).code, 200);
  EXPECT_EQ(tree_->Add(device_, uri, Int("9")).code, 418);
  EXPECT_EQ(tree_->Get(device_, uri).value.data, "8");
  EXPECT_EQ(tree_->Delete(device_, uri).code, 200);
  EXPECT_EQ(tree_->Get(device_, uri).value.data, "7");
}

TEST_F(TreeTest, FailedCommandLeavesNothingBehind) {
  fail_writes_ = true;
  auto r = tree_->Add(device_, Base() + "/Ext", Bool("true"));
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);  // the implicit parent was rolled back
}

TEST_F(TreeTest, CommandsJoinTheCallersTransaction) {
  {
    auto tx = db().Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_EQ(tree_->Add(device_, Base() + "/Child/Flag", Bool("true")).code, 200);
    EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").code, 200);
    ASSERT_TRUE(tx->Rollback().ok());  // an Atomic that failed
  }
  EXPECT_EQ(tree_->Get(device_, Base() + "/Child/Flag").code, 404);
  EXPECT_EQ(tree_->Get(device_, Base()).code, 404);
}

TEST_F(TreeTest, MalformedUrisAre400AndQueriesAre406) {
  EXPECT_EQ(tree_->Get(device_, "/Vendor/MSFT/Test").code, 400);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Test/").code, 400);
  EXPECT_EQ(tree_->Add(device_, "./Vendor//MSFT", Chr("")).code, 400);
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/../Test/Defaulted", Int("1")).code, 400);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT/Test/%zz").code, 400);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/Test?list=StructData").code, 406);
}

TEST_F(TreeTest, RootAndIntermediateNodesList) {
  auto g = tree_->Get(device_, ".");
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.data, "Vendor");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT").value.data, "Test");
  EXPECT_EQ(tree_->Get(alice_, "./User/Vendor/MSFT").value.data, "Test");
}

TEST_F(TreeTest, StatePersistsAcrossTreeInstances) {
  ASSERT_EQ(tree_->Add(device_, Base() + "/Child/Level", Int("3")).code, 200);
  tree_.reset();
  Reopen();
  Tree again(db(), clock_);
  again.Mount("Vendor/MSFT", TestCsp());
  EXPECT_EQ(again.Get(device_, Base() + "/Child/Level").value.data, "3");
}

TEST_F(TreeTest, OnCommittedRunsTheHook) {
  int calls = 0;
  tree_->SetOnCommitted([&] { ++calls; });
  tree_->OnCommitted();
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace dm::csp
