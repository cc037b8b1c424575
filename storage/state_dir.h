// Where the agent keeps its state: --state-dir, else $DMAGENT_STATE_DIR, else /var/lib/dmagent.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "base/status.h"

namespace dm::storage {

inline constexpr char kDefaultStateDir[] = "/var/lib/dmagent";
inline constexpr char kDatabaseFile[] = "dmagent.db";

std::filesystem::path ResolveStateDir(const std::optional<std::string>& flag);
// Creates the directory (0700) if needed and checks it is private: state is secret. The
// directory and every entry in it must be owned by the running user and not writable by group
// or others, and none may be a symlink; otherwise FailedPrecondition, and nothing is read or
// written. A directory of ours that others can only read is made 0700.
Status PrepareStateDir(const std::filesystem::path& dir);

}  // namespace dm::storage
