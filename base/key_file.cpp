#include "base/key_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace dm {

namespace {

Status ReadKeyFd(int fd, const std::filesystem::path& file, SecretBytes& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return IoError("cannot stat " + file.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(file.string() + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return FailedPrecondition("the key file " + file.string() +
                              " is accessible to other users (mode " + mode + "); it must be 0600");
  }
  if (st.st_size != static_cast<off_t>(crypto::kAesKeySize)) {
    return Corruption("the key file " + file.string() + " has " + std::to_string(st.st_size) +
                      " bytes, expected 32");
  }
  SecretBytes key(crypto::kAesKeySize);
  size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError("cannot read " + file.string());
    got += static_cast<size_t>(n);
  }
  out = std::move(key);
  return Status::Ok();
}

// Writes a new key to a temporary file and links it into place, so a concurrent reader never
// sees a partial file and a concurrent creator loses cleanly (link fails with EEXIST).
Status CreateKeyFile(const std::filesystem::path& file, crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(SecretBytes key, random.Secret(crypto::kAesKeySize));
  std::string tmp = file.string() + ".XXXXXX";
  const int fd = ::mkstemp(tmp.data());  // mode 0600
  if (fd < 0) return IoError("cannot create " + tmp + ": " + std::strerror(errno));
  size_t put = 0;
  Status status;
  while (put < key.size()) {
    const ssize_t n = ::write(fd, key.data() + put, key.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = IoError("cannot write " + tmp + ": " + std::strerror(errno));
      break;
    }
    put += static_cast<size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = IoError("cannot sync " + tmp + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (status.ok() && ::link(tmp.c_str(), file.c_str()) != 0 && errno != EEXIST) {
    status = IoError("cannot create " + file.string() + ": " + std::strerror(errno));
  }
  ::unlink(tmp.c_str());
  if (status.ok()) {
    const int dir = ::open(file.parent_path().empty() ? "." : file.parent_path().c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  return status;
}

}  // namespace

Result<SecretBytes> LoadOrCreateKeyFile(const std::filesystem::path& file, crypto::Random& random) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      SecretBytes key;
      const Status s = ReadKeyFd(fd, file, key);
      ::close(fd);
      if (!s.ok()) return s;
      return key;
    }
    if (errno != ENOENT) {
      return IoError("cannot open " + file.string() + ": " + std::strerror(errno));
    }
    DM_RETURN_IF_ERROR(CreateKeyFile(file, random));
    spdlog::info("created the key file {}", file.string());
  }
  return IoError("cannot create " + file.string());
}

}  // namespace dm
