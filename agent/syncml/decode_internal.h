// The decoder's two paths, for tests that hold them against each other. Internal to
// agent/syncml; everyone else calls syncml::Decode.
#pragma once

#include <optional>
#include <string_view>

#include "agent/syncml/message.h"
#include "base/status.h"

namespace dm::syncml::internal {

// The reference: tinyxml2's DOM, every error reported.
Result<Message> DecodeWithTinyxml2(std::string_view xml);

// The fast reader (fast_xml.h); nullopt when the document is outside its subset, fails to
// decode, or holds a command in error: Decode then takes the reference path. Whenever it
// answers, the answer equals DecodeWithTinyxml2's.
std::optional<Message> DecodeFast(std::string_view xml);

}  // namespace dm::syncml::internal
