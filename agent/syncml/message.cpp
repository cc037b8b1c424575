#include "agent/syncml/message.h"

namespace dm::syncml {

const char* CommandName(CommandType type) {
  switch (type) {
    case CommandType::kAdd:
      return "Add";
    case CommandType::kReplace:
      return "Replace";
    case CommandType::kDelete:
      return "Delete";
    case CommandType::kGet:
      return "Get";
    case CommandType::kExec:
      return "Exec";
    case CommandType::kAtomic:
      return "Atomic";
    case CommandType::kSequence:
      return "Sequence";
    case CommandType::kAlert:
      return "Alert";
    case CommandType::kStatus:
      return "Status";
    case CommandType::kResults:
      return "Results";
    case CommandType::kUnsupported:
      return "Unsupported";
    case CommandType::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

Command MakeCommand(CommandType type, std::string cmd_id, std::vector<Item> items) {
  Command c;
  c.type = type;
  c.name = CommandName(type);
  c.cmd_id = std::move(cmd_id);
  c.items = std::move(items);
  return c;
}

Command MakeAlert(std::string cmd_id, int code, std::vector<Item> items) {
  Command c = MakeCommand(CommandType::kAlert, std::move(cmd_id), std::move(items));
  c.data = std::to_string(code);
  return c;
}

Command MakeStatus(std::string cmd_id, std::string msg_ref, std::string cmd_ref, std::string cmd,
                   int code) {
  Command c = MakeCommand(CommandType::kStatus, std::move(cmd_id));
  c.msg_ref = std::move(msg_ref);
  c.cmd_ref = std::move(cmd_ref);
  c.cmd = std::move(cmd);
  c.data = std::to_string(code);
  return c;
}

}  // namespace dm::syncml
