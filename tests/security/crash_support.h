// What the crash-consistency tests share: seeded knobs from the environment, small files for
// the agent's arguments, and the integrity check a recovering agent would see.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace dm::testing {

// The environment variable as a number, or `fallback` when it is unset or empty.
uint64_t EnvOr(const char* name, uint64_t fallback);

void WriteAll(const std::filesystem::path& p, std::string_view s);

// PRAGMA integrity_check of `database` through the sqlite3 API: "ok", or what went wrong.
std::string IntegrityCheck(const std::filesystem::path& database);

}  // namespace dm::testing
