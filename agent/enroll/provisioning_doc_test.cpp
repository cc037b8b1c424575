#include "agent/enroll/provisioning_doc.h"

#include <gtest/gtest.h>

#include "agent/enroll/fixture_for_tests.h"

#include <fstream>
#include <sstream>

namespace dm::enroll {
namespace {

std::string Fixture(const std::string& rel) { return enroll::MsMde2Fixture(rel); }

TEST(ProvisioningDoc, ParsesTheServersFullUserDocument) {
  auto doc = ParseProvisioningDoc(Fixture("server-answers/04-enroll-wap-provisioningdoc.xml"));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->device_cert_store, "User");
  EXPECT_EQ(doc->root_anchors_pem.size(), 1u);
  EXPECT_EQ(doc->management_url, "https://mdmwindows.com/ManagementServer/MDM.svc");
  EXPECT_EQ(doc->provider_id, "DEMO MDM");
  EXPECT_EQ(doc->initial_backoff_ms, 30000);
  EXPECT_EQ(doc->max_backoff_ms, 120000);
  ASSERT_EQ(doc->app_auth.size(), 2u);
  EXPECT_EQ(doc->app_auth[1].level, "APPSRV");
  EXPECT_EQ(doc->poll.count_first, 8);
  EXPECT_EQ(doc->poll.interval_remaining_min, 1560);
  EXPECT_EQ(doc->renewal.renew_period_days, 60);
}

TEST(ProvisioningDoc, ParsesTheServersDeviceSystemDocument) {
  auto doc = ParseProvisioningDoc(Fixture("server-answers/08-wap.xml"));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->device_cert_store, "System");
  EXPECT_FALSE(doc->device_cert_pem.empty());
}

TEST(ProvisioningDoc, GarbageIsAClearError) {
  EXPECT_EQ(ParseProvisioningDoc("<oops").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseProvisioningDoc("<a/>").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseProvisioningDoc("<wap-provisioningdoc/>").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace dm::enroll
