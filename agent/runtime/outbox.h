// Reports the server has not acknowledged yet. A 1226 generic alert is written here in the same
// transaction as the state change it reports, goes out in the next session's first package,
// and is deleted only when the server's Status for it is 2xx — so a crash, a dropped
// connection or a server error loses nothing (ARCHITECTURE decisions 1 and 6).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/session/session.h"
#include "base/clock.h"
#include "base/status.h"

namespace dm::storage {
class Database;
}

namespace dm::agent {

// One stored alert: the alert itself plus its bookkeeping.
struct OutboxEntry {
  int64_t id = 0;
  int attempts = 0;  // sessions it was sent in without a 2xx
  GenericAlert alert;
};

class Outbox {
 public:
  Outbox(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  Result<int64_t> Enqueue(const GenericAlert& alert);
  // Replaces any unsent alert of the same type: only the newest report matters.
  Result<int64_t> EnqueueLatest(const GenericAlert& alert);
  Result<std::vector<OutboxEntry>> Pending() const;
  // The server answered 2xx: the alert is delivered.
  Status Acknowledge(int64_t id);
  // Sent but not acknowledged (non-2xx or no answer): kept for the next session.
  Status MarkAttempted(int64_t id);

 private:
  storage::Database& db_;
  const Clock& clock_;
};

}  // namespace dm::agent
