// Test-only: the bytes of a file under tests/fixtures/ms-mde2/ (the real Windows enrollment
// exchanges), for the agent/enroll and agent/runtime MS-MDE2 tests.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace dm::enroll {

inline std::string MsMde2Fixture(const std::string& rel) {
  std::ifstream in(std::string(DMAGENT_SOURCE_DIR) + "/tests/fixtures/ms-mde2/" + rel,
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace dm::enroll
