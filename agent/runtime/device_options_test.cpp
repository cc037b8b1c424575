#include <gtest/gtest.h>

#include "agent/runtime/device.h"

namespace dm::agent {
namespace {

// Red-team finding: --pin-kdf-cost could go below the strong default in any build, making a
// stolen database cheap to guess PINs against.
TEST(DeviceOptionsTest, PinKdfCostHasAFloorOutsideTestBuilds) {
  EXPECT_EQ(ValidatePinKdfCost(12, /*allow_weak=*/false).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidatePinKdfCost(14, false).code(), Code::kInvalidArgument);
  EXPECT_TRUE(ValidatePinKdfCost(15, false).ok());
  EXPECT_TRUE(ValidatePinKdfCost(20, false).ok());
  EXPECT_FALSE(ValidatePinKdfCost(21, false).ok());
  EXPECT_TRUE(ValidatePinKdfCost(12, /*allow_weak=*/true).ok());
  EXPECT_FALSE(ValidatePinKdfCost(9, true).ok());
  EXPECT_NE(ValidatePinKdfCost(12, false).message().find("test builds only"), std::string::npos);
}

}  // namespace
}  // namespace dm::agent
