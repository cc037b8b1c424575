#include "base/json_output.h"

#include <gtest/gtest.h>

namespace dm {
namespace {

TEST(JsonOutputTest, TheDocumentStartsWithItsSchemaVersion) {
  const auto doc = JsonDocument({{"keys", nlohmann::ordered_json::array()}, {"user", "alice"}});
  ASSERT_EQ(doc.size(), 3u);
  EXPECT_EQ(doc.begin().key(), "schema_version");
  EXPECT_EQ(doc["schema_version"], kJsonSchemaVersion);
  EXPECT_EQ(doc.dump(), R"({"schema_version":1,"keys":[],"user":"alice"})");
}

TEST(JsonOutputTest, NamesOutsideSnakeCaseAreFoundWithTheirPath) {
  EXPECT_EQ(KeyOutsideConvention(nlohmann::json::parse(
                R"({"schema_version":1,"a_b2":{"c":[{"d_e":1}]},"f":"AzureAdJoined"})")),
            std::nullopt);  // values are free
  EXPECT_EQ(KeyOutsideConvention(nlohmann::json::parse(R"({"device_state":{"AzureAdJoined":1}})")),
            "device_state.AzureAdJoined");
  EXPECT_EQ(KeyOutsideConvention(nlohmann::json::parse(R"({"users":[{"ok":1},{"signedIn":1}]})")),
            "users[1].signedIn");
  EXPECT_EQ(KeyOutsideConvention(nlohmann::json::parse(R"({"2fa":1})")), "2fa");
  EXPECT_EQ(KeyOutsideConvention(nlohmann::json::parse(R"({"latency-ms":1})")), "latency-ms");
  EXPECT_EQ(KeyOutsideConvention(nlohmann::json::parse(R"({"":1})")), "");
}

}  // namespace
}  // namespace dm
