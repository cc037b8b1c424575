// dmserver's one log line per OMA-DM session. A session spans several HTTP messages (and, with
// several dmserver processes, several processes), so its tally lives in the device's row, not
// in memory: each message adds to it, and the message that ends the session logs it.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "storage/database.h"

namespace dm::server {

// What one message of a session did: commands sent to the device, and the Statuses it returned
// for earlier ones.
struct SessionTally {
  int64_t sent = 0;
  int64_t acknowledged = 0;
  int64_t failed = 0;
};

// Adds a message's tally to the device's session (a new session starts it over, at `now_ms`).
// In the caller's transaction.
Status AddToSession(storage::Database& db, std::string_view dev_id, bool new_session,
                    int64_t now_ms, const SessionTally& tally);

// Logs the session's line (info; a failed session's at warn): device, session, user, duration,
// messages, commands sent, failed and acknowledged, the HTTP status of the last reply.
Status LogSessionEnd(storage::Database& db, std::string_view dev_id, std::string_view user,
                     int64_t now_ms, int http_status);

}  // namespace dm::server
