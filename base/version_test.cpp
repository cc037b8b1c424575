#include "base/version.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace dm {
namespace {

TEST(VersionTest, LineNamesTheProgramTheVersionAndTheRevision) {
  EXPECT_TRUE(std::regex_match(std::string(ProjectVersion()), std::regex(R"(\d+\.\d+\.\d+)")))
      << ProjectVersion();
  ASSERT_FALSE(GitRevision().empty());
  // A build from this repository knows its commit: hex, maybe "-dirty"; "unknown" only
  // without git.
  EXPECT_TRUE(std::regex_match(std::string(GitRevision()),
                               std::regex(R"(([0-9a-f]{7,40}|v?[0-9][^ ]*)(-dirty)?|unknown)")))
      << GitRevision();
  EXPECT_EQ(VersionLine("dmagent"), "dmagent " + std::string(ProjectVersion()) + " (git " +
                                        std::string(GitRevision()) + ")");
}

}  // namespace
}  // namespace dm
