#include "csp/reboot.h"

#include <gtest/gtest.h>

#include "csp/csps_internal.h"
#include "csp/test_support.h"
#include "csp/tree.h"

namespace dm::csp {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using testing::Chr;

constexpr char kNow[] = "./Vendor/MSFT/Reboot/RebootNow";
constexpr char kSingle[] = "./Vendor/MSFT/Reboot/Schedule/Single";
constexpr char kDaily[] = "./Vendor/MSFT/Reboot/Schedule/DailyRecurrent";

TimePoint At(std::string_view iso) {
  auto t = ParseIso8601DateTime(iso);
  EXPECT_TRUE(t.ok()) << iso;
  return t.value_or(TimePoint{});
}

class RebootTest : public testing::DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    clock_.Set(At("2026-11-22T10:00:00Z"));
    tree_ = std::make_unique<Tree>(db(), clock_);
    tree_->Mount("Vendor/MSFT", RebootCsp(db(), clock_));
  }
  std::optional<RebootDue> Due(TimePoint t) {
    auto d = RebootDueAt(db(), t);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.value_or(std::nullopt);
  }
  Context ctx_;
  std::unique_ptr<Tree> tree_;
};

TEST_F(RebootTest, RebootNowRecordsARequest) {
  auto pending = PendingRebootRequests(db());
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
  EXPECT_FALSE(Due(clock_.Now()).has_value());

  ASSERT_EQ(tree_->Exec(ctx_, kNow, NodeValue{"", "null"}).code, 200);
  pending = PendingRebootRequests(db());
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].requested_at, clock_.Now());
  EXPECT_EQ((*pending)[0].origin, "RebootNow");
  auto due = Due(clock_.Now());
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->cause, RebootCause::kRequested);

  clock_.Advance(minutes(1));
  ASSERT_TRUE(MarkRebootPerformed(db(), clock_.Now()).ok());
  pending = PendingRebootRequests(db());
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
  EXPECT_FALSE(Due(clock_.Now()).has_value());
  auto last = LastRebootPerformed(db());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, clock_.Now());
}

TEST_F(RebootTest, RebootNowNodeRules) {
  auto g = tree_->Get(ctx_, kNow);
  ASSERT_EQ(g.code, 200);
  EXPECT_EQ(g.value.format, "null");
  EXPECT_EQ(tree_->Replace(ctx_, kNow, Chr("")).code, 405);
  EXPECT_EQ(tree_->Delete(ctx_, kNow).code, 405);
  EXPECT_EQ(tree_->Exec(ctx_, kSingle, Chr("")).code, 405);
  Context alice{"alice"};
  EXPECT_EQ(tree_->Exec(alice, "./User/Vendor/MSFT/Reboot/RebootNow", Chr("")).code, 405);
  auto pending = PendingRebootRequests(db());
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

TEST_F(RebootTest, SchedulesNeedDateAndTimeAndEmptyDeletes) {
  EXPECT_EQ(tree_->Get(ctx_, kSingle).code, 404);
  EXPECT_EQ(tree_->Add(ctx_, kSingle, Chr("2026-11-25")).code, 400);  // no time
  EXPECT_EQ(tree_->Add(ctx_, kSingle, Chr("tomorrow")).code, 400);
  EXPECT_EQ(tree_->Add(ctx_, kSingle, Chr("2026-02-30T10:00:00")).code, 400);
  ASSERT_EQ(tree_->Add(ctx_, kSingle, Chr("2026-11-25T18:00:00")).code, 200);
  EXPECT_EQ(tree_->Get(ctx_, kSingle).value.data, "2026-11-25T18:00:00");
  EXPECT_EQ(tree_->Get(ctx_, "./Vendor/MSFT/Reboot/Schedule").value.data, "Single");
  ASSERT_EQ(tree_->Replace(ctx_, kSingle, Chr("")).code, 200);  // empty deletes
  EXPECT_EQ(tree_->Get(ctx_, kSingle).code, 404);
  EXPECT_EQ(tree_->Add(ctx_, kDaily, Chr("")).code, 200);  // nothing to delete: still fine
  EXPECT_EQ(tree_->Get(ctx_, kDaily).code, 404);
  ASSERT_EQ(tree_->Add(ctx_, kDaily, Chr("2026-11-22T03:00:00Z")).code, 200);
  EXPECT_EQ(tree_->Delete(ctx_, kDaily).code, 200);
  EXPECT_EQ(tree_->Delete(ctx_, kDaily).code, 404);
}

TEST_F(RebootTest, SingleScheduleIsDueOnceItsTimePasses) {
  ASSERT_EQ(tree_->Replace(ctx_, kSingle, Chr("2026-11-22T18:00:00")).code, 200);
  auto sched = ReadRebootSchedule(db());
  ASSERT_TRUE(sched.ok());
  ASSERT_TRUE(sched->single.has_value());
  EXPECT_EQ(*sched->single, At("2026-11-22T18:00:00Z"));
  EXPECT_FALSE(Due(At("2026-11-22T17:59:59Z")).has_value());
  auto due = Due(At("2026-11-22T18:00:00Z"));
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->cause, RebootCause::kScheduledSingle);
  EXPECT_EQ(due->since, At("2026-11-22T18:00:00Z"));
  ASSERT_TRUE(MarkRebootPerformed(db(), At("2026-11-22T18:01:00Z")).ok());
  EXPECT_FALSE(Due(At("2026-11-23T18:00:00Z")).has_value());  // once only
}

TEST_F(RebootTest, ATimeAlreadyPastWhenConfiguredNeverFires) {
  ASSERT_EQ(tree_->Replace(ctx_, kSingle, Chr("2026-11-21T18:00:00")).code, 200);
  EXPECT_FALSE(Due(At("2026-11-22T12:00:00Z")).has_value());
}

TEST_F(RebootTest, DailyScheduleRecurs) {
  ASSERT_EQ(tree_->Replace(ctx_, kDaily, Chr("2026-11-22T03:00:00+01:00")).code, 200);
  // 02:00Z on the 22nd is before the schedule was written (10:00Z): the next is the 23rd.
  EXPECT_FALSE(Due(At("2026-11-22T12:00:00Z")).has_value());
  EXPECT_FALSE(Due(At("2026-11-23T01:59:59Z")).has_value());
  auto due = Due(At("2026-11-23T02:30:00Z"));
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->cause, RebootCause::kScheduledDaily);
  EXPECT_EQ(due->since, At("2026-11-23T02:00:00Z"));
  ASSERT_TRUE(MarkRebootPerformed(db(), At("2026-11-23T02:31:00Z")).ok());
  EXPECT_FALSE(Due(At("2026-11-23T23:00:00Z")).has_value());
  due = Due(At("2026-11-24T02:00:00Z"));
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->since, At("2026-11-24T02:00:00Z"));
  // A device that was off for days reboots once for the latest occurrence.
  due = Due(At("2026-11-28T09:00:00Z"));
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->since, At("2026-11-28T02:00:00Z"));
}

TEST(Iso8601Test, Parses) {
  auto t = ParseIso8601DateTime("1970-01-01T00:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(ToUnixSeconds(*t), 0);
  EXPECT_EQ(ToUnixSeconds(*ParseIso8601DateTime("2018-10-25T18:00:00")), 1540490400);
  EXPECT_EQ(ToUnixSeconds(*ParseIso8601DateTime("2018-10-25T18:00")), 1540490400);
  EXPECT_EQ(ToUnixSeconds(*ParseIso8601DateTime("2018-10-25T20:00:00+02:00")), 1540490400);
  EXPECT_EQ(ToUnixSeconds(*ParseIso8601DateTime("2018-10-25T13:30:00-0430")), 1540490400);
  EXPECT_EQ(ToUnixSeconds(*ParseIso8601DateTime("2018-10-25T18:00:00.1234567Z")), 1540490400);
  EXPECT_EQ(ToUnixSeconds(*ParseIso8601DateTime("2024-02-29T00:00:00Z")), 1709164800);
  for (const char* bad :
       {"", "2018-10-25", "2018-10-25 18:00:00", "2018-13-01T00:00:00", "2023-02-29T00:00:00",
        "2018-10-25T24:00:00", "2018-10-25T18:60", "2018-10-25T18:00:00+", "2018-10-25T18:00:00X",
        "18-10-25T18:00:00", "2018-10-25T18:00:00.", "2018-10-25T18:00:00Z "}) {
    EXPECT_FALSE(ParseIso8601DateTime(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace dm::csp
