// `dmserver backup FILE` and `dmserver restore FILE`.
//
// A backup is one SQLite file, 0600 (it holds the CA and IdP keys): a consistent copy of
// server.db taken with SQLite's online backup API, safe while the server serves, plus the
// state directory's keys and the initial admin token in a table of their own, because a
// database without the CA that signed every device certificate restores nothing. TLS server
// certificates are not kept: `serve` issues them at start.
#pragma once

#include <filesystem>

#include "base/status.h"

namespace dm::server {

// NotFound when `state_dir` was never initialised; `file` must not exist yet.
Status BackupState(const std::filesystem::path& state_dir, const std::filesystem::path& file);

// Into `state_dir` (created if missing). Refused (nothing changed) while a dmserver serves
// from it, for a file that is not a dmserver backup or fails its integrity check, and for a
// schema newer than this build's; an older one is migrated forward. Each file is written beside
// its place and renamed over it, the database last.
Status RestoreState(const std::filesystem::path& file, const std::filesystem::path& state_dir);

// Held by `dmserver serve` while it runs (flock on <state_dir>/serve.lock), and by restore.
class StateDirLock {
 public:
  // FailedPrecondition when another process holds it.
  static Result<StateDirLock> Acquire(const std::filesystem::path& state_dir);
  StateDirLock(StateDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  StateDirLock& operator=(StateDirLock&&) = delete;
  ~StateDirLock();

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace dm::server
