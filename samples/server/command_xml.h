// Commands travel through the server's database as their SyncML XML (one command element).
#pragma once

#include <string>
#include <string_view>

#include "agent/syncml/message.h"
#include "base/status.h"

namespace dm::server {

// Decodes one command element (<Replace>..., <Atomic>...) with the project's SyncML codec.
// InvalidArgument unless the text holds exactly one command the codec accepted.
Result<syncml::Command> DecodeOneCommand(std::string_view command_xml);

}  // namespace dm::server
