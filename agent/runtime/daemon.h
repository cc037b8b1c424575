// `dmagent run`: client-initiated sessions on the DMClient poll schedule (first set, second
// set, remaining), backing off on failure, until SIGTERM or SIGINT.
#pragma once

#include <chrono>

#include "agent/runtime/device.h"
#include "base/status.h"

namespace dm::agent {

struct DaemonOptions {
  int max_sessions = 0;           // stop after this many attempts; 0 = until a signal
  int poll_override_seconds = 0;  // fixed interval instead of the DMClient schedule
  std::chrono::seconds initial_backoff{30};
  std::chrono::seconds max_backoff{std::chrono::hours(2)};
};

// Returns OK after a signal or max_sessions; errors only for what retrying cannot fix (not
// enrolled, the database failed).
Status RunDaemon(Device& device, const DaemonOptions& options);

}  // namespace dm::agent
