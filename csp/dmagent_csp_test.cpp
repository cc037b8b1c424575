#include <gtest/gtest.h>

#include "csp/policy_test_support.h"

namespace dm::csp {
namespace {

using testing::Bool;
using testing::Chr;
using testing::Int;

constexpr char kRecoveryState[] =
    "./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/State";

class DmAgentCspTest : public testing::DeviceTreeTest {};

TEST_F(DmAgentCspTest, ReportShowsPendingRebootAfterEnablePinRecovery) {
  ASSERT_EQ(tree_->Replace(device_, Pfw("Policies/EnablePinRecovery"), Bool("true")).code, 200);
  Commit();
  auto report = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Report");
  ASSERT_EQ(report.code, 200);
  EXPECT_EQ(report.value.format, "xml");
  auto expected = engine_->ReportXml();
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(report.value.data, *expected);
  EXPECT_NE(
      report.value.data.find("name=\"PassportForWork/EnablePinRecovery\" state=\"PendingReboot\""),
      std::string::npos)
      << report.value.data;

  auto state = tree_->Get(device_, kRecoveryState);
  ASSERT_EQ(state.code, 200);
  EXPECT_EQ(state.value.data, "PendingReboot");
  EXPECT_EQ(tree_
                ->Get(device_,
                      "./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/"
                      "Desired")
                .value.data,
            "true");
  EXPECT_EQ(tree_
                ->Get(device_,
                      "./Vendor/MSFT/DMAgent/Compliance/PassportForWork%2FEnablePinRecovery/"
                      "TakesEffect")
                .value.data,
            "AfterReboot");
  std::string list = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Compliance").value.data;
  EXPECT_NE(list.find("PassportForWork%2FEnablePinRecovery"), std::string::npos) << list;

  // The reboot step: no longer pending.
  ASSERT_TRUE(engine_->CompleteReboot().ok());
  state = tree_->Get(device_, kRecoveryState);
  ASSERT_EQ(state.code, 200);
  EXPECT_NE(state.value.data, "PendingReboot");
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Report").value.data.find("PendingReboot"),
            std::string::npos);
}

TEST_F(DmAgentCspTest, UnknownSettingOrUserIs404) {
  EXPECT_EQ(tree_->Get(device_, kRecoveryState).code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/nobody/CanReset").code, 404);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/nobody").code, 404);
}

TEST_F(DmAgentCspTest, PerUserRecoveryState) {
  ASSERT_TRUE(engine_->OnSignIn("alice").ok());
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users").value.data, "alice");
  auto expected = engine_->Recovery("alice");
  ASSERT_TRUE(expected.ok());
  auto can = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/alice/CanReset");
  ASSERT_EQ(can.code, 200);
  EXPECT_EQ(can.value.format, "chr");
  EXPECT_EQ(can.value.data, policy::CanResetName(expected->can_reset));
  EXPECT_EQ(can.value.data, "Unknown");  // no container yet
  auto why = tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/alice/CanResetReason");
  ASSERT_EQ(why.code, 200);
  EXPECT_EQ(why.value.data, expected->reason);
  EXPECT_FALSE(why.value.data.empty());
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent/Users/alice").value.data,
            "CanReset/CanResetReason/Compliance");
}

TEST_F(DmAgentCspTest, PerUserCompliance) {
  ASSERT_EQ(
      tree_->Replace(alice_, UserPfw("Policies/PINComplexity/MinimumPINLength"), Int("8")).code,
      200);
  Commit();
  auto all = engine_->Compliance(std::string("alice"));
  ASSERT_TRUE(all.ok());
  const policy::SettingStatus* min = nullptr;
  for (const auto& s : *all) {
    if (s.setting == "PassportForWork/PINComplexity/MinimumPINLength") min = &s;
  }
  ASSERT_NE(min, nullptr);
  const std::string base =
      "./Vendor/MSFT/DMAgent/Users/alice/Compliance/"
      "PassportForWork%2FPINComplexity%2FMinimumPINLength/";
  EXPECT_EQ(tree_->Get(device_, base + "State").value.data,
            policy::ComplianceStateName(min->state));
  EXPECT_EQ(tree_->Get(device_, base + "Source").value.data, min->source);
  EXPECT_EQ(tree_->Get(device_, base + "Desired").value.data, "8");
  EXPECT_EQ(tree_->Get(device_, base + "Reason").value.data, min->reason);
}

TEST_F(DmAgentCspTest, ReadOnlyAndDeviceOnly) {
  EXPECT_EQ(tree_->Replace(device_, "./Vendor/MSFT/DMAgent/Report", NodeValue{"<x/>", "xml"}).code,
            405);
  EXPECT_EQ(tree_->Delete(device_, "./Vendor/MSFT/DMAgent/Report").code, 405);
  EXPECT_EQ(tree_->Add(device_, "./Vendor/MSFT/DMAgent/Users/bob", Chr("")).code, 405);
  EXPECT_EQ(tree_->Get(alice_, "./User/Vendor/MSFT/DMAgent/Report").code, 405);
  EXPECT_EQ(tree_->Get(device_, "./Vendor/MSFT/DMAgent").value.data, "Report/Compliance/Users");
}

}  // namespace
}  // namespace dm::csp
