#include "storage/database.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "storage/schema.h"
#include "storage/state_dir.h"

namespace dm::storage {
namespace {

namespace fs = std::filesystem;

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dbtest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

constexpr Migration kTwoSteps[] = {
    {1, "create t", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);"},
    {2, "add column", "ALTER TABLE t ADD COLUMN note TEXT;"},
};

TEST_F(DatabaseTest, CreatesPrivateFileInWalModeAndMigrates) {
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  EXPECT_EQ((*db)->SchemaVersion(), 2);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "a.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto mode = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE(*mode->Step());
  EXPECT_EQ(mode->Text(0), "wal");
  ASSERT_TRUE((*db)->Run("INSERT INTO t (k, v, note) VALUES (?, ?, ?)", "x", 5, "n").ok());
}

// A commit that returned survives power loss, not only a crash of the process: in WAL mode that
// takes synchronous=FULL (NORMAL syncs the WAL only at checkpoints).
TEST_F(DatabaseTest, CommitsAreSyncedToDisk) {
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  auto sync = (*db)->Prepare("PRAGMA synchronous");
  ASSERT_TRUE(sync.ok());
  ASSERT_TRUE(*sync->Step());
  EXPECT_EQ(sync->Int(0), 2) << "PRAGMA synchronous is not FULL";
}

TEST_F(DatabaseTest, MigratesOnlyWhatIsMissing) {
  {
    constexpr Migration kFirst[] = {kTwoSteps[0]};
    auto db = Database::Open(dir_ / "a.db", {.migrations = kFirst});
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Run("INSERT INTO t (k, v) VALUES ('keep', 1)").ok());
  }
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  auto st = (*db)->Prepare("SELECT v FROM t WHERE k = 'keep'");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Int(0), 1);
}

TEST_F(DatabaseTest, RefusesNewerSchemaWithoutTouchingIt) {
  { ASSERT_TRUE(Database::Open(dir_ / "a.db", {.migrations = kTwoSteps}).ok()); }
  constexpr Migration kOld[] = {kTwoSteps[0]};
  auto db = Database::Open(dir_ / "a.db", {.migrations = kOld});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code(), Code::kFailedPrecondition);
  EXPECT_NE(db.error().message().find("newer version"), std::string::npos);
  EXPECT_TRUE(Database::Open(dir_ / "a.db", {.migrations = kTwoSteps}).ok());
}

TEST_F(DatabaseTest, ReportsGarbageFileAsCorruptAndKeepsIt) {
  {
    std::ofstream f(dir_ / "a.db", std::ios::binary);
    f << std::string(8192, 'Z');
  }
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code(), Code::kCorruption) << db.error().ToString();
  EXPECT_EQ(fs::file_size(dir_ / "a.db"), 8192u);
}

TEST_F(DatabaseTest, UnreadableFileIsAnIoError) {
  { ASSERT_TRUE(Database::Open(dir_ / "a.db", {.migrations = kTwoSteps}).ok()); }
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  ::chmod((dir_ / "a.db").c_str(), 0);
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code(), Code::kIoError);
}

TEST_F(DatabaseTest, NestedTransactionRollsBackOnlyItsPart) {
  auto opened = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_TRUE(opened.ok());
  Database& db = **opened;
  {
    auto outer = db.Begin();
    ASSERT_TRUE(outer.ok());
    ASSERT_TRUE(db.Run("INSERT INTO t (k, v) VALUES ('outer', 1)").ok());
    {
      auto inner = db.Begin();
      ASSERT_TRUE(inner.ok());
      ASSERT_TRUE(db.Run("INSERT INTO t (k, v) VALUES ('inner', 2)").ok());
      ASSERT_TRUE(inner->Rollback().ok());
    }
    {
      auto inner = db.Begin();
      ASSERT_TRUE(inner.ok());
      ASSERT_TRUE(db.Run("INSERT INTO t (k, v) VALUES ('kept', 3)").ok());
      ASSERT_TRUE(inner->Commit().ok());
    }
    ASSERT_TRUE(outer->Commit().ok());
  }
  {
    auto dropped = db.Begin();
    ASSERT_TRUE(dropped.ok());
    ASSERT_TRUE(db.Run("INSERT INTO t (k, v) VALUES ('dropped', 4)").ok());
    // Destroyed without Commit: rolled back.
  }
  auto st = db.Prepare("SELECT group_concat(k, ',') FROM (SELECT k FROM t ORDER BY k)");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Text(0), "kept,outer");
  EXPECT_FALSE(db.InTransaction());
}

TEST_F(DatabaseTest, ConstraintViolationIsAlreadyExists) {
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Run("INSERT INTO t (k, v) VALUES ('a', 1)").ok());
  Status s = (*db)->Run("INSERT INTO t (k, v) VALUES ('a', 2)");
  EXPECT_EQ(s.code(), Code::kAlreadyExists) << s.ToString();
}

TEST_F(DatabaseTest, AgentSchemaApplies) {
  auto db = Database::Open(dir_ / "agent.db", {.migrations = AgentSchema()});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  EXPECT_EQ((*db)->SchemaVersion(), AgentSchema().back().version);
  EXPECT_TRUE((*db)->CheckIntegrity().ok());
}

TEST_F(DatabaseTest, ImageRoundTripsStateAndSavepoints) {
  Bytes image;
  {
    auto db = Database::OpenImage({}, "device-1", {.migrations = AgentSchema()});
    ASSERT_TRUE(db.ok()) << db.error().ToString();
    ASSERT_TRUE((*db)->Run("INSERT INTO settings (key, value) VALUES (?, ?)", "a", "1").ok());
    {
      auto tx = (*db)->Begin();
      ASSERT_TRUE(tx.ok());
      ASSERT_TRUE((*db)->Run("INSERT INTO settings (key, value) VALUES (?, ?)", "b", "2").ok());
      // Not committed: must not be in the image, and no image is taken mid-transaction.
      EXPECT_EQ((*db)->Serialize().status().code(), Code::kFailedPrecondition);
    }
    auto bytes = (*db)->Serialize();
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    image = std::move(*bytes);
  }
  EXPECT_EQ(std::string(image.begin(), image.begin() + 15), "SQLite format 3");
  auto db = Database::OpenImage(image, "device-1", {.migrations = AgentSchema()});
  ASSERT_TRUE(db.ok()) << db.error().ToString();
  EXPECT_EQ((*db)->SchemaVersion(), AgentSchema().back().version);
  auto st = (*db)->Prepare("SELECT group_concat(key) FROM settings");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(*st->Step());
  EXPECT_EQ(st->Text(0), "a");
  ASSERT_TRUE((*db)->CheckIntegrity().ok());
  // The image grows as the database does.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*db)
                    ->Run("INSERT INTO settings (key, value) VALUES (?, ?)", std::to_string(i),
                          std::string(100, 'x'))
                    .ok());
  }
  EXPECT_GT((*db)->Serialize()->size(), image.size() + 200 * 100);
}

// Statements go back to the Database and are reused: a reused one starts reset and unbound,
// and the same SQL text may be open twice at once (nested loops).
TEST_F(DatabaseTest, ReusedStatementsStartCleanAndMayBeOpenTwice) {
  auto db = Database::Open(dir_ / "a.db", {.migrations = kTwoSteps});
  ASSERT_TRUE(db.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*db)->Run("INSERT INTO t (k, v) VALUES (?, ?)", std::to_string(i), i).ok());
  }
  constexpr char kSelect[] = "SELECT k FROM t WHERE v >= ? ORDER BY v";
  {
    auto outer = (*db)->Prepare(kSelect);
    ASSERT_TRUE(outer.ok());
    outer->Bind(1, 1);
    ASSERT_TRUE(*outer->Step());  // mid-iteration when the same text is prepared again
    auto inner = (*db)->Prepare(kSelect);
    ASSERT_TRUE(inner.ok());
    inner->Bind(1, 0);
    ASSERT_TRUE(*inner->Step());
    EXPECT_EQ(inner->Text(0), "0");
    EXPECT_EQ(outer->Text(0), "1");
    ASSERT_TRUE(*outer->Step());
    EXPECT_EQ(outer->Text(0), "2");
  }
  auto again = (*db)->Prepare(kSelect);
  ASSERT_TRUE(again.ok());
  // No binding left from before: NULL compares false, so no row.
  EXPECT_FALSE(*again->Step());
}

TEST_F(DatabaseTest, DamagedImageIsRefusedAsCorruption) {
  Bytes garbage(4096, 0x5a);
  auto db = Database::OpenImage(garbage, "device-2", {.migrations = AgentSchema()});
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code(), Code::kCorruption) << db.error().ToString();
  EXPECT_NE(db.error().message().find("device-2"), std::string::npos);
}

TEST_F(DatabaseTest, StateDirPrecedenceAndPrivacy) {
  ::setenv("DMAGENT_STATE_DIR", (dir_ / "env").c_str(), 1);
  EXPECT_EQ(ResolveStateDir(std::nullopt), dir_ / "env");
  EXPECT_EQ(ResolveStateDir(std::string(dir_ / "flag")), dir_ / "flag");
  ::unsetenv("DMAGENT_STATE_DIR");
  EXPECT_EQ(ResolveStateDir(std::nullopt), fs::path(kDefaultStateDir));
  fs::create_directories(dir_ / "open");
  ::chmod((dir_ / "open").c_str(), 0755);
  ASSERT_TRUE(PrepareStateDir(dir_ / "open").ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "open").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// Red-team finding: a state directory pre-created by another user (or left writable for
// others) was used as it was.
TEST_F(DatabaseTest, StateDirWritableByOthersOrHoldingALinkIsRefused) {
  const fs::path shared = dir_ / "shared";
  fs::create_directories(shared);
  ::chmod(shared.c_str(), 0777);
  Status s = PrepareStateDir(shared);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("writable by group or others"), std::string::npos) << s.ToString();
  struct stat st {};
  ASSERT_EQ(::stat(shared.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0777u);  // nothing changed

  const fs::path dir = dir_ / "state";
  ASSERT_TRUE(PrepareStateDir(dir).ok());
  { std::ofstream(dir / "dmagent.db") << "x"; }
  ::chmod((dir / "dmagent.db").c_str(), 0666);
  s = PrepareStateDir(dir);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("dmagent.db"), std::string::npos) << s.ToString();
  ::chmod((dir / "dmagent.db").c_str(), 0600);
  EXPECT_TRUE(PrepareStateDir(dir).ok());

  fs::create_symlink("/etc/passwd", dir / "machine.key");
  s = PrepareStateDir(dir);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("symbolic link"), std::string::npos) << s.ToString();
  fs::remove(dir / "machine.key");
  fs::create_directory_symlink(dir, dir_ / "link");
  EXPECT_EQ(PrepareStateDir(dir_ / "link").code(), Code::kFailedPrecondition);

  // Owned by another user: only root can set that up (CI runs as root).
  if (::geteuid() != 0) GTEST_SKIP() << "the ownership case needs root to chown";
  const fs::path theirs = dir_ / "theirs";
  ASSERT_TRUE(PrepareStateDir(theirs).ok());
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  s = PrepareStateDir(theirs);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("not by the running user"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace dm::storage
