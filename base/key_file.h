// A 32-byte key kept in a file of its own (0600), outside the database: the root under which
// device-level secrets are sealed (machine.key, security-keys.key). Created atomically on first
// use (temporary file linked into place, directory synced), so it appears whole or not at all
// and concurrent first users agree on one key.
#pragma once

#include <filesystem>

#include "base/crypto.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm {

// FailedPrecondition when the file is not a regular file or other users can access it;
// Corruption when it is not exactly 32 bytes.
Result<SecretBytes> LoadOrCreateKeyFile(const std::filesystem::path& file,
                                        crypto::Random& random = crypto::OsRandom());

}  // namespace dm
