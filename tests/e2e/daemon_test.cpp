// RunDaemon's supervision (daemon.h): every pass runs in a child process, so a session that
// crashes costs a backoff, not the daemon, and an error retrying cannot fix reaches the caller
// with the child's message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/runtime/daemon.h"
#include "agent/runtime/device.h"
#include "base/crypto.h"

namespace dm::agent {
namespace {

namespace fs = std::filesystem;

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "daemon-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  int Lines(const fs::path& p) {
    std::ifstream in(p);
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
  fs::path dir_;
};

TEST_F(DaemonTest, ACrashingSessionCostsABackoffNotTheDaemon) {
  const fs::path marks = dir_ / "marks";
  DaemonOptions o;
  o.max_sessions = 3;
  o.initial_backoff = std::chrono::seconds(0);  // retry at once: the test must not sleep
  Status s = RunDaemon(
      [&]() -> Result<std::unique_ptr<Device>> {
        std::ofstream(marks, std::ios::app) << getpid() << "\n";
        std::abort();  // the session process dies
      },
      o);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Lines(marks), 3);  // three passes, each in its own process
}

TEST_F(DaemonTest, ABusyDatabaseIsWaitedForNotFatal) {
  const fs::path marks = dir_ / "marks";
  DaemonOptions o;
  o.max_sessions = 2;
  o.initial_backoff = std::chrono::seconds(0);
  Status s = RunDaemon(
      [&]() -> Result<std::unique_ptr<Device>> {
        std::ofstream(marks, std::ios::app) << "open\n";
        return Unavailable("database is locked");
      },
      o);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Lines(marks), 2);
}

TEST_F(DaemonTest, AnErrorRetryingCannotFixEndsTheDaemonWithTheChildsMessage) {
  DaemonOptions o;
  o.max_sessions = 5;
  Status s = RunDaemon(
      [&]() {
        DeviceOptions d;
        d.state_dir = dir_ / "device";
        d.pin_kdf = crypto::ScryptParams::ForTests();
        return Device::Open(std::move(d));
      },
      o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("not enrolled"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dm::agent
