// Reboot CSP (csp-and-container.md 6.2): ./Vendor/MSFT/Reboot/RebootNow (Exec) records a
// request that the agent carries out at the end of the session; Schedule/Single and
// Schedule/DailyRecurrent hold ISO 8601 date-times. This is the agent's view of both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace dm::storage {
class Database;
}

namespace dm::csp {

// ISO 8601 with date AND time, as the Reboot CSP requires: YYYY-MM-DDThh:mm[:ss[.fff]] with
// an optional Z or +hh:mm / -hh:mm. Without an offset the time is taken as UTC: the agent's
// clock domain is UTC (servers wanting a local wall-clock time send the offset).
Result<TimePoint> ParseIso8601DateTime(std::string_view text);

struct RebootRequest {
  int64_t id = 0;
  TimePoint requested_at;
  std::string origin;  // "RebootNow"
};

Status RecordRebootRequest(storage::Database& db, TimePoint at, std::string_view origin);
// Requests not yet carried out, oldest first.
Result<std::vector<RebootRequest>> PendingRebootRequests(storage::Database& db);
// The reboot step ran at `at`: pending requests are done, and scheduled times up to `at`
// have been honoured.
Status MarkRebootPerformed(storage::Database& db, TimePoint at);
Result<std::optional<TimePoint>> LastRebootPerformed(storage::Database& db);

struct RebootSchedule {
  std::optional<TimePoint> single;
  TimePoint single_set_at;         // when the server last wrote Single
  std::optional<TimePoint> daily;  // the first occurrence; then every 24 h
  TimePoint daily_set_at;
};
Result<RebootSchedule> ReadRebootSchedule(storage::Database& db);

enum class RebootCause { kRequested, kScheduledSingle, kScheduledDaily };
std::string_view RebootCauseName(RebootCause c);  // "RebootNow", "Schedule/Single", ...

struct RebootDue {
  RebootCause cause;
  TimePoint since;  // the request time or the scheduled occurrence
};

// Is a reboot due at `now`? A pending RebootNow request; or a scheduled time that has passed,
// came after the schedule was written (a time already past when configured never fires) and
// after the last performed reboot. DailyRecurrent looks at its latest occurrence <= now.
Result<std::optional<RebootDue>> RebootDueAt(storage::Database& db, TimePoint now);

}  // namespace dm::csp
