// Security issue #11, "The device's secrets": a copy of dmagent.db alone was enough to guess a
// user's Hello PIN offline, because machine.key did not enter the key that unwraps a container.
// Device now seals every container under a KeySealer derived from machine.key; this checks the
// wiring a production Device uses, with real state directories.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "agent/runtime/device.h"
#include "agent/runtime/machine_key.h"
#include "base/crypto.h"

namespace dm::agent {
namespace {

namespace fs = std::filesystem;

class ContainerSealingRegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dm-sealing-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Device> Open(const fs::path& state_dir) {
    DeviceOptions o;
    o.state_dir = state_dir;
    o.pin_kdf = crypto::ScryptParams::ForTests();
    auto d = Device::Open(std::move(o));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? std::move(*d) : nullptr;
  }
  // A consistent copy of a device's database into a new 0700 state directory.
  fs::path CopyDatabase(Device& from, const std::string& name) {
    const fs::path dir = root_ / name;
    fs::create_directory(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    EXPECT_TRUE(from.db().Exec("VACUUM INTO '" + (dir / "dmagent.db").string() + "'").ok());
    fs::permissions(dir / "dmagent.db", fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    return dir;
  }

  fs::path root_;
};

TEST_F(ContainerSealingRegressionTest, ADatabaseCopyWithoutItsMachineKeyDoesNotUnlock) {
  auto device = Open(root_ / "device");
  ASSERT_NE(device, nullptr);
  ASSERT_TRUE(device->containers().Provision("alice", SecretBytes(std::string_view("2468"))).ok());

  // The thief's copy: the database without machine.key (a new one is made on open).
  const fs::path stolen = CopyDatabase(*device, "stolen");
  // The same copy with the device's own machine.key: shows the copy itself is complete.
  const fs::path restored = CopyDatabase(*device, "restored");
  fs::copy_file(root_ / "device" / kMachineKeyFile, restored / kMachineKeyFile);
  device.reset();

  auto thief = Open(stolen);
  ASSERT_NE(thief, nullptr);
  auto right = thief->containers().Unlock("alice", SecretBytes(std::string_view("2468")));
  auto wrong = thief->containers().Unlock("alice", SecretBytes(std::string_view("1357")));
  EXPECT_FALSE(right.ok());
  EXPECT_EQ(right.status().ToString(), wrong.status().ToString());  // no oracle either way
  auto info = thief->containers().Info("alice");
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->locked_out);

  auto owner = Open(restored);
  ASSERT_NE(owner, nullptr);
  EXPECT_TRUE(owner->containers().Unlock("alice", SecretBytes(std::string_view("2468"))).ok());
}

}  // namespace
}  // namespace dm::agent
