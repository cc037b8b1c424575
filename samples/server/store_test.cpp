// The store on a real SQLite file: the sign-in path's locking.
#include "samples/server/store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>

#include "base/crypto.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;

constexpr char kTenantId[] = "6c9f0a2e-3b1d-4e8f-9a7c-2d5e8f1b3c4a";

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "dm_store_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Store> Open(Store::Options options) {
    options.clock = &clock_;
    options.random = &random_;
    options.password_kdf = crypto::ScryptParams::ForTests();
    auto store = Store::Open(dir_ / "server.db", std::move(options));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  fs::path dir_;
  FakeClock clock_{FromUnixSeconds(1'800'000'000)};
  crypto::DeterministicRandom random_{7};
};

// Red-team finding: a password check held the store lock for the whole scrypt run, so one
// client guessing passwords stalled every device's session.
TEST_F(StoreTest, PasswordCheckRunsWithoutTheStoreLock) {
  std::promise<void> checking;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Store::Options options;
  options.password_check = [&](const SecretBytes&, std::string_view) {
    checking.set_value();
    released.wait();  // the "scrypt" runs until the main thread has used the store
    return Unauthenticated("wrong password");
  };
  std::unique_ptr<Store> store = Open(std::move(options));
  ASSERT_NE(store, nullptr);
  {
    auto lock = store->Lock();
    ASSERT_TRUE(store->AddTenant("Fabrikam", kTenantId, false).ok());
    ASSERT_TRUE(store
                    ->AddUser(kTenantId, "alice@fabrikam.test", SecretBytes("pw"),
                              SecretBytes("0123456789abcdef0123"))
                    .ok());
  }
  std::future<Status> signing_in = std::async(std::launch::async, [&] {
    return store->VerifyUser("alice@fabrikam.test", SecretBytes("guess"), "000000",
                             {.upn = "alice@fabrikam.test", .address = "192.0.2.1"});
  });
  checking.get_future().wait();
  // While the password is being checked, another request can use the store.
  std::future<bool> other = std::async(std::launch::async, [&] {
    auto lock = store->Lock();
    return store->FindUser("alice@fabrikam.test").ok();
  });
  const bool other_ran = other.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  release.set_value();
  EXPECT_TRUE(other_ran) << "the store lock was held while the password was checked";
  EXPECT_TRUE(other.get());
  Status s = signing_in.get();
  EXPECT_EQ(s.code(), Code::kUnauthenticated);
  // The failure was still noted for throttling.
  auto lock = store->Lock();
  auto st = store->db().Prepare("SELECT failures FROM sign_in_failures WHERE key = ?");
  ASSERT_TRUE(st.ok());
  st->Bind(1, "user:alice@fabrikam.test");
  auto row = st->Step();
  ASSERT_TRUE(row.ok() && *row);
  EXPECT_EQ(st->Int(0), 1);
}

}  // namespace
}  // namespace dm::server
