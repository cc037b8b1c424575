#include "agent/runtime/machine_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dm::agent {

namespace {

// Writes a new key to a temporary file and links it into place: machine.key appears whole or
// not at all, whatever kills the process, and a concurrent creator loses cleanly (link fails
// with EEXIST; the caller then reads the winner's key). The directory is synced so the name
// survives a power cut once anything has been sealed under the key.
Status CreateKeyFile(const std::filesystem::path& path, const SecretBytes& key) {
  std::string tmp = path.string() + ".XXXXXX";
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
  if (status.ok() && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    status = IoError("cannot create " + path.string() + ": " + std::strerror(errno));
  }
  ::unlink(tmp.c_str());
  if (status.ok()) {
    const int dir = ::open(path.parent_path().empty() ? "." : path.parent_path().c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }
  return status;
}

}  // namespace

Result<MachineKey> MachineKey::LoadOrCreate(const std::filesystem::path& state_dir,
                                            crypto::Random& random) {
  const std::filesystem::path path = state_dir / kMachineKeyFile;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    DM_ASSIGN_OR_RETURN(SecretBytes fresh, random.Secret(crypto::kAesKeySize));
    DM_RETURN_IF_ERROR(CreateKeyFile(path, fresh));
    // Read back what is in place: another process may have linked its key first.
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) return IoError("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    ::close(fd);
    return PermissionDenied(path.string() + " must be readable by its owner only (0600)");
  }
  SecretBytes key(crypto::kAesKeySize);
  size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got != key.size() || st.st_size != static_cast<off_t>(key.size())) {
    return Corruption(path.string() + " is not a 32-byte key");
  }
  return MachineKey(std::move(key));
}

Result<Bytes> MachineKey::Seal(const SecretBytes& plaintext, std::string_view purpose,
                               crypto::Random& random) const {
  return crypto::Seal(key_, plaintext.span(), purpose, random);
}

Result<SecretBytes> MachineKey::Open(std::span<const uint8_t> sealed,
                                     std::string_view purpose) const {
  return crypto::Open(key_, sealed, purpose);
}

}  // namespace dm::agent
