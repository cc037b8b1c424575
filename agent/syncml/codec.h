// SyncML 1.2 XML codec (tinyxml2 underneath, with a faster reader for the common subset of XML
// that builds the same tree: see decode.cpp).
//
// Decode is the trust boundary for bytes from the network:
//  - Whole-message errors (not XML, a DOCTYPE, a root other than <SyncML> in the SYNCML:SYNCML1.2
//    namespace, a missing or malformed SyncHdr, an unknown element in SyncHdr, stray text) fail
//    the decode with an InvalidArgument Status saying what is wrong; the session answers 400.
//  - Problems confined to one command (missing CmdID, unknown element in a command or Item, an
//    unknown command element in SyncBody/Atomic/Sequence, a bad Meta Size, nesting deeper than
//    kMaxNestingDepth) do not fail the decode: the command is kept with Command::error set, so
//    the session answers 400 for it and processes the rest.
//  - DOCTYPE is refused outright. tinyxml2 expands no entities beyond the five predefined ones
//    and character references (so no external entity and no entity bomb can be expanded
//    anyway), but a document with a DTD is not something an MDM server sends; refusing it keeps
//    the parser's odd handling of internal subsets out of the picture.
//  - Depth: tinyxml2 refuses element nesting deeper than 100; on top of that Atomic/Sequence may
//    nest at most kMaxNestingDepth levels (a deeper container is kept with an error and its
//    members are not decoded).
// Element order is not validated on input (MS-MDM 2.2.2: "validation not required"); the
// encoder always writes the DTD order.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "agent/syncml/message.h"
#include "base/status.h"

namespace dm::syncml {

// Atomic/Sequence nesting accepted by Decode (a top-level Atomic is depth 1).
inline constexpr int kMaxNestingDepth = 32;

Result<Message> Decode(std::string_view xml);

// Best effort for error replies: the SyncHdr of a message that Decode refused (for example one
// whose body is truncated), when a complete, well-formed <SyncHdr>...</SyncHdr> can be found.
// Unknown header elements are ignored here. nullopt when nothing usable is there.
std::optional<SyncHdr> SalvageHeader(std::string_view xml);

struct EncodeOptions {
  // Indent two spaces per level, one element per line, like the Windows client's messages.
  // Data content is never re-indented.
  bool pretty = false;
  // Start with <?xml version="1.0" encoding="UTF-8"?>.
  bool xml_declaration = false;
};

// Writes the message in DTD element order. Data is escaped (& < > and CR as character
// references) so that Decode(Encode(m)) yields the same payload byte for byte; a kCData
// payload is written as CDATA when it can be (no "]]>", no CR), a kInnerXml payload is written
// as markup. A NUL byte cannot be carried by XML: payloads with NUL must use Format b64.
std::string Encode(const Message& message, const EncodeOptions& options = {});

// Appends the compact encoding of one command (what Encode writes for it).
void EncodeCommand(const Command& command, std::string* out);

// Size in bytes of the compact encoding of a command / an item, so the session can keep a
// message under the peer's MaxMsgSize.
size_t EncodedSize(const Command& command);
size_t EncodedSize(const Item& item);
// Size of the compact encoding of a message with this header, no commands and Final: the fixed
// cost every message pays.
size_t EnvelopeSize(const SyncHdr& header);

// XML-escapes character data the way the encoder does (exposed for size estimates and tests).
void AppendEscaped(std::string_view text, std::string* out);

}  // namespace dm::syncml
