#include "csp/dmclient.h"

#include <gtest/gtest.h>

#include "csp/csps_internal.h"
#include "csp/test_support.h"
#include "csp/tree.h"

namespace dm::csp {
namespace {

using std::chrono::minutes;
using testing::Bool;
using testing::Chr;
using testing::Int;
using testing::NodeFmt;

constexpr char kProvider[] = "./Vendor/MSFT/DMClient/Provider/MS%20DM%20Server";

class DmClientTest : public testing::DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    tree_ = std::make_unique<Tree>(db(), clock_);
    tree_->Mount("Vendor/MSFT", DmClientCsp());
  }
  std::string Poll(std::string_view leaf) {
    return std::string(kProvider) + "/Poll/" + std::string(leaf);
  }
  Context ctx_;
  std::unique_ptr<Tree> tree_;
};

TEST_F(DmClientTest, ProviderAddGetDelete) {
  EXPECT_EQ(tree_->Get(ctx_, kProvider).code, 404);
  ASSERT_EQ(tree_->Add(ctx_, kProvider, NodeFmt()).code, 200);
  EXPECT_EQ(tree_->Add(ctx_, kProvider, NodeFmt()).code, 418);
  auto list = tree_->Get(ctx_, "./Vendor/MSFT/DMClient/Provider");
  ASSERT_EQ(list.code, 200);
  EXPECT_EQ(list.value.data, "MS%20DM%20Server");
  auto providers = ListProviders(db());
  ASSERT_TRUE(providers.ok());
  EXPECT_EQ(*providers, std::vector<std::string>{"MS DM Server"});

  ASSERT_EQ(tree_->Add(ctx_, std::string(kProvider) + "/EntDMID", Chr("dev-42")).code, 200);
  EXPECT_EQ(tree_->Get(ctx_, std::string(kProvider) + "/EntDMID").value.data, "dev-42");
  EXPECT_EQ(tree_->Replace(ctx_, std::string(kProvider) + "/EntDMID", Chr("dev-43")).code, 200);
  EXPECT_EQ(tree_->Get(ctx_, std::string(kProvider) + "/EntDMID").value.data, "dev-43");
  EXPECT_EQ(tree_->Get(ctx_, kProvider).value.data, "EntDMID");

  EXPECT_EQ(tree_->Delete(ctx_, kProvider).code, 200);
  EXPECT_EQ(tree_->Get(ctx_, std::string(kProvider) + "/EntDMID").code, 404);
  EXPECT_EQ(tree_->Delete(ctx_, kProvider).code, 404);
}

TEST_F(DmClientTest, PollDefaultsAreVisibleOnceThePollNodeExists) {
  EXPECT_EQ(tree_->Get(ctx_, Poll("IntervalForFirstSetOfRetries")).code, 404);
  ASSERT_EQ(tree_->Add(ctx_, std::string(kProvider) + "/Poll", NodeFmt()).code, 200);
  const std::pair<const char*, const char*> defaults[] = {
      {"IntervalForFirstSetOfRetries", "15"},
      {"NumberOfFirstRetries", "10"},
      {"IntervalForSecondSetOfRetries", "0"},
      {"NumberOfSecondRetries", "0"},
      {"IntervalForRemainingScheduledRetries", "0"},
      {"NumberOfRemainingScheduledRetries", "0"},
      {"PollOnLogin", "false"},
      {"AllUsersPollOnFirstLogin", "false"},
  };
  for (const auto& [leaf, value] : defaults) {
    auto g = tree_->Get(ctx_, Poll(leaf));
    ASSERT_EQ(g.code, 200) << leaf;
    EXPECT_EQ(g.value.data, value) << leaf;
  }
  // The API's defaults are the tree's.
  auto s = ReadPollSettings(db(), "MS DM Server");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->interval_first_min, 15);
  EXPECT_EQ(s->count_first, 10);
  EXPECT_EQ(s->interval_second_min, 0);
  EXPECT_FALSE(s->poll_on_login);
  auto list = tree_->Get(ctx_, std::string(kProvider) + "/Poll");
  EXPECT_EQ(list.value.data,
            "IntervalForFirstSetOfRetries/NumberOfFirstRetries/IntervalForSecondSetOfRetries/"
            "NumberOfSecondRetries/IntervalForRemainingScheduledRetries/"
            "NumberOfRemainingScheduledRetries/PollOnLogin/AllUsersPollOnFirstLogin");
}

TEST_F(DmClientTest, IntuneLikeScheduleIsPersistedAndRead) {
  // Every 3 min for 15 min, every 15 min for 2 h, then every 8 h (protocol-omadm.md 1.12).
  ASSERT_EQ(tree_->Add(ctx_, Poll("IntervalForFirstSetOfRetries"), Int("3")).code, 200);
  ASSERT_EQ(tree_->Add(ctx_, Poll("NumberOfFirstRetries"), Int("5")).code, 200);
  ASSERT_EQ(tree_->Add(ctx_, Poll("IntervalForSecondSetOfRetries"), Int("15")).code, 200);
  ASSERT_EQ(tree_->Add(ctx_, Poll("NumberOfSecondRetries"), Int("8")).code, 200);
  ASSERT_EQ(tree_->Replace(ctx_, Poll("IntervalForRemainingScheduledRetries"), Int("480")).code,
            200);
  ASSERT_EQ(tree_->Replace(ctx_, Poll("NumberOfRemainingScheduledRetries"), Int("0")).code, 200);
  ASSERT_EQ(tree_->Replace(ctx_, Poll("PollOnLogin"), Bool("true")).code, 200);
  tree_.reset();
  Reopen();
  auto sched = ReadPollSchedule(db(), "MS DM Server");
  ASSERT_TRUE(sched.ok());
  ASSERT_EQ(sched->stages.size(), 3u);
  EXPECT_EQ(sched->stages[0], (PollStage{minutes(3), 5}));
  EXPECT_EQ(sched->stages[1], (PollStage{minutes(15), 8}));
  EXPECT_EQ(sched->stages[2], (PollStage{minutes(480), 0}));
  EXPECT_FALSE(sched->fallback_added);
  EXPECT_TRUE(sched->poll_on_login);
  EXPECT_FALSE(sched->all_users_poll_on_first_login);
  EXPECT_EQ(sched->IntervalBefore(0), minutes(3));
  EXPECT_EQ(sched->IntervalBefore(4), minutes(3));
  EXPECT_EQ(sched->IntervalBefore(5), minutes(15));
  EXPECT_EQ(sched->IntervalBefore(12), minutes(15));
  EXPECT_EQ(sched->IntervalBefore(13), minutes(480));
  EXPECT_EQ(sched->IntervalBefore(10'000), minutes(480));
}

TEST_F(DmClientTest, PollValuesAreValidated) {
  EXPECT_EQ(tree_->Add(ctx_, Poll("IntervalForFirstSetOfRetries"), Int("-1")).code, 400);
  EXPECT_EQ(tree_->Add(ctx_, Poll("IntervalForFirstSetOfRetries"), Int("4294967296")).code, 400);
  EXPECT_EQ(tree_->Add(ctx_, Poll("IntervalForFirstSetOfRetries"), Chr("15")).code, 415);
  EXPECT_EQ(tree_->Add(ctx_, Poll("PollOnLogin"), Int("1")).code, 415);
  EXPECT_EQ(tree_->Add(ctx_, Poll("PollOnLogin"), Bool("1")).code, 400);
  EXPECT_EQ(tree_->Get(ctx_, kProvider).code, 404);  // nothing was created
  EXPECT_EQ(tree_->Add(ctx_, Poll("Bogus"), Int("1")).code, 404);
}

TEST_F(DmClientTest, DeviceOnly) {
  Context alice{"alice"};
  EXPECT_EQ(tree_->Add(alice, "./User/Vendor/MSFT/DMClient/Provider/X", NodeFmt()).code, 405);
}

TEST_F(DmClientTest, ScheduleRules) {
  struct Case {
    PollSettings in;
    std::vector<PollStage> stages;
    bool fallback;
  };
  const Case cases[] = {
      // Defaults: 10 x 15 min, then nothing infinite -> daily fallback.
      {PollSettings{}, {{minutes(15), 10}, {kFallbackPollInterval, 0}}, true},
      // First set infinite: later sets are ignored.
      {PollSettings{
           .interval_first_min = 5, .count_first = 0, .interval_second_min = 60, .count_second = 3},
       {{minutes(5), 0}},
       false},
      // Second set infinite after a finite first.
      {PollSettings{.interval_first_min = 5,
                    .count_first = 2,
                    .interval_second_min = 60,
                    .count_second = 0,
                    .interval_remaining_min = 480,
                    .count_remaining = 0},
       {{minutes(5), 2}, {minutes(60), 0}},
       false},
      // Interval 0 disables a set.
      {PollSettings{.interval_first_min = 0,
                    .count_first = 10,
                    .interval_second_min = 0,
                    .count_second = 0,
                    .interval_remaining_min = 480,
                    .count_remaining = 0},
       {{minutes(480), 0}},
       false},
      // Everything disabled: only the fallback.
      {PollSettings{.interval_first_min = 0}, {{kFallbackPollInterval, 0}}, true},
      // All finite: fallback after them.
      {PollSettings{.interval_first_min = 1,
                    .count_first = 1,
                    .interval_second_min = 2,
                    .count_second = 2,
                    .interval_remaining_min = 3,
                    .count_remaining = 3},
       {{minutes(1), 1}, {minutes(2), 2}, {minutes(3), 3}, {kFallbackPollInterval, 0}},
       true},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    PollSchedule s = BuildPollSchedule(cases[i].in);
    EXPECT_EQ(s.stages, cases[i].stages);
    EXPECT_EQ(s.fallback_added, cases[i].fallback);
  }
  PollSchedule d = BuildPollSchedule(PollSettings{});
  EXPECT_EQ(d.IntervalBefore(9), minutes(15));
  EXPECT_EQ(d.IntervalBefore(10), kFallbackPollInterval);
}

TEST_F(DmClientTest, UnknownProviderReadsDefaults) {
  auto s = ReadPollSchedule(db(), "nobody");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->stages, BuildPollSchedule(PollSettings{}).stages);
}

}  // namespace
}  // namespace dm::csp
