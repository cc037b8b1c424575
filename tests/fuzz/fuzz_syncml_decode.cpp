// libFuzzer target: the SyncML decoder, the trust boundary for bytes from the network
// (agent/syncml/codec.h). Besides "no crash, no leak, no hang" it checks two properties:
//  - whatever Decode accepts, Encode writes a message Decode accepts again, with the same
//    commands (the agent re-encodes what it decoded when it answers);
//  - SalvageHeader never fails worse than nullopt on any input;
//  - the fast XML reader (fast_xml.h) and the tinyxml2 path agree: whenever the fast one
//    answers, the reference decodes the same bytes to a message that encodes identically.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "agent/syncml/codec.h"
#include "agent/syncml/decode_internal.h"

namespace {

// Commands the decoder flagged as malformed are kept for a 400, not re-encoded faithfully
// (their offending element is gone), so the round trip only covers messages without them.
bool HasErrors(const std::vector<dm::syncml::Command>& commands) {
  for (const auto& c : commands) {
    if (!c.error.empty() || HasErrors(c.children)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  (void)dm::syncml::SalvageHeader(xml);
  if (std::optional<dm::syncml::Message> fast = dm::syncml::internal::DecodeFast(xml)) {
    dm::Result<dm::syncml::Message> reference = dm::syncml::internal::DecodeWithTinyxml2(xml);
    if (!reference.ok()) std::abort();  // the fast reader accepted what tinyxml2 refuses
    if (dm::syncml::Encode(*fast) != dm::syncml::Encode(*reference)) std::abort();
  }
  dm::Result<dm::syncml::Message> decoded = dm::syncml::Decode(xml);
  if (!decoded.ok()) return 0;
  const dm::syncml::Message& m = *decoded;
  for (const auto& c : m.commands) (void)dm::syncml::EncodedSize(c);
  (void)dm::syncml::EnvelopeSize(m.header);
  const std::string again = dm::syncml::Encode(m);
  (void)dm::syncml::Encode(m, {.pretty = true, .xml_declaration = true});
  if (HasErrors(m.commands)) return 0;
  dm::Result<dm::syncml::Message> redecoded = dm::syncml::Decode(again);
  if (!redecoded.ok()) std::abort();  // the encoder wrote something the decoder refuses
  if (redecoded->commands.size() != m.commands.size()) std::abort();
  return 0;
}
