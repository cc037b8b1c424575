#include "storage/database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dm::storage {
namespace {

Status SqliteStatus(sqlite3* db, int rc, std::string_view what, const std::filesystem::path& path) {
  std::string msg(what);
  msg += " (";
  msg += path.string();
  msg += "): ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Corruption(msg +
                        " — the file is damaged or not an agent database; it was left "
                        "untouched, move it aside to start fresh");
    case SQLITE_CONSTRAINT:
      return AlreadyExists(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(msg);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return IoError(msg);
    default:
      return Internal(msg);
  }
}

// SQLite creates the -wal and -shm side files with the main file's permissions; creating the
// main file ourselves with 0600 first keeps all three private.
Status CreatePrivateFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return IoError("cannot create " + path.string() + ": " + std::strerror(errno));
  }
  ::fchmod(fd, 0600);
  ::close(fd);
  return Status::Ok();
}

}  // namespace

// ---- Statement ----------------------------------------------------------------------------

Statement::Statement(Statement&& o) noexcept
    : db_(o.db_), stmt_(o.stmt_), bind_error_(std::move(o.bind_error_)) {
  o.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (stmt_ != nullptr) db_->Recycle(stmt_);
    db_ = o.db_;
    stmt_ = o.stmt_;
    bind_error_ = std::move(o.bind_error_);
    o.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) db_->Recycle(stmt_);
}

Statement& Statement::Bind(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->LastError("bind");
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->LastError("bind");
  return *this;
}

Statement& Statement::BindBlob(int index, std::span<const uint8_t> blob) {
  int rc =
      sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->LastError("bind");
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->LastError("bind");
  return *this;
}

Statement& Statement::Bind(int index, const std::optional<std::string>& text) {
  return text ? Bind(index, std::string_view(*text)) : BindNull(index);
}

Result<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->LastError("step");
}

Status Statement::Run() {
  for (;;) {
    DM_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

Status Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = Status::Ok();
  return Status::Ok();
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p != nullptr ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::optional<std::string> Statement::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

Bytes Statement::Blob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p != nullptr ? Bytes(p, p + n) : Bytes();
}

// ---- Database -----------------------------------------------------------------------------

Result<std::unique_ptr<Database>> Database::Open(const std::filesystem::path& path,
                                                 const OpenOptions& options) {
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  if (!exists) {
    if (!options.create_if_missing) return NotFound("no database at " + path.string());
    DM_RETURN_IF_ERROR(CreatePrivateFile(path));
  } else if (::access(path.c_str(), R_OK | W_OK) != 0) {
    return IoError("cannot read and write " + path.string() + ": " + std::strerror(errno));
  }

  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteStatus(raw, rc, "open database", path);
    sqlite3_close(raw);
    return st;
  }
  std::unique_ptr<Database> db(new Database(raw, path));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));

  // The first real read happens here; a damaged or foreign file fails now, before any write.
  // synchronous=FULL: in WAL mode NORMAL may lose the last commits on power loss, and the agent
  // answers 200 (the server never re-sends) as soon as a commit returns (decision 1).
  auto st =
      db->Exec(options.durable_commits
                   ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                   : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA foreign_keys=ON;");
  if (!st.ok()) return st.WithContext("open database");
  DM_RETURN_IF_ERROR(db->Migrate(options.migrations));
  return db;
}

Result<std::unique_ptr<Database>> Database::OpenImage(std::span<const uint8_t> image,
                                                      std::string_view name,
                                                      const OpenOptions& options) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      ":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteStatus(raw, rc, "open in-memory database", std::string(name));
    sqlite3_close(raw);
    return st;
  }
  std::unique_ptr<Database> db(new Database(raw, std::string(name)));
  sqlite3_extended_result_codes(raw, 1);
  if (!image.empty()) {
    // SQLite takes ownership of a sqlite3_malloc'ed copy and may grow it as the database grows.
    auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
    if (copy == nullptr) return ResourceExhausted("no memory for a database image");
    std::memcpy(copy, image.data(), image.size());
    rc = sqlite3_deserialize(raw, "main", copy, static_cast<sqlite3_int64>(image.size()),
                             static_cast<sqlite3_int64>(image.size()),
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
    if (rc != SQLITE_OK) return db->LastError("load database image");
  } else {
    // Small pages keep a device's image (one page per table and index at least) small.
    DM_RETURN_IF_ERROR(db->Exec("PRAGMA page_size=1024"));
  }
  // A WAL file makes no sense in memory; the default rollback journal keeps savepoints working.
  auto st = db->Exec("PRAGMA foreign_keys=ON;");
  if (!st.ok()) return st.WithContext("open database image");
  DM_RETURN_IF_ERROR(db->Migrate(options.migrations));
  return db;
}

Result<Bytes> Database::Serialize() {
  if (depth_ > 0)
    return FailedPrecondition("cannot serialize " + path_.string() + " mid-transaction");
  sqlite3_int64 size = 0;
  unsigned char* data = sqlite3_serialize(db_, "main", &size, 0);
  if (data == nullptr) return LastError("serialize");
  Bytes out(data, data + size);
  sqlite3_free(data);
  return out;
}

Status Database::BackupTo(const std::filesystem::path& dest) {
  if (depth_ > 0)
    return FailedPrecondition("cannot back up " + path_.string() + " mid-transaction");
  const int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return AlreadyExists(dest.string() + " exists: a backup never overwrites a file");
    }
    return IoError("cannot create " + dest.string() + ": " + std::strerror(errno));
  }
  ::close(fd);
  auto fail = [&](Status s) {
    std::error_code ec;
    std::filesystem::remove(dest, ec);
    return s;
  };
  sqlite3* out = nullptr;
  int rc =
      sqlite3_open_v2(dest.c_str(), &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteStatus(out, rc, "open backup", dest);
    sqlite3_close(out);
    return fail(st);
  }
  sqlite3_backup* backup = sqlite3_backup_init(out, "main", db_, "main");
  if (backup == nullptr) {
    Status st = SqliteStatus(out, sqlite3_errcode(out), "start backup", dest);
    sqlite3_close(out);
    return fail(st);
  }
  // One step copies every page under one read transaction: a snapshot of the last commit.
  rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    Status st = SqliteStatus(out, rc, "back up", dest);
    sqlite3_close(out);
    return fail(st);
  }
  rc = sqlite3_close(out);
  if (rc != SQLITE_OK) return fail(IoError("cannot close the backup " + dest.string()));
  return Status::Ok();
}

Database::~Database() {
  for (auto& [sql, stmts] : idle_) {
    for (sqlite3_stmt* s : stmts) sqlite3_finalize(s);
  }
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

void Database::Recycle(sqlite3_stmt* stmt) {
  constexpr size_t kIdlePerText = 4;
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  const char* sql = sqlite3_sql(stmt);
  auto& idle = idle_[sql != nullptr ? sql : ""];
  if (sql == nullptr || idle.size() >= kIdlePerText) {
    sqlite3_finalize(stmt);
    return;
  }
  idle.push_back(stmt);
}

Status Database::LastError(std::string_view what) const {
  return SqliteStatus(db_, sqlite3_extended_errcode(db_), what, path_);
}

Result<Statement> Database::Prepare(std::string_view sql) {
  if (auto it = idle_.find(std::string(sql)); it != idle_.end() && !it->second.empty()) {
    sqlite3_stmt* cached = it->second.back();
    it->second.pop_back();
    return Statement(this, cached);
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return LastError("prepare \"" + std::string(sql.substr(0, 60)) + "\"");
  }
  return Statement(this, stmt);
}

Status Database::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (err != nullptr) sqlite3_free(err);
  if (rc != SQLITE_OK) return LastError("exec");
  return Status::Ok();
}

Result<Transaction> Database::Begin() {
  if (depth_ == 0) {
    DM_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    ++depth_;
    return Transaction(this, "");
  }
  std::string name = "sp" + std::to_string(++savepoint_seq_);
  DM_RETURN_IF_ERROR(Exec("SAVEPOINT " + name));
  ++depth_;
  return Transaction(this, name);
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int Database::Changes() const { return sqlite3_changes(db_); }

Status Database::CheckIntegrity() {
  DM_ASSIGN_OR_RETURN(Statement st, Prepare("PRAGMA integrity_check"));
  std::string report;
  for (;;) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    std::string line = st.Text(0);
    if (line != "ok") report += line + "; ";
  }
  if (!report.empty()) return Corruption("integrity check of " + path_.string() + ": " + report);
  return Status::Ok();
}

Status Database::Migrate(std::span<const Migration> migrations) {
  DM_ASSIGN_OR_RETURN(Statement st, Prepare("PRAGMA user_version"));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  int current = row ? static_cast<int>(st.Int(0)) : 0;
  int latest = migrations.empty() ? 0 : migrations.back().version;
  if (current > latest) {
    return FailedPrecondition(path_.string() + " has schema version " + std::to_string(current) +
                              " but this build knows only up to " + std::to_string(latest) +
                              "; it was written by a newer version — upgrade this program; the "
                              "file was not changed");
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    if (m.version != current + 1) {
      return Internal("migrations are not consecutive at version " + std::to_string(m.version));
    }
    DM_ASSIGN_OR_RETURN(Transaction tx, Begin());
    Status s = Exec(m.sql);
    if (!s.ok()) {
      return s.WithContext("schema migration " + std::to_string(m.version) + " (" + m.description +
                           ")");
    }
    DM_RETURN_IF_ERROR(Exec("PRAGMA user_version = " + std::to_string(m.version)));
    DM_RETURN_IF_ERROR(tx.Commit());
    current = m.version;
  }
  schema_version_ = current;
  return Status::Ok();
}

// ---- Transaction --------------------------------------------------------------------------

Transaction::Transaction(Transaction&& o) noexcept
    : db_(o.db_), savepoint_(std::move(o.savepoint_)), done_(o.done_) {
  o.done_ = true;
}

Transaction::~Transaction() {
  if (!done_) (void)Rollback();
}

Status Transaction::Commit() {
  if (done_) return Internal("transaction already finished");
  done_ = true;
  --db_->depth_;
  if (savepoint_.empty()) {
    Status s = db_->Exec("COMMIT");
    if (!s.ok()) (void)db_->Exec("ROLLBACK");
    return s;
  }
  return db_->Exec("RELEASE " + savepoint_);
}

Status Transaction::Rollback() {
  if (done_) return Status::Ok();
  done_ = true;
  --db_->depth_;
  if (savepoint_.empty()) return db_->Exec("ROLLBACK");
  // ROLLBACK TO keeps the savepoint open; RELEASE closes it with nothing in it.
  DM_RETURN_IF_ERROR(db_->Exec("ROLLBACK TO " + savepoint_));
  return db_->Exec("RELEASE " + savepoint_);
}

}  // namespace dm::storage
