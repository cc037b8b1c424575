// Structured fields of log records: what a record is about (device, session, server), kept
// apart from the message so the journal and JSON logs can be filtered on them
// (`journalctl DEVICE_ID=...`).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dm {

// While it lives, every record this thread logs carries name=value. Names are lower-case
// snake_case ("device_id", "session_id", "server"); the journal gets them upper-cased. An inner
// field of the same name hides an outer one until it ends.
class LogField {
 public:
  LogField(std::string_view name, std::string_view value);
  ~LogField();
  LogField(const LogField&) = delete;
  LogField& operator=(const LogField&) = delete;
};

// This thread's fields, outermost first, without the hidden ones.
std::vector<std::pair<std::string, std::string>> CurrentLogFields();

}  // namespace dm
