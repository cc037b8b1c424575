// The process runner the security and crash tests drive dmagent with.
#include "tests/security/dmagent_process.h"

#include <gtest/gtest.h>

#include <string>

namespace dm::testing {
namespace {

// A process that exits without reading its input (as dmagent does when it refuses an argument)
// used to kill the test itself with SIGPIPE when the runner wrote the input after the exit.
// More input than a pipe holds makes that ordering certain: the write waits until the process
// has exited.
TEST(RunProcessTest, ProcessThatIgnoresItsInputDoesNotKillTheCaller) {
  ProcessOptions options;
  options.stdin_data = std::string(1 << 20, 'x');
  ProcessResult r = RunProcess("/bin/true", {}, options);
  EXPECT_FALSE(r.signaled);
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // And the runner still works afterwards: input arrives, output comes back.
  ProcessOptions echo;
  echo.stdin_data = "135792468\n";
  ProcessResult cat = RunProcess("/bin/cat", {}, echo);
  EXPECT_EQ(cat.exit_code, 0);
  EXPECT_EQ(cat.out, "135792468\n");
}

}  // namespace
}  // namespace dm::testing
