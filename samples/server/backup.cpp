#include "samples/server/backup.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "base/version.h"
#include "samples/server/server.h"
#include "samples/server/server_internal.h"
#include "samples/server/store.h"
#include "storage/database.h"
#include "storage/state_dir.h"

namespace dm::server {
namespace {

namespace fs = std::filesystem;

constexpr char kFormat[] = "dmserver-backup/1";

struct KeptFile {
  fs::path StatePaths::*path;
  mode_t mode;
};
// What a state directory holds besides the database (server.h), minus what start re-issues.
constexpr KeptFile kKeptFiles[] = {{&StatePaths::ca_cert, 0644},
                                   {&StatePaths::ca_key, 0600},
                                   {&StatePaths::pin_reset_key, 0600},
                                   {&StatePaths::idp_key, 0600},
                                   {&StatePaths::admin_token, 0600}};

// A database file that was being written and failed: the file and its WAL files.
void RemoveDatabaseFiles(const fs::path& db) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix, ec);
}

// Written whole beside `path`, synced, then renamed over it.
Status WriteReplacing(const fs::path& path, std::string_view content, mode_t mode) {
  const fs::path tmp = path.string() + ".restoring";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return IoError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  const bool ok =
      ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
      ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return IoError("cannot write " + path.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status CopyFile(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::remove(to, ec);
  if (!fs::copy_file(from, to, ec) || ::chmod(to.c_str(), 0600) != 0) {
    return IoError("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
  }
  return Status::Ok();
}

}  // namespace

Result<StateDirLock> StateDirLock::Acquire(const fs::path& state_dir) {
  const fs::path path = state_dir / "serve.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot open " + path.string() + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return FailedPrecondition("a dmserver is serving from " + state_dir.string() +
                              ": stop it first");
  }
  return StateDirLock(fd);
}

StateDirLock::~StateDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

Status BackupState(const fs::path& state_dir, const fs::path& file) {
  const StatePaths paths = PathsFor(state_dir);
  std::error_code ec;
  if (!fs::exists(paths.database, ec)) {
    return NotFound("no dmserver state in " + state_dir.string() + ": run `dmserver init` first");
  }
  DM_RETURN_IF_ERROR(storage::PrepareStateDir(state_dir));
  {
    DM_ASSIGN_OR_RETURN(
        auto db, storage::Database::Open(
                     paths.database, {.migrations = ServerSchema(), .create_if_missing = false}));
    DM_RETURN_IF_ERROR(db->BackupTo(file));
  }
  auto finish = [&]() -> Status {
    DM_ASSIGN_OR_RETURN(auto out, storage::Database::Open(file, {.migrations = ServerSchema(),
                                                                 .create_if_missing = false}));
    DM_ASSIGN_OR_RETURN(storage::Transaction tx, out->Begin());
    DM_RETURN_IF_ERROR(out->Exec(
        "CREATE TABLE dmserver_backup (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE dmserver_backup_file (name TEXT PRIMARY KEY, mode INTEGER NOT NULL, "
        "content BLOB NOT NULL);"));
    DM_RETURN_IF_ERROR(out->Run(
        "INSERT INTO dmserver_backup VALUES ('format', ?), "
        "('written_by', ?), ('schema_version', ?)",
        std::string_view(kFormat), VersionLine("dmserver"), std::to_string(out->SchemaVersion())));
    for (const KeptFile& k : kKeptFiles) {
      const fs::path& path = paths.*k.path;
      if (!fs::exists(path, ec)) continue;  // e.g. no admin-token file after it was removed
      DM_ASSIGN_OR_RETURN(std::string content, ReadFile(path));
      DM_ASSIGN_OR_RETURN(storage::Statement st,
                          out->Prepare("INSERT INTO dmserver_backup_file VALUES (?, ?, ?)"));
      st.Bind(1, path.filename().string()).Bind(2, static_cast<int64_t>(k.mode));
      st.BindBlob(3, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(content.data()),
                                              content.size()));
      DM_RETURN_IF_ERROR(st.Run());
    }
    DM_RETURN_IF_ERROR(tx.Commit());
    return out->CheckIntegrity();
  };
  if (Status s = finish(); !s.ok()) {
    RemoveDatabaseFiles(file);
    return s.WithContext("backup " + file.string());
  }
  spdlog::info("backed up {} to {}", state_dir.string(), file.string());
  return Status::Ok();
}

Status RestoreState(const fs::path& file, const fs::path& state_dir) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return NotFound("no backup file " + file.string());
  DM_RETURN_IF_ERROR(storage::PrepareStateDir(state_dir));
  DM_ASSIGN_OR_RETURN(StateDirLock lock, StateDirLock::Acquire(state_dir));
  const StatePaths paths = PathsFor(state_dir);
  // Work on a copy beside the database: the backup file itself is never changed, and the copy
  // is migrated forward (a newer schema is refused there) before anything is replaced.
  const fs::path staged = paths.database.string() + ".restoring";
  DM_RETURN_IF_ERROR(CopyFile(file, staged));
  struct File {
    fs::path path;
    std::string content;
    mode_t mode;
  };
  std::vector<File> files;
  auto stage = [&]() -> Status {
    DM_ASSIGN_OR_RETURN(auto db, storage::Database::Open(staged, {.migrations = ServerSchema(),
                                                                  .create_if_missing = false}));
    DM_RETURN_IF_ERROR(db->CheckIntegrity());
    {  // statements closed before the DROPs below
      auto format = db->Prepare("SELECT value FROM dmserver_backup WHERE key = 'format'");
      if (!format.ok() || !format->Step().value_or(false) || format->Text(0) != kFormat) {
        return InvalidArgument(file.string() + " is not a dmserver backup (" + kFormat + ")");
      }
    }
    {
      DM_ASSIGN_OR_RETURN(storage::Statement st,
                          db->Prepare("SELECT name, mode, content FROM dmserver_backup_file"));
      while (true) {
        DM_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        const std::string name = st.Text(0);
        const KeptFile* kept = nullptr;
        for (const KeptFile& k : kKeptFiles) {
          if ((paths.*k.path).filename() == name) kept = &k;
        }
        if (kept == nullptr) return InvalidArgument("the backup holds an unknown file " + name);
        const Bytes content = st.Blob(2);
        files.push_back(
            {paths.*kept->path, std::string(content.begin(), content.end()), kept->mode});
      }
    }
    return db->Exec("DROP TABLE dmserver_backup; DROP TABLE dmserver_backup_file;");
  };
  if (Status s = stage(); !s.ok()) {
    RemoveDatabaseFiles(staged);
    return s.WithContext("restore " + file.string());
  }
  for (const File& f : files) DM_RETURN_IF_ERROR(WriteReplacing(f.path, f.content, f.mode));
  // The old database's WAL must not be replayed into the restored one.
  for (const char* suffix : {"-wal", "-shm"}) fs::remove(paths.database.string() + suffix, ec);
  if (::rename(staged.c_str(), paths.database.c_str()) != 0) {
    return IoError("cannot move the restored database into place: " +
                   std::string(std::strerror(errno)));
  }
  spdlog::info("restored {} from {}", state_dir.string(), file.string());
  return Status::Ok();
}

}  // namespace dm::server
