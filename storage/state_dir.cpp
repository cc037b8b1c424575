#include "storage/state_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace dm::storage {
namespace {
std::string ToOctal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}
}  // namespace

std::filesystem::path ResolveStateDir(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  if (const char* env = std::getenv("DMAGENT_STATE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return kDefaultStateDir;
}

namespace {

// Owned by the running user and writable by nobody else; symlinks are refused (one planted
// there would redirect the writes).
Status CheckPrivate(const std::filesystem::path& path, const struct stat& st, bool dir) {
  if (S_ISLNK(st.st_mode)) {
    return FailedPrecondition(path.string() +
                              " is a symbolic link: state is never written "
                              "through one");
  }
  if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return FailedPrecondition(path.string() + (dir ? " is not a directory" : " is not a file"));
  }
  if (st.st_uid != ::geteuid()) {
    return FailedPrecondition(path.string() + " is owned by uid " + std::to_string(st.st_uid) +
                              ", not by the running user (uid " + std::to_string(::geteuid()) +
                              "): refusing to use it");
  }
  if ((st.st_mode & 022) != 0) {
    return FailedPrecondition(path.string() + " is writable by group or others (mode " +
                              ToOctal(st.st_mode & 0777) + "): refusing to use it");
  }
  return Status::Ok();
}

}  // namespace

Status PrepareStateDir(const std::filesystem::path& dir) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create state directory " + dir.string() + ": " + ec.message());
  if (created && ::chmod(dir.c_str(), 0700) != 0) {
    return IoError("cannot make " + dir.string() + " private (0700): " + std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return IoError("cannot stat " + dir.string() + ": " + std::strerror(errno));
  }
  DM_RETURN_IF_ERROR(CheckPrivate(dir, st, /*dir=*/true));
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    struct stat est {};
    if (::lstat(entry.path().c_str(), &est) != 0) {
      return IoError("cannot stat " + entry.path().string() + ": " + std::strerror(errno));
    }
    DM_RETURN_IF_ERROR(CheckPrivate(entry.path(), est, /*dir=*/false));
  }
  if (ec) return IoError("cannot list " + dir.string() + ": " + ec.message());
  // Ours and not writable by others, but readable: state is secret, so make it private.
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return IoError("cannot make " + dir.string() + " private (0700): " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace dm::storage
