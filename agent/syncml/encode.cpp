// SyncML encoder: writes the DTD element order straight into a string (no DOM), compact by
// default, optionally indented like the Windows client's messages.
#include <cstdio>
#include <string>
#include <string_view>

#include "agent/syncml/codec.h"

namespace dm::syncml {

void AppendEscaped(std::string_view text, std::string* out) {
  size_t run = 0;  // start of the pending unescaped run
  auto flush = [&](size_t i) { out->append(text.data() + run, i - run); };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const char* rep = nullptr;
    char num[8];
    switch (c) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      case '"':
        rep = "&quot;";
        break;
      case '\t':
      case '\n':
        break;
      default:
        // CR would be normalised away by any XML parser, other C0 controls are not XML
        // characters: character references carry them through tinyxml2 unchanged.
        if (c < 0x20) {
          std::snprintf(num, sizeof num, "&#%u;", static_cast<unsigned>(c));
          rep = num;
        }
    }
    if (rep != nullptr) {
      flush(i);
      out->append(rep);
      run = i + 1;
    }
  }
  flush(text.size());
}

namespace {

bool IsXmlWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Writer {
 public:
  Writer(std::string* out, bool pretty) : out_(out), pretty_(pretty) {}

  void Open(std::string_view name, std::string_view attrs = {}) {
    Indent();
    *out_ += '<';
    *out_ += name;
    *out_ += attrs;
    *out_ += '>';
    Newline();
    ++depth_;
  }
  void Close(std::string_view name) {
    --depth_;
    Indent();
    *out_ += "</";
    *out_ += name;
    *out_ += '>';
    Newline();
  }
  void Empty(std::string_view name) {
    Indent();
    *out_ += '<';
    *out_ += name;
    *out_ += "/>";
    Newline();
  }
  // <name attrs>escaped text</name>
  void Leaf(std::string_view name, std::string_view text, std::string_view attrs = {}) {
    Indent();
    *out_ += '<';
    *out_ += name;
    *out_ += attrs;
    *out_ += '>';
    AppendEscaped(text, out_);
    *out_ += "</";
    *out_ += name;
    *out_ += '>';
    Newline();
  }
  void DataElement(const Data& data, std::string_view attrs) {
    Indent();
    *out_ += "<Data";
    *out_ += attrs;
    if (data.text.empty()) {
      *out_ += "/>";
      Newline();
      return;
    }
    *out_ += '>';
    const std::string& t = data.text;
    if (data.form == Data::Form::kInnerXml) {
      *out_ += t;
    } else if (data.form == Data::Form::kCData && t.find("]]>") == std::string::npos &&
               t.find('\r') == std::string::npos) {
      *out_ += "<![CDATA[";
      *out_ += t;
      *out_ += "]]>";
    } else {
      size_t i = 0;
      while (i < t.size() && IsXmlWhitespace(t[i])) ++i;
      if (i == t.size()) {
        // tinyxml2 drops whitespace-only text; a character reference keeps it.
        *out_ += "&#" + std::to_string(static_cast<unsigned char>(t[0])) + ";";
        AppendEscaped(std::string_view(t).substr(1), out_);
      } else {
        AppendEscaped(t, out_);
      }
    }
    *out_ += "</Data>";
    Newline();
  }

 private:
  void Indent() {
    if (pretty_) out_->append(static_cast<size_t>(depth_) * 2, ' ');
  }
  void Newline() {
    if (pretty_) *out_ += '\n';
  }

  std::string* out_;
  bool pretty_;
  int depth_ = 0;
};

constexpr std::string_view kMetInfAttr = " xmlns=\"syncml:metinf\"";

// Type before Format: the order the Windows client writes (generic alert Meta in the capture,
// Chal Meta in MS-MDM 1.3.1); metinf does not constrain it.
void WriteMeta(Writer& w, const Meta& m) {
  w.Open("Meta");
  if (m.type) w.Leaf("Type", *m.type, kMetInfAttr);
  if (m.format) w.Leaf("Format", *m.format, kMetInfAttr);
  if (m.mark) w.Leaf("Mark", *m.mark, kMetInfAttr);
  if (m.size) w.Leaf("Size", std::to_string(*m.size), kMetInfAttr);
  if (m.version) w.Leaf("Version", *m.version, kMetInfAttr);
  if (m.next_nonce) w.Leaf("NextNonce", *m.next_nonce, kMetInfAttr);
  if (m.max_msg_size) w.Leaf("MaxMsgSize", std::to_string(*m.max_msg_size), kMetInfAttr);
  if (m.max_obj_size) w.Leaf("MaxObjSize", std::to_string(*m.max_obj_size), kMetInfAttr);
  w.Close("Meta");
}

void WriteLocation(Writer& w, std::string_view name, const Location& loc) {
  w.Open(name);
  w.Leaf("LocURI", loc.loc_uri);
  if (loc.loc_name) w.Leaf("LocName", *loc.loc_name);
  w.Close(name);
}

void WriteCred(Writer& w, const Cred& cred) {
  w.Open("Cred");
  if (cred.meta) WriteMeta(w, *cred.meta);
  w.Leaf("Data", cred.data);
  w.Close("Cred");
}

void WriteItem(Writer& w, const Item& item) {
  w.Open("Item");
  if (item.target) WriteLocation(w, "Target", *item.target);
  if (item.source) WriteLocation(w, "Source", *item.source);
  if (item.meta) WriteMeta(w, *item.meta);
  if (item.data || item.original_error) {
    std::string attrs;
    if (item.original_error) {
      attrs = " msft:originalerror=\"";
      AppendEscaped(*item.original_error, &attrs);
      attrs += '"';
    }
    w.DataElement(item.data ? *item.data : Data{}, attrs);
  }
  if (item.more_data) w.Empty("MoreData");
  w.Close("Item");
}

std::string_view ElementName(const Command& c) {
  if (c.type == CommandType::kUnsupported || c.type == CommandType::kUnknown) return c.name;
  return CommandName(c.type);
}

void WriteCommand(Writer& w, const Command& c) {
  const std::string_view name = ElementName(c);
  w.Open(name);
  w.Leaf("CmdID", c.cmd_id);
  switch (c.type) {
    case CommandType::kStatus:
      if (!c.msg_ref.empty()) w.Leaf("MsgRef", c.msg_ref);
      w.Leaf("CmdRef", c.cmd_ref);
      w.Leaf("Cmd", c.cmd);
      for (const std::string& r : c.target_refs) w.Leaf("TargetRef", r);
      for (const std::string& r : c.source_refs) w.Leaf("SourceRef", r);
      if (c.cred) WriteCred(w, *c.cred);
      if (c.chal) {
        w.Open("Chal");
        WriteMeta(w, c.chal->meta);
        w.Close("Chal");
      }
      w.Leaf("Data", c.data);
      for (const Item& i : c.items) WriteItem(w, i);
      break;
    case CommandType::kResults:
      // MS-MDM 2.2.7.8 (and the Windows client) put Cmd in Results, unlike the OMA DTD.
      if (!c.msg_ref.empty()) w.Leaf("MsgRef", c.msg_ref);
      w.Leaf("CmdRef", c.cmd_ref);
      if (!c.cmd.empty()) w.Leaf("Cmd", c.cmd);
      if (c.meta) WriteMeta(w, *c.meta);
      for (const std::string& r : c.target_refs) w.Leaf("TargetRef", r);
      for (const std::string& r : c.source_refs) w.Leaf("SourceRef", r);
      for (const Item& i : c.items) WriteItem(w, i);
      break;
    case CommandType::kAlert:
      if (c.no_resp) w.Empty("NoResp");
      if (c.cred) WriteCred(w, *c.cred);
      w.Leaf("Data", c.data);
      for (const Item& i : c.items) WriteItem(w, i);
      break;
    case CommandType::kAtomic:
    case CommandType::kSequence:
      if (c.no_resp) w.Empty("NoResp");
      if (c.meta) WriteMeta(w, *c.meta);
      for (const Command& child : c.children) WriteCommand(w, child);
      break;
    default:
      if (c.no_resp) w.Empty("NoResp");
      if (c.cred) WriteCred(w, *c.cred);
      if (c.meta) WriteMeta(w, *c.meta);
      for (const Item& i : c.items) WriteItem(w, i);
      break;
  }
  w.Close(name);
}

bool UsesMsftNamespace(const std::vector<Command>& commands) {
  for (const Command& c : commands) {
    for (const Item& i : c.items) {
      if (i.original_error) return true;
    }
    if (UsesMsftNamespace(c.children)) return true;
  }
  return false;
}

void WriteHeader(Writer& w, const SyncHdr& h) {
  w.Open("SyncHdr");
  w.Leaf("VerDTD", h.ver_dtd);
  w.Leaf("VerProto", h.ver_proto);
  w.Leaf("SessionID", h.session_id);
  w.Leaf("MsgID", h.msg_id);
  WriteLocation(w, "Target", h.target);
  WriteLocation(w, "Source", h.source);
  if (h.resp_uri) w.Leaf("RespURI", *h.resp_uri);
  if (h.no_resp) w.Empty("NoResp");
  if (h.cred) WriteCred(w, *h.cred);
  if (h.meta) WriteMeta(w, *h.meta);
  w.Close("SyncHdr");
}

}  // namespace

std::string Encode(const Message& message, const EncodeOptions& options) {
  std::string out;
  out.reserve(1024);
  if (options.xml_declaration) {
    out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    if (options.pretty) out += '\n';
  }
  Writer w(&out, options.pretty);
  w.Open("SyncML", std::string(" xmlns=\"") + kSyncMLNamespace + "\"");
  WriteHeader(w, message.header);
  w.Open("SyncBody", UsesMsftNamespace(message.commands)
                         ? std::string(" xmlns:msft=\"") + kMsftNamespace + "\""
                         : std::string());
  for (const Command& c : message.commands) WriteCommand(w, c);
  if (message.final) w.Empty("Final");
  w.Close("SyncBody");
  w.Close("SyncML");
  return out;
}

void EncodeCommand(const Command& command, std::string* out) {
  Writer w(out, /*pretty=*/false);
  WriteCommand(w, command);
}

size_t EncodedSize(const Command& command) {
  std::string s;
  EncodeCommand(command, &s);
  return s.size();
}

size_t EncodedSize(const Item& item) {
  std::string s;
  Writer w(&s, /*pretty=*/false);
  WriteItem(w, item);
  return s.size();
}

size_t EnvelopeSize(const SyncHdr& header) {
  Message m;
  m.header = header;
  m.final = true;
  return Encode(m).size();
}

}  // namespace dm::syncml
