// The benchmark corpus is what dm_bench says it is: realistic messages that decode cleanly, of
// the stated size and command count, whose settings the device tree accepts. No timing here.
#include "tests/bench/messages.h"

#include <gtest/gtest.h>

#include <set>

#include "agent/syncml/codec.h"
#include "policy/policy.h"
#include "tests/bench/bench_util.h"

namespace dm::bench {
namespace {

bool AnyCommandError(const std::vector<syncml::Command>& commands) {
  for (const syncml::Command& c : commands) {
    if (!c.error.empty() || AnyCommandError(c.children)) return true;
  }
  return false;
}

syncml::Message MustDecode(const std::string& xml) {
  Result<syncml::Message> m = syncml::Decode(xml);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  EXPECT_FALSE(AnyCommandError(m->commands));
  return std::move(m).value();
}

TEST(BenchMessages, HelloProfileHasTwentyDistinctSettingsWithTwoValues) {
  const std::vector<Setting> profile = HelloProfile20();
  ASSERT_EQ(profile.size(), 20u);
  std::set<std::string> uris;
  for (const Setting& s : profile) {
    uris.insert(s.uri);
    EXPECT_NE(s.value_a, s.value_b) << s.uri;
  }
  EXPECT_EQ(uris.size(), 20u);
}

TEST(BenchMessages, ProfileMessageIsPackageTwoWithTheProfile) {
  const syncml::Message m = MustDecode(ProfileMessage(HelloProfile20()));
  // 4 Statuses, the tenant Add, 20 Replaces, the report Get.
  ASSERT_EQ(m.commands.size(), 26u);
  EXPECT_EQ(m.commands[0].type, syncml::CommandType::kStatus);
  EXPECT_EQ(m.commands[4].type, syncml::CommandType::kAdd);
  EXPECT_EQ(m.commands[5].type, syncml::CommandType::kReplace);
  EXPECT_EQ(m.commands[25].type, syncml::CommandType::kGet);
  EXPECT_TRUE(m.final);
}

TEST(BenchMessages, LargePackageIsAThousandCommandsJustUnderIntunesMaxMsgSize) {
  const std::string xml = LargePackage();
  EXPECT_LE(xml.size(), kIntuneMaxMsgSize);
  EXPECT_GE(xml.size(), 500000u);
  const syncml::Message m = MustDecode(xml);
  EXPECT_EQ(m.commands.size(), kLargePackageCommands);
  std::set<syncml::CommandType> types;
  for (const syncml::Command& c : m.commands) types.insert(c.type);
  EXPECT_EQ(types.size(), 6u);  // Status, Replace, Get, Add, Delete, Atomic
  // The codec carries it whole: decode(encode(m)) == m.
  Result<syncml::Message> again = syncml::Decode(syncml::Encode(m));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, m);
}

class BenchApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = OpenDevice(dir_.path() / "device");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    device_ = std::move(d).value();
  }
  TempDir dir_{"dm-bench-test"};
  std::unique_ptr<agent::Device> device_;
};

TEST_F(BenchApplyTest, PolicyPackageSettingsAreAcceptedAndLandInTheEngine) {
  for (bool alternate : {false, true}) {
    size_t commands = 0;
    Status s = ApplyMessage(*device_, PolicyPackage(40, alternate), {}, &commands);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(commands, 40u);
    auto v =
        device_->policy().Desired(policy::Source::kMdm, {.scope = policy::Scope::kDevice,
                                                         .user = "",
                                                         .setting = "PassportForWork/PINComplexity/"
                                                                    "MinimumPINLength"});
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->value_or(""), alternate ? "8" : "6");
  }
}

TEST_F(BenchApplyTest, ProviderPackageSettingsAreAcceptedAndReadBack) {
  for (bool alternate : {false, true}) {
    size_t commands = 0;
    Status s = ApplyMessage(*device_, ProviderPackage(27, alternate), {}, &commands);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(commands, 27u);
    csp::GetResult got = device_->tree().Get(
        {}, "./Vendor/MSFT/DMClient/Provider/Provider2/Poll/NumberOfFirstRetries");
    EXPECT_EQ(got.code, 200);
    EXPECT_EQ(got.value.data, alternate ? "5" : "10");
  }
}

TEST_F(BenchApplyTest, ProfileMessageIsAcceptedInBothValueSets) {
  for (bool alternate : {false, true, false}) {
    size_t commands = 0;
    Status s = ApplyMessage(*device_, ProfileMessage(HelloProfile20(), alternate), {}, &commands);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(commands, 22u);  // Add, 20 Replaces, Get (Statuses are not commands to run)
  }
}

}  // namespace
}  // namespace dm::bench
