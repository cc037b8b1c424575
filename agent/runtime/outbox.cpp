#include "agent/runtime/outbox.h"

#include "storage/database.h"

namespace dm::agent {

Result<int64_t> Outbox::Enqueue(const GenericAlert& alert) {
  DM_RETURN_IF_ERROR(
      db_.Run("INSERT INTO outbox (type, format, mark, source_uri, data, created_at) "
              "VALUES (?, ?, ?, ?, ?, ?)",
              alert.type, alert.format, alert.mark.value_or(""), alert.source.value_or(""),
              alert.data, ToUnixSeconds(clock_.Now())));
  return db_.LastInsertRowId();
}

Result<int64_t> Outbox::EnqueueLatest(const GenericAlert& alert) {
  DM_ASSIGN_OR_RETURN(auto tx, db_.Begin());
  DM_RETURN_IF_ERROR(db_.Run("DELETE FROM outbox WHERE type = ?", alert.type));
  DM_ASSIGN_OR_RETURN(int64_t id, Enqueue(alert));
  DM_RETURN_IF_ERROR(tx.Commit());
  return id;
}

Result<std::vector<OutboxEntry>> Outbox::Pending() const {
  DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT id, type, format, mark, source_uri, data, "
                                           "attempts FROM outbox ORDER BY id"));
  std::vector<OutboxEntry> out;
  for (;;) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    OutboxEntry e;
    e.id = st.Int(0);
    e.attempts = static_cast<int>(st.Int(6));
    e.alert.type = st.Text(1);
    e.alert.format = st.Text(2);
    if (!st.IsNull(3) && !st.Text(3).empty()) e.alert.mark = st.Text(3);
    if (!st.IsNull(4) && !st.Text(4).empty()) e.alert.source = st.Text(4);
    e.alert.data = st.Text(5);
    out.push_back(std::move(e));
  }
  return out;
}

Status Outbox::Acknowledge(int64_t id) { return db_.Run("DELETE FROM outbox WHERE id = ?", id); }

Status Outbox::MarkAttempted(int64_t id) {
  return db_.Run("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", id);
}

}  // namespace dm::agent
