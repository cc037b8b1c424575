// Logging set-up for the binaries. Libraries log through spdlog's default logger; nothing that
// is a secret (PIN, protector, key, password, token, OTP) is ever passed to it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace dm {

// level: "trace", "debug", "info", "warn", "error", "off". Logs go to stderr and, when
// `file` is given, to that file, created 0600. Every message passes through Printable first:
// strings a peer sent (a device's user name, a server's reason) cannot forge log lines or
// drive the operator's terminal.
// `text` safe for a log line or a terminal: control characters (C0, DEL, C1), backslash and
// bytes that are not UTF-8 become escapes (\n, \t, \\, \xNN); printable UTF-8 stays.
std::string Printable(std::string_view text);

Status InitLogging(std::string_view level, const std::optional<std::filesystem::path>& file = {});

}  // namespace dm
