// SyncML decoder: XML DOM -> dm::syncml::Message. See codec.h for the error policy.
//
// Two DOMs, one walk: the walk below is written once against the part of tinyxml2's node API
// it needs and runs either on tinyxml2 (the reference, and everything unusual) or on the fast
// reader of agent/syncml/fast_xml.h, which builds the same tree for a strict subset of XML at
// a fraction of the cost (tinyxml2 decodes every string byte by byte on first access; on a
// 520 KB package that alone was a fifth of Decode). Decode tries the fast reader first and
// falls back to tinyxml2 when the document is outside that subset or anything in it is in
// error, so errors and their messages always come from the reference path.
#include <tinyxml2.h>

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "agent/syncml/codec.h"
#include "agent/syncml/decode_internal.h"
#include "agent/syncml/fast_xml.h"
#include "base/ascii.h"

namespace dm::syncml {
namespace {

using internal::FastNode;
using tinyxml2::XMLElement;
using tinyxml2::XMLNode;

constexpr std::string_view kWhitespace = " \t\r\n";

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kWhitespace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kWhitespace);
  return s.substr(b, e - b + 1);
}

bool IsBlank(std::string_view s) { return Trim(s).empty(); }

// "A:Format" -> "Format". Used for metinf elements, which servers write with or without a
// prefix (<A:Format xmlns:A="syncml:metinf">).
std::string_view LocalName(std::string_view n) {
  const size_t colon = n.find(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

// Element names in error messages are cut short: they come from the network.
std::string Quote(std::string_view name) {
  std::string out = "<";
  out += name.substr(0, 40);
  if (name.size() > 40) out += "...";
  out += ">";
  return out;
}

// The character data of an element that must hold only text (CmdID, LocURI, Format, ...),
// trimmed. Child elements make it an error.
template <typename E>
Result<std::string> TokenText(const E* e) {
  const auto* first = e->FirstChild();
  if (first == nullptr) return std::string();
  // The usual case, one text node: trimmed straight from tinyxml2's buffer, one copy.
  if (first->NextSibling() == nullptr) {
    if (const auto* t = first->ToText()) return std::string(Trim(t->Value()));
  }
  std::string text;
  for (const auto* n = first; n != nullptr; n = n->NextSibling()) {
    if (const auto* t = n->ToText()) {
      text += t->Value();
    } else if (n->ToElement() != nullptr) {
      return InvalidArgument(Quote(e->Name()) + " must hold text, not elements");
    }
  }
  return std::string(Trim(text));
}

// The payload of a Data element, exactly (codec.h).
template <typename E>
Data DataOf(const E* e) {
  const auto* first = e->FirstChild();
  // The usual case, one text node: its text, one copy.
  if (first != nullptr && first->NextSibling() == nullptr) {
    if (const auto* t = first->ToText()) {
      return Data(std::string(t->Value()), t->CData() ? Data::Form::kCData : Data::Form::kText);
    }
  }
  bool has_element = false;
  bool has_cdata = false;
  for (const auto* n = e->FirstChild(); n != nullptr; n = n->NextSibling()) {
    if (n->ToElement() != nullptr) has_element = true;
    if (const auto* t = n->ToText(); t != nullptr && t->CData()) has_cdata = true;
  }
  Data data;
  if constexpr (std::is_same_v<E, XMLElement>) {
    // The fast reader refuses element children of <Data>, so only tinyxml2 gets here.
    if (has_element) {
      tinyxml2::XMLPrinter printer(nullptr, /*compact=*/true);
      for (const XMLNode* n = e->FirstChild(); n != nullptr; n = n->NextSibling()) {
        if (n->ToComment() != nullptr) continue;
        n->Accept(&printer);
      }
      data.text.assign(printer.CStr(), static_cast<size_t>(printer.CStrSize() - 1));
      data.form = Data::Form::kInnerXml;
      return data;
    }
  }
  for (const auto* n = e->FirstChild(); n != nullptr; n = n->NextSibling()) {
    if (const auto* t = n->ToText()) data.text += t->Value();
  }
  data.form = has_cdata ? Data::Form::kCData : Data::Form::kText;
  return data;
}

template <typename E>
Result<uint64_t> ParseSize(const E* e) {
  DM_ASSIGN_OR_RETURN(std::string text, TokenText(e));
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    return InvalidArgument(Quote(LocalName(e->Name())) + " is not a non-negative integer");
  }
  return v;
}

// Rejects non-blank text directly inside a structural element.
template <typename E>
Status NoStrayText(const E* e) {
  for (const auto* n = e->FirstChild(); n != nullptr; n = n->NextSibling()) {
    if (const auto* t = n->ToText(); t != nullptr && !IsBlank(t->Value())) {
      return InvalidArgument("unexpected text inside " + Quote(e->Name()));
    }
  }
  return Status::Ok();
}

Status Duplicate(std::string_view parent, std::string_view child) {
  return InvalidArgument("duplicate " + Quote(child) + " in " + Quote(parent));
}

template <typename T, typename E>
Status SetOnce(std::optional<T>* field, T value, const E* parent, const E* e) {
  if (field->has_value()) return Duplicate(parent->Name(), e->Name());
  *field = std::move(value);
  return Status::Ok();
}

template <typename E>
Status ParseMeta(const E* e, Meta* meta) {
  DM_RETURN_IF_ERROR(NoStrayText(e));
  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = LocalName(c->Name());
    std::optional<std::string>* text_field = nullptr;
    std::optional<uint64_t>* size_field = nullptr;
    if (name == "Format")
      text_field = &meta->format;
    else if (name == "Type")
      text_field = &meta->type;
    else if (name == "Mark")
      text_field = &meta->mark;
    else if (name == "NextNonce")
      text_field = &meta->next_nonce;
    else if (name == "Version")
      text_field = &meta->version;
    else if (name == "Size")
      size_field = &meta->size;
    else if (name == "MaxMsgSize")
      size_field = &meta->max_msg_size;
    else if (name == "MaxObjSize")
      size_field = &meta->max_obj_size;
    else if (name == "Anchor" || name == "EMI" || name == "Mem" || name == "FieldLevel") {
      continue;  // valid metinf that OMA-DM does not use; ignored
    } else {
      return InvalidArgument("unknown element " + Quote(c->Name()) + " in <Meta>");
    }
    if (text_field != nullptr) {
      DM_ASSIGN_OR_RETURN(std::string v, TokenText(c));
      DM_RETURN_IF_ERROR(SetOnce(text_field, std::move(v), e, c));
    } else {
      DM_ASSIGN_OR_RETURN(uint64_t v, ParseSize(c));
      DM_RETURN_IF_ERROR(SetOnce(size_field, v, e, c));
    }
  }
  return Status::Ok();
}

template <typename E>
Result<Location> ParseLocation(const E* e) {
  DM_RETURN_IF_ERROR(NoStrayText(e));
  Location loc;
  bool have_uri = false;
  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = c->Name();
    if (name == "LocURI") {
      if (have_uri) return Duplicate(e->Name(), c->Name());
      DM_ASSIGN_OR_RETURN(loc.loc_uri, TokenText(c));
      have_uri = true;
    } else if (name == "LocName") {
      DM_ASSIGN_OR_RETURN(std::string v, TokenText(c));
      DM_RETURN_IF_ERROR(SetOnce(&loc.loc_name, std::move(v), e, c));
    } else {
      return InvalidArgument("unknown element " + Quote(name) + " in " + Quote(e->Name()));
    }
  }
  if (!have_uri) return InvalidArgument(Quote(e->Name()) + " has no <LocURI>");
  return loc;
}

template <typename E>
Status ParseCred(const E* e, std::optional<Cred>* out, const E* parent) {
  if (out->has_value()) return Duplicate(parent->Name(), e->Name());
  DM_RETURN_IF_ERROR(NoStrayText(e));
  Cred cred;
  bool have_data = false;
  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = c->Name();
    if (name == "Meta") {
      if (cred.meta) return Duplicate(e->Name(), c->Name());
      cred.meta.emplace();
      DM_RETURN_IF_ERROR(ParseMeta(c, &*cred.meta));
    } else if (name == "Data") {
      if (have_data) return Duplicate(e->Name(), c->Name());
      DM_ASSIGN_OR_RETURN(cred.data, TokenText(c));
      have_data = true;
    } else {
      return InvalidArgument("unknown element " + Quote(name) + " in <Cred>");
    }
  }
  if (!have_data) return InvalidArgument("<Cred> has no <Data>");
  *out = std::move(cred);
  return Status::Ok();
}

// Fills `item` in place (it lives in its command's vector already: no moves of the model).
template <typename E>
Status ParseItem(const E* e, Item& item) {
  DM_RETURN_IF_ERROR(NoStrayText(e));
  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = c->Name();
    if (name == "Target" || name == "Source") {
      DM_ASSIGN_OR_RETURN(Location loc, ParseLocation(c));
      DM_RETURN_IF_ERROR(
          SetOnce(name == "Target" ? &item.target : &item.source, std::move(loc), e, c));
    } else if (name == "Meta") {
      if (item.meta) return Duplicate(e->Name(), c->Name());
      item.meta.emplace();
      DM_RETURN_IF_ERROR(ParseMeta(c, &*item.meta));
    } else if (name == "Data") {
      DM_RETURN_IF_ERROR(SetOnce(&item.data, DataOf(c), e, c));
      for (const auto* a = c->FirstAttribute(); a != nullptr; a = a->Next()) {
        if (LocalName(a->Name()) == "originalerror") item.original_error = std::string(a->Value());
      }
    } else if (name == "MoreData") {
      if (item.more_data) return Duplicate(e->Name(), c->Name());
      item.more_data = true;
    } else {
      // SourceParent/TargetParent (DS), Filter, ...: not part of what MS-MDM uses.
      return InvalidArgument("unknown element " + Quote(name) + " in <Item>");
    }
  }
  return Status::Ok();
}

struct CommandSpec {
  const char* name;
  CommandType type;
};
constexpr CommandSpec kCommands[] = {
    {"Add", CommandType::kAdd},
    {"Replace", CommandType::kReplace},
    {"Delete", CommandType::kDelete},
    {"Get", CommandType::kGet},
    {"Exec", CommandType::kExec},
    {"Atomic", CommandType::kAtomic},
    {"Sequence", CommandType::kSequence},
    {"Alert", CommandType::kAlert},
    {"Status", CommandType::kStatus},
    {"Results", CommandType::kResults},
    // SyncML commands outside OMA-DM as MS-MDM uses it (protocol-omadm.md 1.4).
    {"Copy", CommandType::kUnsupported},
    {"Map", CommandType::kUnsupported},
    {"Put", CommandType::kUnsupported},
    {"Search", CommandType::kUnsupported},
    {"Sync", CommandType::kUnsupported},
};

CommandType TypeOf(std::string_view name) {
  for (const CommandSpec& s : kCommands) {
    if (name == s.name) return s.type;
  }
  return CommandType::kUnknown;
}

bool IsContainer(CommandType t) { return t == CommandType::kAtomic || t == CommandType::kSequence; }

template <typename E>
void ParseCommand(const E* e, int depth, Command& cmd);

// Number of child elements, to size a vector before filling it in place.
template <typename E>
size_t ChildElementCount(const E* e) {
  size_t n = 0;
  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) ++n;
  return n;
}

// Fills everything but cmd_id (already read) and error; returns the first problem found.
template <typename E>
Status ParseCommandBody(const E* e, int depth, Command* cmd) {
  DM_RETURN_IF_ERROR(NoStrayText(e));
  const CommandType t = cmd->type;
  const bool is_status = t == CommandType::kStatus;
  const bool is_results = t == CommandType::kResults;
  const bool is_alert = t == CommandType::kAlert;
  bool have_cmd_id = false;
  bool have_data = false, have_msg_ref = false, have_cmd_ref = false, have_cmd = false;

  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = c->Name();
    if (name == "CmdID") {
      if (have_cmd_id) return Duplicate(e->Name(), c->Name());
      have_cmd_id = true;  // value read in ParseCommand
    } else if (name == "NoResp" && !is_status && !is_results) {
      cmd->no_resp = true;
    } else if (name == "Cred" && !is_results && !IsContainer(t)) {
      DM_RETURN_IF_ERROR(ParseCred(c, &cmd->cred, e));
    } else if (name == "Meta" && !is_status && !is_alert) {
      if (cmd->meta) return Duplicate(e->Name(), c->Name());
      cmd->meta.emplace();
      DM_RETURN_IF_ERROR(ParseMeta(c, &*cmd->meta));
    } else if (name == "Item" && !IsContainer(t)) {
      Item& item = cmd->items.emplace_back();
      if (Status st = ParseItem(c, item); !st.ok()) {
        cmd->items.pop_back();  // a command in error keeps only its complete items
        return st;
      }
    } else if (name == "Data" && (is_status || is_alert)) {
      if (have_data) return Duplicate(e->Name(), c->Name());
      DM_ASSIGN_OR_RETURN(cmd->data, TokenText(c));
      have_data = true;
    } else if ((is_status || is_results) &&
               (name == "MsgRef" || name == "CmdRef" || name == "Cmd")) {
      bool* seen = name == "MsgRef" ? &have_msg_ref : name == "CmdRef" ? &have_cmd_ref : &have_cmd;
      std::string* field = name == "MsgRef"   ? &cmd->msg_ref
                           : name == "CmdRef" ? &cmd->cmd_ref
                                              : &cmd->cmd;
      if (*seen) return Duplicate(e->Name(), c->Name());
      DM_ASSIGN_OR_RETURN(*field, TokenText(c));
      *seen = true;
    } else if ((is_status || is_results) && (name == "TargetRef" || name == "SourceRef")) {
      DM_ASSIGN_OR_RETURN(std::string ref, TokenText(c));
      (name == "TargetRef" ? cmd->target_refs : cmd->source_refs).push_back(std::move(ref));
    } else if (is_status && name == "Chal") {
      if (cmd->chal) return Duplicate(e->Name(), c->Name());
      DM_RETURN_IF_ERROR(NoStrayText(c));
      Chal chal;
      bool have_meta = false;
      for (const auto* m = c->FirstChildElement(); m != nullptr; m = m->NextSiblingElement()) {
        if (std::string_view(m->Name()) != "Meta" || have_meta) {
          return InvalidArgument("<Chal> must hold exactly one <Meta>");
        }
        have_meta = true;
        DM_RETURN_IF_ERROR(ParseMeta(m, &chal.meta));
      }
      cmd->chal = std::move(chal);
    } else if (name == "Correlator" && (is_alert || t == CommandType::kExec)) {
      // MS-MDM 2.2.7.2: Correlator is not supported; ignoring it changes nothing we report.
    } else if (IsContainer(t)) {
      ParseCommand(c, depth + 1, cmd->children.emplace_back());
    } else {
      return InvalidArgument("unknown element " + Quote(name) + " in " + Quote(e->Name()));
    }
  }

  if (is_status) {
    if (!have_cmd_ref) return InvalidArgument("<Status> has no <CmdRef>");
    if (!have_cmd) return InvalidArgument("<Status> has no <Cmd>");
    if (!have_data) return InvalidArgument("<Status> has no <Data>");
  } else if (is_results) {
    if (!have_cmd_ref) return InvalidArgument("<Results> has no <CmdRef>");
  } else if (is_alert) {
    if (!have_data) return InvalidArgument("<Alert> has no <Data> (alert code)");
  } else if (IsContainer(t)) {
    if (cmd->children.empty()) return InvalidArgument(Quote(e->Name()) + " holds no command");
  } else if (cmd->items.empty()) {
    return InvalidArgument(Quote(e->Name()) + " has no <Item>");
  }
  return Status::Ok();
}

template <typename E>
void ParseCommand(const E* e, int depth, Command& cmd) {
  cmd.name = e->Name();
  cmd.type = TypeOf(cmd.name);

  // The CmdID first, so even a malformed command can be answered with a Status naming it.
  const auto* id = e->FirstChildElement("CmdID");
  if (id == nullptr) {
    cmd.error = "missing <CmdID>";
  } else if (Result<std::string> v = TokenText(id); !v.ok()) {
    cmd.error = v.error().message();
  } else {
    cmd.cmd_id = std::move(v).value();
    if (cmd.cmd_id.empty())
      cmd.error = "empty <CmdID>";
    else if (cmd.cmd_id == "0")
      cmd.error = "<CmdID> 0 is reserved (MS-MDM 2.2.3.2)";
  }

  if (cmd.type == CommandType::kUnknown) {
    cmd.error = "unknown command " + Quote(cmd.name);
    return;
  }
  if (cmd.type == CommandType::kUnsupported) return;  // nothing of it is used
  if (IsContainer(cmd.type) && depth > kMaxNestingDepth) {
    cmd.error = "Atomic/Sequence nested deeper than " + std::to_string(kMaxNestingDepth);
    return;
  }
  Status st = ParseCommandBody(e, depth, &cmd);
  if (!st.ok() && cmd.error.empty()) cmd.error = st.message();
  return;
}

template <typename E>
Result<SyncHdr> ParseHeader(const E* e, bool lenient) {
  if (!lenient) DM_RETURN_IF_ERROR(NoStrayText(e));
  SyncHdr hdr;
  bool seen[6] = {};
  constexpr const char* kRequired[6] = {"VerDTD", "VerProto", "SessionID",
                                        "MsgID",  "Target",   "Source"};
  for (const auto* c = e->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = c->Name();
    int req = -1;
    for (int i = 0; i < 6; ++i) {
      if (name == kRequired[i]) req = i;
    }
    if (req >= 0) {
      if (seen[req]) return Duplicate(e->Name(), c->Name());
      seen[req] = true;
    }
    if (name == "VerDTD") {
      DM_ASSIGN_OR_RETURN(hdr.ver_dtd, TokenText(c));
    } else if (name == "VerProto") {
      DM_ASSIGN_OR_RETURN(hdr.ver_proto, TokenText(c));
    } else if (name == "SessionID") {
      DM_ASSIGN_OR_RETURN(hdr.session_id, TokenText(c));
    } else if (name == "MsgID") {
      DM_ASSIGN_OR_RETURN(hdr.msg_id, TokenText(c));
    } else if (name == "Target") {
      DM_ASSIGN_OR_RETURN(hdr.target, ParseLocation(c));
    } else if (name == "Source") {
      DM_ASSIGN_OR_RETURN(hdr.source, ParseLocation(c));
    } else if (name == "RespURI") {
      DM_ASSIGN_OR_RETURN(std::string v, TokenText(c));
      DM_RETURN_IF_ERROR(SetOnce(&hdr.resp_uri, std::move(v), e, c));
    } else if (name == "NoResp") {
      hdr.no_resp = true;
    } else if (name == "Cred") {
      Status st = ParseCred(c, &hdr.cred, e);
      if (!st.ok() && !lenient) return st;
    } else if (name == "Meta") {
      if (hdr.meta && !lenient) return Duplicate(e->Name(), c->Name());
      hdr.meta.emplace();
      Status st = ParseMeta(c, &*hdr.meta);
      if (!st.ok()) {
        if (!lenient) return st.WithContext("SyncHdr");
        hdr.meta.reset();
      }
    } else if (!lenient) {
      return InvalidArgument("unknown element " + Quote(name) + " in <SyncHdr>");
    }
  }
  for (int i = 0; i < 6; ++i) {
    if (!seen[i]) return InvalidArgument(std::string("<SyncHdr> has no <") + kRequired[i] + ">");
  }
  if (hdr.msg_id.empty()) return InvalidArgument("<SyncHdr> has an empty <MsgID>");
  return hdr;
}

// Anything tinyxml2 parses as "unknown" (<!DOCTYPE, <!ENTITY, <!ELEMENT ...) anywhere.
bool HasMarkupDeclaration(const XMLNode* node) {
  for (const XMLNode* n = node->FirstChild(); n != nullptr; n = n->NextSibling()) {
    if (n->ToUnknown() != nullptr) return true;
    if (n->ToElement() != nullptr && HasMarkupDeclaration(n)) return true;
  }
  return false;
}

// False only when the bytes cannot hold a markup declaration: tinyxml2 makes an "unknown" node
// only of "<!" followed by something other than "--" (comment) or "[CDATA[". '!' is rare in
// SyncML, so this scan is much cheaper than walking the DOM, which remains the judge whenever
// the bytes hold such a "<!" (even inside CDATA or a comment, where it is harmless).
bool MayHoldMarkupDeclaration(std::string_view xml) {
  for (size_t i = xml.find('!'); i != std::string_view::npos; i = xml.find('!', i + 1)) {
    if (i == 0 || xml[i - 1] != '<') continue;
    const std::string_view rest = xml.substr(i + 1);
    if (!rest.starts_with("--") && !rest.starts_with("[CDATA[")) return true;
  }
  return false;
}

Status ParseDocument(std::string_view xml, tinyxml2::XMLDocument* doc) {
  if (doc->Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    const char* detail = doc->ErrorName();
    return InvalidArgument(std::string("malformed XML: ") + (detail ? detail : "parse error") +
                           " at line " + std::to_string(doc->ErrorLineNum()));
  }
  if (MayHoldMarkupDeclaration(xml) && HasMarkupDeclaration(doc)) {
    return InvalidArgument(
        "a DOCTYPE or other markup declaration is not allowed in a SyncML message");
  }
  return Status::Ok();
}

std::optional<std::string_view> AttributeOf(const XMLElement* e, const char* name) {
  const char* v = e->Attribute(name);
  return v == nullptr ? std::nullopt : std::optional<std::string_view>(v);
}
std::optional<std::string_view> AttributeOf(const FastNode* e, const char* name) {
  const std::string_view* v = e->Attribute(name);
  return v == nullptr ? std::nullopt : std::optional<std::string_view>(*v);
}

// Everything below the document: the root element (and any sibling of it) onwards.
template <typename E>
Result<Message> DecodeRoot(const E* root) {
  if (root == nullptr) return InvalidArgument("no root element");
  if (root->NextSiblingElement() != nullptr) return InvalidArgument("more than one root element");
  if (std::string_view(root->Name()) != "SyncML") {
    return InvalidArgument("root element is " + Quote(root->Name()) + ", expected <SyncML>");
  }
  const std::optional<std::string_view> ns = AttributeOf(root, "xmlns");
  if (!ns || !AsciiEqualsIgnoreCase(Trim(*ns), kSyncMLNamespace)) {
    return InvalidArgument(std::string("<SyncML> namespace is \"") +
                           std::string(ns ? ns->substr(0, 60) : "") + "\", expected \"" +
                           kSyncMLNamespace + "\"");
  }
  DM_RETURN_IF_ERROR(NoStrayText(root));

  const E* hdr_el = nullptr;
  const E* body_el = nullptr;
  for (const E* c = root->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    const std::string_view name = c->Name();
    const E** slot = name == "SyncHdr" ? &hdr_el : name == "SyncBody" ? &body_el : nullptr;
    if (slot == nullptr) return InvalidArgument("unknown element " + Quote(name) + " in <SyncML>");
    if (*slot != nullptr) return Duplicate(root->Name(), c->Name());
    *slot = c;
  }
  if (hdr_el == nullptr) return InvalidArgument("missing <SyncHdr>");
  if (body_el == nullptr) return InvalidArgument("missing <SyncBody>");

  Message msg;
  DM_ASSIGN_OR_RETURN(msg.header, ParseHeader(hdr_el, /*lenient=*/false));

  DM_RETURN_IF_ERROR(NoStrayText(body_el));
  msg.commands.reserve(ChildElementCount(body_el));
  for (const E* c = body_el->FirstChildElement(); c != nullptr; c = c->NextSiblingElement()) {
    if (std::string_view(c->Name()) == "Final") {
      msg.final = true;
      continue;
    }
    ParseCommand(c, /*depth=*/1, msg.commands.emplace_back());
  }
  return msg;
}

bool HasCommandErrors(const std::vector<Command>& commands) {
  for (const Command& c : commands) {
    if (!c.error.empty() || HasCommandErrors(c.children)) return true;
  }
  return false;
}

}  // namespace

namespace internal {

Result<Message> DecodeWithTinyxml2(std::string_view xml) {
  tinyxml2::XMLDocument doc(/*processEntities=*/true, tinyxml2::PRESERVE_WHITESPACE);
  DM_RETURN_IF_ERROR(ParseDocument(xml, &doc));
  return DecodeRoot(doc.RootElement());
}

std::optional<Message> DecodeFast(std::string_view xml) {
  FastDoc doc;
  if (!doc.Parse(xml)) return std::nullopt;
  Result<Message> m = DecodeRoot(doc.RootElement());
  if (!m.ok() || HasCommandErrors(m->commands)) return std::nullopt;
  return std::move(m).value();
}

}  // namespace internal

Result<Message> Decode(std::string_view xml) {
  if (std::optional<Message> m = internal::DecodeFast(xml)) return std::move(*m);
  return internal::DecodeWithTinyxml2(xml);
}

std::optional<SyncHdr> SalvageHeader(std::string_view xml) {
  const size_t begin = xml.find("<SyncHdr");
  if (begin == std::string_view::npos) return std::nullopt;
  constexpr std::string_view kEnd = "</SyncHdr>";
  const size_t end = xml.find(kEnd, begin);
  if (end == std::string_view::npos) return std::nullopt;
  const std::string_view piece = xml.substr(begin, end + kEnd.size() - begin);
  tinyxml2::XMLDocument doc(/*processEntities=*/true, tinyxml2::PRESERVE_WHITESPACE);
  if (!ParseDocument(piece, &doc).ok()) return std::nullopt;
  const XMLElement* root = doc.RootElement();
  if (root == nullptr || std::string_view(root->Name()) != "SyncHdr") return std::nullopt;
  Result<SyncHdr> hdr = ParseHeader(root, /*lenient=*/true);
  if (!hdr.ok()) return std::nullopt;
  return std::move(hdr).value();
}

}  // namespace dm::syncml
