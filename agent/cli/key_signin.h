// `dmagent key sign-in`: a WebAuthn-style sign-in with a user's software security key —
// registers a credential for the relying party when there is none, then signs an assertion,
// asking for (or setting up) the key's PIN as the requested user verification demands.
#pragma once

#include <string>

#include "agent/runtime/device.h"
#include "base/status.h"

namespace dm::agent::cli {

Status KeySignIn(Device& device, const std::string& user, const std::string& key_id,
                 const std::string& rp, const std::string& uv, const std::string& out_dir);

}  // namespace dm::agent::cli
