// The per-device command queue (internal to dmserver).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "agent/syncml/message.h"
#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

struct QueuedCommandSpec {
  std::string dev_id;
  std::string upn;                    // "" = device-targeted
  std::optional<int64_t> profile_id;  // nullopt for commands the server adds on its own
  int setting_idx = 0;
  std::string loc_uri;   // for reports
  std::string replaces;  // the command this one retries (418 on Add -> Replace)
};

// Gives the command (and any nested command) fresh UUID CmdIDs, stores it queued and returns
// its UUID. Caller holds the lock.
Result<std::string> EnqueueCommand(Store& store, const QueuedCommandSpec& spec,
                                   syncml::Command command);

}  // namespace dm::server
