// The SyncML 1.2 (OMA-DM 1.2 / MS-MDM) message model: what agent/syncml/codec.h decodes and
// encodes. Plain data; the codec keeps the document order of commands and the exact payload of
// every Data element.
//
// Identifiers (SessionID, MsgID, CmdID, MsgRef, CmdRef) are opaque strings: Fleet sends UUID
// CmdIDs and Windows accepts them (protocol-omadm.md 1.2), so nothing here parses them as numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dm::syncml {

// Alert codes (MS-MDM 2.2.7.2).
namespace alert {
inline constexpr int kServerInitiated = 1200;
inline constexpr int kClientInitiated = 1201;
inline constexpr int kNextMessage = 1222;
inline constexpr int kSessionAbort = 1223;
inline constexpr int kClientEvent = 1224;
inline constexpr int kNoEndOfData = 1225;
inline constexpr int kGenericAlert = 1226;
}  // namespace alert

inline constexpr char kSyncMLNamespace[] = "SYNCML:SYNCML1.2";
inline constexpr char kMetInfNamespace[] = "syncml:metinf";
// Declared on SyncBody when a Data element carries msft:originalerror (MS-MDM 2.2.4.3).
inline constexpr char kMsftNamespace[] = "http://schemas.microsoft.com/MobileDevice/MDM";

// syncml:metinf fields (Meta in a command, an Item, SyncHdr, Cred or Chal). Absent fields stay
// nullopt so an encoder writes back only what was there.
struct Meta {
  std::optional<std::string> format;      // chr, int, bool, b64, xml, node, ...
  std::optional<std::string> type;        // MIME type or a reverse-domain alert type
  std::optional<std::string> mark;        // generic alert severity (fatal, critical, ...)
  std::optional<uint64_t> size;           // total size of a large object (first chunk)
  std::optional<std::string> next_nonce;  // b64, in Chal
  std::optional<std::string> version;
  std::optional<uint64_t> max_msg_size;
  std::optional<uint64_t> max_obj_size;

  bool empty() const {
    return !format && !type && !mark && !size && !next_nonce && !version && !max_msg_size &&
           !max_obj_size;
  }
  friend bool operator==(const Meta&, const Meta&) = default;
};

// A Target or Source: LocURI and the optional LocName.
struct Location {
  std::string loc_uri;
  std::optional<std::string> loc_name;
  friend bool operator==(const Location&, const Location&) = default;
};

// The payload of a Data element.
struct Data {
  enum class Form {
    kText,      // character data; entities decoded (the encoder escapes it again)
    kCData,     // came in a CDATA section (the encoder keeps CDATA when it can)
    kInnerXml,  // Data held child elements (<Data><disabled/></Data>): `text` is that XML
  };
  // The payload. For kText/kCData the character data exactly as the XML defines it (entities
  // decoded, CDATA unwrapped, line ends normalised by the XML rules); for kInnerXml the child
  // markup, re-serialised compactly (tinyxml2 gives no byte offsets into the source).
  std::string text;
  Form form = Form::kText;

  Data() = default;
  Data(std::string t, Form f = Form::kText) : text(std::move(t)), form(f) {}  // NOLINT
  friend bool operator==(const Data&, const Data&) = default;
};

struct Item {
  std::optional<Location> target;
  std::optional<Location> source;
  std::optional<Meta> meta;
  std::optional<Data> data;  // nullopt: no Data element; empty text: <Data/>
  bool more_data = false;    // <MoreData/>: a non-final chunk of a large object
  // msft:originalerror on Data (an HRESULT such as "0x86000020"), MS-MDM 2.2.5.1.
  std::optional<std::string> original_error;

  friend bool operator==(const Item&, const Item&) = default;
};

struct Cred {
  std::optional<Meta> meta;  // Type syncml:auth-md5 / syncml:auth-basic, Format b64
  std::string data;
  friend bool operator==(const Cred&, const Cred&) = default;
};

struct Chal {
  Meta meta;  // Type, Format, NextNonce
  friend bool operator==(const Chal&, const Chal&) = default;
};

enum class CommandType {
  kAdd,
  kReplace,
  kDelete,
  kGet,
  kExec,
  kAtomic,
  kSequence,
  kAlert,
  kStatus,
  kResults,
  // A SyncML command that OMA-DM/MS-MDM does not support (Copy, Map, Put, Search, Sync).
  kUnsupported,
  // An element that is no SyncML command at all.
  kUnknown,
};

// The element name of a command type ("Replace"); for kUnsupported/kUnknown use Command::name.
const char* CommandName(CommandType type);

// One command of a SyncBody (or of an Atomic/Sequence). One struct for every command type; each
// type uses the fields its DTD content model has (comments say which).
struct Command {
  CommandType type = CommandType::kUnknown;
  // The element name as it appeared ("Copy" for kUnsupported). Set by the decoder and by the
  // constructors below; the encoder writes CommandName(type) for the known types.
  std::string name;
  std::string cmd_id;  // required; empty only on a decoded command whose CmdID was missing
  bool no_resp = false;
  std::optional<Cred> cred;  // in a command: accepted and carried, not acted upon
  std::optional<Meta> meta;  // Add, Replace, Delete, Get, Exec, Atomic, Sequence, Results

  // Alert: the alert code. Status: the status code. Kept as text (decoded verbatim, trimmed).
  std::string data;

  // Status and Results.
  std::string msg_ref;
  std::string cmd_ref;
  std::string cmd;  // the referenced command's name ("SyncHdr", "Get", ...)
  std::vector<std::string> target_refs;
  std::vector<std::string> source_refs;
  std::optional<Chal> chal;  // Status only

  std::vector<Item> items;
  std::vector<Command> children;  // Atomic and Sequence members, in document order

  // Non-empty when the decoder found this command malformed (missing CmdID, unknown element,
  // bad Meta Size, nesting too deep, ...): the session answers 400 for it and goes on with the
  // others. Describes the problem for logs; never contains payload data.
  std::string error;

  friend bool operator==(const Command&, const Command&) = default;
};

struct SyncHdr {
  std::string ver_dtd = "1.2";
  std::string ver_proto = "DM/1.2";
  std::string session_id;
  std::string msg_id;
  Location target;
  Location source;
  std::optional<std::string> resp_uri;
  bool no_resp = false;
  std::optional<Cred> cred;
  std::optional<Meta> meta;  // MaxMsgSize / MaxObjSize

  friend bool operator==(const SyncHdr&, const SyncHdr&) = default;
};

struct Message {
  SyncHdr header;
  std::vector<Command> commands;  // document order
  bool final = false;

  friend bool operator==(const Message&, const Message&) = default;
};

// Builders for the commands an agent sends.
Command MakeAlert(std::string cmd_id, int code, std::vector<Item> items = {});
Command MakeStatus(std::string cmd_id, std::string msg_ref, std::string cmd_ref, std::string cmd,
                   int code);
Command MakeCommand(CommandType type, std::string cmd_id, std::vector<Item> items = {});

}  // namespace dm::syncml
