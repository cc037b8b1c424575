#include "agent/runtime/machine_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dm::agent {

Result<MachineKey> MachineKey::LoadOrCreate(const std::filesystem::path& state_dir,
                                            crypto::Random& random) {
  const std::filesystem::path path = state_dir / kMachineKeyFile;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    DM_ASSIGN_OR_RETURN(SecretBytes fresh, random.Secret(crypto::kAesKeySize));
    // O_EXCL: two processes racing to create it must not end up with different keys.
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ssize_t n = ::write(fd, fresh.data(), fresh.size());
      bool ok = n == static_cast<ssize_t>(fresh.size()) && ::fsync(fd) == 0;
      ::close(fd);
      if (!ok) return IoError("cannot write " + path.string() + ": " + std::strerror(errno));
      return MachineKey(std::move(fresh));
    }
    if (errno != EEXIST) {
      return IoError("cannot create " + path.string() + ": " + std::strerror(errno));
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) return IoError("cannot open " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    ::close(fd);
    return PermissionDenied(path.string() + " must be readable by its owner only (0600)");
  }
  SecretBytes key(crypto::kAesKeySize);
  ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(key.size())) {
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
