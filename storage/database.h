// The agent's single source of truth (ARCHITECTURE decision 1): one SQLite file, WAL mode,
// migrations keyed on PRAGMA user_version, RAII transactions that nest as savepoints.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/secret.h"
#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace dm::storage {

// One schema step. Version N runs when the file's user_version is N-1.
struct Migration {
  int version;
  const char* description;
  const char* sql;
};

struct OpenOptions {
  // The ordered migrations of this database's schema (the agent's: AgentSchema()).
  std::span<const Migration> migrations;
  std::chrono::milliseconds busy_timeout{5000};
  bool create_if_missing = true;
  // true: synchronous=FULL, every commit survives power loss (the agent: it answers 200 as
  // soon as a commit returns). false: synchronous=NORMAL, a commit survives a crash of the
  // process but the last ones may be lost on power loss; for stores whose peers re-send what
  // was lost (dmserver: an unanswered command is re-queued) or that are scratch (a simulated
  // fleet), and that must not pay one disk sync per commit.
  bool durable_commits = true;
};

class Database;

// A prepared statement. Binds are 1-based like SQLite; columns are 0-based. When it goes out
// of scope it is reset and handed back to its Database, which reuses it for the same SQL text:
// parsing SQL was the largest cost of a short session. It must not outlive its Database.
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  ~Statement();

  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Statement& Bind(int index, const std::string& text) {
    return Bind(index, std::string_view(text));
  }
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, bool value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& BindBlob(int index, std::span<const uint8_t> blob);
  Statement& BindNull(int index);
  Statement& Bind(int index, const std::optional<std::string>& text);

  // Binds every argument in order, starting at 1.
  template <typename... Args>
  Statement& BindAll(const Args&... args) {
    int i = 0;
    (Bind(++i, args), ...);
    return *this;
  }

  // true: a row is ready; false: done.
  Result<bool> Step();
  // Runs to completion (for statements that return no rows).
  Status Run();
  Status Reset();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::string Text(int col) const;
  std::optional<std::string> OptText(int col) const;
  Bytes Blob(int col) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Database* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  Status bind_error_;
};

class Transaction;

class Database {
 public:
  // Opens (creating with mode 0600) and migrates. A file written by a newer schema, a file
  // that is not a database, or a corrupt one is refused with a clear error; nothing is
  // replaced.
  static Result<std::unique_ptr<Database>> Open(const std::filesystem::path& path,
                                                const OpenOptions& options);
  // A private in-memory database loaded from `image` (what Serialize() returned; empty: a new
  // database), then migrated. `name` stands for the path in messages. The simulator keeps each
  // virtual device's database this way, so thousands of them fit in one file and no memory
  // while idle. A damaged image is refused as Corruption.
  static Result<std::unique_ptr<Database>> OpenImage(std::span<const uint8_t> image,
                                                     std::string_view name,
                                                     const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Result<Statement> Prepare(std::string_view sql);
  // Runs one or more statements that take no parameters.
  Status Exec(std::string_view sql);
  // Prepare + BindAll + Run, for one-line writes.
  template <typename... Args>
  Status Run(std::string_view sql, const Args&... args) {
    DM_ASSIGN_OR_RETURN(Statement st, Prepare(sql));
    st.BindAll(args...);
    return st.Run();
  }

  // The outermost call opens BEGIN IMMEDIATE; nested calls open SAVEPOINTs, so an inner
  // rollback (a failed SyncML Atomic) undoes only its part.
  Result<Transaction> Begin();
  bool InTransaction() const { return depth_ > 0; }

  int64_t LastInsertRowId() const;
  int Changes() const;
  int SchemaVersion() const { return schema_version_; }
  const std::filesystem::path& path() const { return path_; }
  // PRAGMA integrity_check; OK when the file is sound.
  Status CheckIntegrity();
  // The whole database as one byte image (SQLite's serialization: a database file's bytes),
  // for OpenImage(). Outside a transaction only, so the image is a committed state.
  Result<Bytes> Serialize();
  // A consistent copy of the committed database into a new file `dest` (SQLite's online backup
  // API: other connections go on writing meanwhile). `dest` is created exclusively, 0600, never
  // through a symlink; on any failure it is removed. Outside a transaction only.
  Status BackupTo(const std::filesystem::path& dest);

  // Error message of the last failed call, with the file name, for Status messages.
  Status LastError(std::string_view what) const;

 private:
  friend class Transaction;
  friend class Statement;
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  Status Migrate(std::span<const Migration> migrations);
  void Recycle(sqlite3_stmt* stmt);

  sqlite3* db_;
  std::filesystem::path path_;
  int depth_ = 0;
  int savepoint_seq_ = 0;
  int schema_version_ = 0;
  // Idle prepared statements by SQL text (a few per text: statements of the same text may be
  // open at once, e.g. in nested loops).
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle_;
};

// Rolls back on destruction unless Commit() was called.
class [[nodiscard]] Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Status Commit();
  Status Rollback();

 private:
  friend class Database;
  Transaction(Database* db, std::string savepoint) : db_(db), savepoint_(std::move(savepoint)) {}
  Database* db_;
  std::string savepoint_;  // empty for the outermost transaction
  bool done_ = false;
};

}  // namespace dm::storage
