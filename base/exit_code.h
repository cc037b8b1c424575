// One table of exit statuses, the same meaning in dmagent and dmserver (README "Exit status"),
// so scripts and systemd (RestartPreventExitStatus) can tell "fix the command" from "retry
// later" from "nothing to do until enrolled".
#pragma once

#include "base/status.h"

namespace dm {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,       // anything below does not cover: I/O, corruption, a bug
  kExitUsage = 2,         // the command line or one of its values is wrong
  kExitNotFound = 3,      // the user, device, tenant, key or file named does not exist
  kExitExists = 4,        // it exists already
  kExitDenied = 5,        // not authenticated (wrong PIN, password, token) or not allowed
  kExitPrecondition = 6,  // the state does not allow it now (locked, pending reboot, no PIN)
  kExitUnavailable = 7,   // a peer or the network is down or timed out: retrying may help
  kExitNotEnrolled = 8,   // dmagent: no enrollment, so nothing to do (systemd must not restart)
};

// The exit status for a failed command's Status (kExitOk for OK). kExitNotEnrolled is never
// derived from a Status: the command that knows the device is not enrolled says so.
int ExitCodeFor(const Status& status);

}  // namespace dm
