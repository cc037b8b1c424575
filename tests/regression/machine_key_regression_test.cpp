// agent/runtime/machine_key: the key file must appear whole or not at all. It used to be
// created in place (open O_CREAT|O_EXCL, then write): a second process starting at the same
// moment could read it empty and fail with "not a 32-byte key", and a crash between the open
// and the write left an empty machine.key that refused every later start, so the device could
// never be enrolled again (found while writing the crash-consistency test).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "agent/runtime/machine_key.h"
#include "base/crypto.h"

namespace dm::agent {
namespace {

namespace fs = std::filesystem;

TEST(MachineKeyRegressionTest, ConcurrentFirstUseAgreesOnOneWholeKey) {
  std::string tmpl = ::testing::TempDir() + "dm-machinekey-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path root = tmpl;
  constexpr int kRounds = 120;
  constexpr int kThreads = 6;
  int failures = 0;
  for (int round = 0; round < kRounds; ++round) {
    const fs::path dir = root / std::to_string(round);
    fs::create_directories(dir);
    std::atomic<bool> go{false};
    std::vector<std::string> sealed(kThreads), errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) {
        }
        auto key = MachineKey::LoadOrCreate(dir);
        if (!key.ok()) {
          errors[t] = key.error().ToString();
          return;
        }
        // Each thread seals the same value; all must open with every other thread's key.
        auto s = key->Seal(SecretBytes(std::string_view("probe")), "test");
        if (s.ok()) sealed[t].assign(s->begin(), s->end());
      });
    }
    go = true;
    for (auto& th : threads) th.join();
    auto reference = MachineKey::LoadOrCreate(dir);
    ASSERT_TRUE(reference.ok()) << reference.error().ToString();
    for (int t = 0; t < kThreads; ++t) {
      if (!errors[t].empty()) {
        ++failures;
        ADD_FAILURE() << "round " << round << " thread " << t << ": " << errors[t];
        continue;
      }
      const Bytes blob(sealed[t].begin(), sealed[t].end());
      EXPECT_TRUE(reference->Open(blob, "test").ok()) << "round " << round << ": two keys";
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir / kMachineKeyFile).c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 32);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // No temporary file is left behind.
    int entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
    EXPECT_EQ(entries, 1);
    if (failures > 3) break;
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace dm::agent
