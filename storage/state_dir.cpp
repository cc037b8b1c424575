#include "storage/state_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace dm::storage {

std::filesystem::path ResolveStateDir(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  if (const char* env = std::getenv("DMAGENT_STATE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return kDefaultStateDir;
}

Status PrepareStateDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create state directory " + dir.string() + ": " + ec.message());
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) {
    return IoError("cannot stat " + dir.string() + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(dir.string() + " is not a directory");
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) {
    return IoError("cannot make " + dir.string() + " private (0700): " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace dm::storage
