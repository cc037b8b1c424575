#include "container/key_sealer.h"

#include <gtest/gtest.h>

#include "container/key_sealer_test_support.h"

namespace dm::container {
namespace {

TEST(KeySealerTest, SealsAndMacsOnlyUnderItsOwnRootAndContext) {
  testing::FixedKeySealer sealer(1);
  testing::FixedKeySealer other(2);
  const Bytes plain = {1, 2, 3, 4, 5};
  auto sealed = sealer.Seal(plain, "ctx-a");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  auto opened = sealer.Open(*sealed, "ctx-a");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(Bytes(opened->data(), opened->data() + opened->size()), plain);
  EXPECT_EQ(sealer.Open(*sealed, "ctx-b").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(other.Open(*sealed, "ctx-a").status().code(), Code::kUnauthenticated);

  auto mac = sealer.Mac("counters 0");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(mac->size(), 32u);
  EXPECT_TRUE(sealer.VerifyMac("counters 0", *mac).ok());
  EXPECT_EQ(sealer.VerifyMac("counters 1", *mac).code(), Code::kUnauthenticated);
  EXPECT_EQ(other.VerifyMac("counters 0", *mac).code(), Code::kUnauthenticated);
  EXPECT_EQ(sealer.VerifyMac("counters 0", Bytes(mac->begin(), mac->end() - 1)).code(),
            Code::kUnauthenticated);
  // The MAC key is not the sealing key: a MAC is not a key that opens anything.
  EXPECT_NE(*mac, *sealer.Mac("counters 0 "));
}

}  // namespace
}  // namespace dm::container
