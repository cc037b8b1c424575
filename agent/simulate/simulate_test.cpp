// The simulator's parts that need no server: the failing-tree decorator and the fleet file.
// (The whole simulator against dmserver is in tests/e2e/simulate_test.cpp.)
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "agent/simulate/failing_tree.h"
#include "agent/simulate/fleet_store.h"

namespace dm::agent {
namespace {

namespace fs = std::filesystem;

TEST(FailingTreeTest, FailsAStableShareThatDiffersBetweenDevices) {
  int failed_a = 0, differ = 0;
  constexpr int kUris = 10000;
  for (int i = 0; i < kUris; ++i) {
    const std::string uri = "./Device/Vendor/MSFT/Policy/Config/Area/Setting" + std::to_string(i);
    const bool a = SimulatedFailure(0.25, 1, uri);
    EXPECT_EQ(a, SimulatedFailure(0.25, 1, uri));  // the same device fails it every time
    failed_a += a;
    differ += a != SimulatedFailure(0.25, 2, uri);
  }
  EXPECT_GT(failed_a, kUris * 0.22);
  EXPECT_LT(failed_a, kUris * 0.28);
  EXPECT_GT(differ, kUris / 4);  // another device fails other settings
  EXPECT_FALSE(SimulatedFailure(0.0, 1, "./x"));
  EXPECT_TRUE(SimulatedFailure(1.0, 1, "./x"));
}

class RecordingTree final : public csp::DmTree {
 public:
  csp::OpResult Add(const csp::Context&, std::string_view, const csp::NodeValue&) override {
    return {.code = 200, .reason = ""};
  }
  csp::OpResult Replace(const csp::Context&, std::string_view, const csp::NodeValue&) override {
    ++replaced;
    return {.code = 200, .reason = ""};
  }
  csp::OpResult Delete(const csp::Context&, std::string_view) override {
    return {.code = 200, .reason = ""};
  }
  csp::GetResult Get(const csp::Context&, std::string_view) override { return {}; }
  csp::OpResult Exec(const csp::Context&, std::string_view, const csp::NodeValue&) override {
    return {.code = 200, .reason = ""};
  }
  int replaced = 0;
};

TEST(FailingTreeTest, DecoratorAnswers500AndKeepsReadsWorking) {
  auto inner = std::make_unique<RecordingTree>();
  RecordingTree* raw = inner.get();
  auto tree = MakeFailingTree(std::move(inner), 1.0, 3);
  auto r = tree->Replace({}, "./Vendor/MSFT/X", {});
  EXPECT_EQ(r.code, csp::status::kCommandFailed);
  EXPECT_EQ(r.reason, "simulated failure");
  EXPECT_EQ(raw->replaced, 0);  // the failed write never reached the real tree
  EXPECT_EQ(tree->Get({}, "./DevInfo/DevId").code, 200);
  // Share 0: no decorator at all.
  auto plain = std::make_unique<RecordingTree>();
  RecordingTree* plain_raw = plain.get();
  EXPECT_EQ(MakeFailingTree(std::move(plain), 0.0, 3).get(), plain_raw);
}

class FleetStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "fleet-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FleetStoreTest, SavedImagesAreReadableAtOnceAndDurableAfterReopen) {
  {
    auto store = FleetStore::Open(dir_ / "fleet.db");
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    EXPECT_EQ(*(*store)->Count(), 0);
    (*store)->Save(1, Bytes{1, 2, 3});
    (*store)->Save(2, Bytes{4});
    // Readable before the batch commits: a session right after another sees its state.
    EXPECT_EQ(*(*(*store)->Load(1)), (Bytes{1, 2, 3}));
    (*store)->Save(1, Bytes{9});
    ASSERT_TRUE((*store)->Flush().ok());
    EXPECT_EQ(*(*(*store)->Load(1)), Bytes{9});
    EXPECT_FALSE((*(*store)->Load(3)).has_value());
    (*store)->Save(3, Bytes(1000, 7));
  }  // closing commits what is pending
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "fleet.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto store = FleetStore::Open(dir_ / "fleet.db");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->Count(), 3);
  EXPECT_EQ(*(*(*store)->Load(2)), Bytes{4});
  EXPECT_EQ((*(*store)->Load(3))->size(), 1000u);
  EXPECT_EQ(*(*store)->TotalImageBytes(), 1 + 1 + 1000);
}

TEST_F(FleetStoreTest, ConcurrentSavesAndLoadsNeverSeeAnOlderImage) {
  auto store = FleetStore::Open(dir_ / "fleet.db");
  ASSERT_TRUE(store.ok());
  FleetStore& s = **store;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&s, t] {
      for (uint8_t v = 1; v <= 200; ++v) {
        s.Save(t + 1, Bytes{v});
        auto got = s.Load(t + 1);
        ASSERT_TRUE(got.ok() && got->has_value());
        EXPECT_EQ((**got)[0], v);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(s.Flush().ok());
  for (int t = 1; t <= 4; ++t) EXPECT_EQ((*(*s.Load(t)))[0], 200);
}

}  // namespace
}  // namespace dm::agent
