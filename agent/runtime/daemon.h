// `dmagent run`: client-initiated sessions on the DMClient poll schedule (first set, second
// set, remaining), backing off on failure, until SIGTERM or SIGINT.
//
// Each session runs in a forked child that opens the device, runs the session, reports the
// wait before the next one and exits; the daemon itself never opens the database or TLS.
// Idle, it is a process that has touched almost nothing (a few MB resident instead of every
// library the session used, plus what the heap kept), and a session that crashes or leaks
// cannot take the daemon with it (as Chef's client does with --fork).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "agent/runtime/device.h"
#include "base/status.h"

namespace dm::agent {

struct DaemonOptions {
  int max_sessions = 0;           // stop after this many attempts; 0 = until a signal
  int poll_override_seconds = 0;  // fixed interval instead of the DMClient schedule
  std::chrono::seconds initial_backoff{30};
  std::chrono::seconds max_backoff{std::chrono::hours(2)};
};

// Where the poll schedule stands: regular polls done, failures in a row.
struct DaemonCounters {
  int64_t polls = 0;
  int failures = 0;
};

// One pass: a session, then how long to wait before the next one (the schedule, or the
// backoff after a failure). Errors only for what retrying cannot fix (not enrolled, the
// database failed).
Result<std::chrono::milliseconds> RunDaemonPass(Device& device, const DaemonOptions& options,
                                                DaemonCounters& counters);

// The daemon loop; each pass runs in a child process with a device from `open_device`.
// Returns OK after SIGTERM, SIGINT or max_sessions. On SIGHUP, `reload` (when given) reads the
// configuration again: its options apply from then on, a shorter poll interval to the wait
// under way too; an error is logged and the running options stay.
using DeviceOpener = std::function<Result<std::unique_ptr<Device>>()>;
using ConfigReloader = std::function<Result<DaemonOptions>()>;
Status RunDaemon(const DeviceOpener& open_device, DaemonOptions options,
                 const ConfigReloader& reload = {});

}  // namespace dm::agent
