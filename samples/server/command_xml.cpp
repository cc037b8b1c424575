#include "samples/server/command_xml.h"

#include "agent/syncml/codec.h"

namespace dm::server {

Result<syncml::Command> DecodeOneCommand(std::string_view command_xml) {
  // The codec decodes whole messages; a fixed envelope around the command gives it one.
  std::string wrapped =
      "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2"
      "</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>dev</LocURI></Target>"
      "<Source><LocURI>server</LocURI></Source></SyncHdr><SyncBody>";
  wrapped.append(command_xml);
  wrapped.append("</SyncBody></SyncML>");
  DM_ASSIGN_OR_RETURN(syncml::Message message, syncml::Decode(wrapped));
  if (message.commands.size() != 1) {
    return InvalidArgument("expected exactly one SyncML command, found " +
                           std::to_string(message.commands.size()));
  }
  if (!message.commands[0].error.empty()) {
    return InvalidArgument("malformed SyncML command: " + message.commands[0].error);
  }
  return std::move(message.commands[0]);
}

}  // namespace dm::server
