#include "samples/server/session_log.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "base/log_fields.h"

namespace dm::server {

Status AddToSession(storage::Database& db, std::string_view dev_id, bool new_session,
                    int64_t now_ms, const SessionTally& tally) {
  if (new_session) {
    return db.Run(
        "UPDATE devices SET session_started_ms = ?, session_messages = 1, session_sent = ?, "
        "session_acked = ?, session_failed = ? WHERE dev_id = ?",
        now_ms, tally.sent, tally.acknowledged, tally.failed, std::string(dev_id));
  }
  return db.Run(
      "UPDATE devices SET session_messages = session_messages + 1, session_sent = session_sent + "
      "?, session_acked = session_acked + ?, session_failed = session_failed + ? WHERE dev_id = ?",
      tally.sent, tally.acknowledged, tally.failed, std::string(dev_id));
}

Status LogSessionEnd(storage::Database& db, std::string_view dev_id, std::string_view user,
                     int64_t now_ms, int http_status) {
  DM_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT session_started_ms, session_messages, "
                                          "session_sent, session_acked, session_failed FROM "
                                          "devices WHERE dev_id = ?"));
  st.Bind(1, std::string(dev_id));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status::Ok();
  const int64_t started = st.Int(0);
  std::optional<LogField> user_field;
  if (!user.empty()) user_field.emplace("user", user);
  spdlog::log(http_status == 200 ? spdlog::level::info : spdlog::level::warn,
              "OMA-DM session ended: user {}, {} ms, {} message(s), {} command(s) sent, {} "
              "failed, {} acknowledged, HTTP {}",
              user.empty() ? "(none)" : std::string(user), started > 0 ? now_ms - started : 0,
              st.Int(1), st.Int(2), st.Int(4), st.Int(3), http_status);
  return Status::Ok();
}

}  // namespace dm::server
