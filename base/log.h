// Logging set-up for the binaries. Libraries log through spdlog's default logger; nothing that
// is a secret (PIN, protector, key, password, token, OTP) is ever passed to it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace dm {

// `text` safe for a log line or a terminal: control characters (C0, DEL, C1), backslash and
// bytes that are not UTF-8 become escapes (\n, \t, \\, \xNN); printable UTF-8 stays.
std::string Printable(std::string_view text);

enum class LogFormat {
  kAuto,     // the journal when stderr is journald's stream (JOURNAL_STREAM), else text
  kText,     // "2026-12-04T10:00:00.000Z info message device_id=..." on stderr
  kJson,     // one JSON object per line on stderr: time, level, message, the fields
  kJournal,  // journald's native protocol: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, the fields
};
struct LogOptions {
  std::string program = "dmagent";  // SYSLOG_IDENTIFIER in the journal
  std::string level = "warn";       // trace, debug, info, warn, error, off
  LogFormat format = LogFormat::kAuto;
  // Also to this file, created 0600, as text (json when the format is json). ReopenLogFile
  // opens it again after logrotate moved it.
  std::optional<std::filesystem::path> file;
};

// Replaces the default logger. Every message passes through Printable first: strings a peer
// sent (a device's user name, a server's reason) cannot forge log lines or drive the
// operator's terminal.
Status InitLogging(const LogOptions& options);

// A live progress line (simulate's) on standard error. On a terminal it is redrawn in place,
// and a log record written to standard error clears it first and draws it again after, so
// neither breaks the other; elsewhere each update is a line of its own. EndProgress leaves the
// last one standing and moves to a new line.
void ShowProgress(std::string_view line);
void EndProgress();

// The log file of the last InitLogging opened again (SIGHUP); OK when there is none.
Status ReopenLogFile();

// True when JOURNAL_STREAM names standard error's device and inode: systemd connected it to
// the journal, which stamps the time itself and understands priorities.
bool StderrIsJournal();

}  // namespace dm
