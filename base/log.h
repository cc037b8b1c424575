// Logging set-up for the binaries. Libraries log through spdlog's default logger; nothing that
// is a secret (PIN, protector, key, password, token, OTP) is ever passed to it.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "base/status.h"

namespace dm {

// level: "trace", "debug", "info", "warn", "error", "off". Logs go to stderr and, when
// `file` is given, to that file, created 0600.
Status InitLogging(std::string_view level, const std::optional<std::filesystem::path>& file = {});

}  // namespace dm
