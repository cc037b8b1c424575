#include "agent/enroll/soap.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace dm::soap {
namespace {

using tinyxml2::XMLElement;

std::string_view PrefixOf(std::string_view qname) {
  const size_t colon = qname.find(':');
  return colon == std::string_view::npos ? std::string_view{} : qname.substr(0, colon);
}

int Depth(const XMLElement* e) {
  int deepest = 0;
  for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
    deepest = std::max(deepest, Depth(c));
  }
  return deepest + 1;
}

}  // namespace

Namespaces AddressingNamespaces() {
  return {{"a", std::string(kAddressingNs)}, {"s", std::string(kSoapNs)}};
}

Namespaces SecurityNamespaces() {
  return {{"s", std::string(kSoapNs)},  {"a", std::string(kAddressingNs)},
          {"u", std::string(kWsuNs)},   {"wsse", std::string(kWsseNs)},
          {"wst", std::string(kWstNs)}, {"ac", std::string(kAcNs)}};
}

Result<std::string> NewMessageId(crypto::Random& random) {
  std::array<uint8_t, 16> b{};
  DM_RETURN_IF_ERROR(random.Fill(b));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  const std::string hex = crypto::HexEncode(b);
  return "urn:uuid:" + hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

Envelope::Envelope(const Namespaces& namespaces, const Addressing& addressing) {
  XMLElement* env = doc_.NewElement("s:Envelope");
  doc_.InsertEndChild(env);
  for (const auto& [prefix, uri] : namespaces) {
    env->SetAttribute(("xmlns:" + prefix).c_str(), uri.c_str());
  }
  header_ = Add(env, "s:Header");
  if (!addressing.action.empty()) {
    Add(header_, "a:Action", addressing.action)->SetAttribute("s:mustUnderstand", "1");
  }
  if (!addressing.relates_to.empty()) Add(header_, "a:RelatesTo", addressing.relates_to);
  if (!addressing.message_id.empty()) Add(header_, "a:MessageID", addressing.message_id);
  if (addressing.reply_to_anonymous) Add(Add(header_, "a:ReplyTo"), "a:Address", kAnonymous);
  if (!addressing.to.empty()) {
    Add(header_, "a:To", addressing.to)->SetAttribute("s:mustUnderstand", "1");
  }
  body_ = Add(env, "s:Body");
}

XMLElement* Envelope::security() {
  if (!security_) {
    security_ = Add(header_, "wsse:Security");
    security_->SetAttribute("s:mustUnderstand", "1");
  }
  return security_;
}

XMLElement* Envelope::Add(XMLElement* parent, const char* name, std::string_view text) {
  XMLElement* e = doc_.NewElement(name);
  parent->InsertEndChild(e);
  if (!text.empty()) e->SetText(std::string(text).c_str());
  return e;
}

std::string Envelope::Serialize() const {
  tinyxml2::XMLPrinter printer(nullptr, /*compact=*/true);
  doc_.Print(&printer);
  return std::string(printer.CStr(), printer.CStrSize() > 0 ? printer.CStrSize() - 1 : 0);
}

std::string BuildFault(std::string_view code, std::string_view subcode, std::string_view reason,
                       const Addressing& addressing) {
  Envelope env({{"s", std::string(kSoapNs)}, {"a", std::string(kAddressingNs)}}, addressing);
  XMLElement* fault = env.Add(env.body(), "s:Fault");
  XMLElement* c = env.Add(fault, "s:Code");
  env.Add(c, "s:Value", code);
  if (!subcode.empty()) env.Add(env.Add(c, "s:Subcode"), "s:Value", subcode);
  env.Add(env.Add(fault, "s:Reason"), "s:Text", reason)->SetAttribute("xml:lang", "en-US");
  return env.Serialize();
}

Result<Message> Message::Parse(std::string_view xml, const Limits& limits) {
  if (xml.size() > limits.max_bytes) {
    return ResourceExhausted("SOAP message of " + std::to_string(xml.size()) +
                             " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  }
  Message m;
  m.doc_ = std::make_unique<tinyxml2::XMLDocument>(/*processEntities=*/true,
                                                   tinyxml2::PRESERVE_WHITESPACE);
  if (m.doc_->Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    return InvalidArgument(std::string("malformed SOAP message: ") + m.doc_->ErrorStr());
  }
  const XMLElement* env = m.doc_->RootElement();
  if (!Is(env, kSoapNs, "Envelope")) {
    return InvalidArgument("not a SOAP 1.2 envelope (root element " +
                           std::string(env ? env->Name() : "none") + ")");
  }
  if (Depth(env) > limits.max_depth) {
    return ResourceExhausted("SOAP message nested deeper than " + std::to_string(limits.max_depth));
  }
  m.header_ = Child(env, kSoapNs, "Header");
  m.body_ = Child(env, kSoapNs, "Body");
  if (!m.body_) return InvalidArgument("SOAP envelope without s:Body");
  if (m.header_) {
    m.addressing_.action = Text(Child(m.header_, kAddressingNs, "Action"));
    m.addressing_.relates_to = Text(Child(m.header_, kAddressingNs, "RelatesTo"));
    m.addressing_.message_id = Text(Child(m.header_, kAddressingNs, "MessageID"));
    m.addressing_.to = Text(Child(m.header_, kAddressingNs, "To"));
    const XMLElement* reply = Child(m.header_, kAddressingNs, "ReplyTo");
    m.addressing_.reply_to_anonymous =
        reply && Text(Child(reply, kAddressingNs, "Address")) == kAnonymous;
  }
  if (const XMLElement* f = Child(m.body_, kSoapNs, "Fault")) {
    Fault fault;
    const XMLElement* code = Child(f, kSoapNs, "Code");
    const XMLElement* value = Child(code, kSoapNs, "Value");
    fault.code = std::string(LocalName(Text(value)));
    const XMLElement* sub = Path(code, kSoapNs, {"Subcode", "Value"});
    fault.subcode = std::string(LocalName(Text(sub)));
    fault.reason = Text(Path(f, kSoapNs, {"Reason", "Text"}));
    m.fault_ = std::move(fault);
  }
  return m;
}

const XMLElement* Message::payload() const {
  const XMLElement* first = body_ ? body_->FirstChildElement() : nullptr;
  if (!first || first->NextSiblingElement()) return nullptr;
  return first;
}

Status FaultToStatus(const Fault& fault) {
  std::string msg = "SOAP fault " + (fault.code.empty() ? std::string("?") : fault.code);
  if (!fault.subcode.empty()) msg += "/" + fault.subcode;
  msg += ": " + (fault.reason.empty() ? std::string("(no reason given)") : fault.reason);
  if (fault.subcode == "authentication") return Unauthenticated(msg);
  if (fault.subcode == "authorization") return PermissionDenied(msg);
  if (fault.subcode == "messageformat" || fault.subcode == "invalidsecurity") {
    return InvalidArgument(msg);
  }
  return Unavailable(msg);
}

std::string NamespaceOf(const XMLElement* e, std::string_view qname) {
  const std::string_view prefix = PrefixOf(qname);
  if (prefix == "xml") return "http://www.w3.org/XML/1998/namespace";
  const std::string attr = prefix.empty() ? "xmlns" : "xmlns:" + std::string(prefix);
  for (; e; e = e->Parent() ? e->Parent()->ToElement() : nullptr) {
    if (const char* v = e->Attribute(attr.c_str())) return v;
  }
  return {};
}

std::string_view LocalName(std::string_view qname) {
  const size_t colon = qname.find(':');
  return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

bool Is(const XMLElement* e, std::string_view ns, std::string_view local) {
  return e && LocalName(e->Name()) == local && NamespaceOf(e, e->Name()) == ns;
}

const XMLElement* Child(const XMLElement* e, std::string_view ns, std::string_view local) {
  if (!e) return nullptr;
  for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
    if (Is(c, ns, local)) return c;
  }
  return nullptr;
}

std::vector<const XMLElement*> Children(const XMLElement* e, std::string_view ns,
                                        std::string_view local) {
  std::vector<const XMLElement*> out;
  if (!e) return out;
  for (const XMLElement* c = e->FirstChildElement(); c; c = c->NextSiblingElement()) {
    if (Is(c, ns, local)) out.push_back(c);
  }
  return out;
}

const XMLElement* Path(const XMLElement* e, std::string_view ns,
                       std::initializer_list<std::string_view> locals) {
  for (std::string_view local : locals) e = Child(e, ns, local);
  return e;
}

const char* Attr(const XMLElement* e, std::string_view local) {
  if (!e) return nullptr;
  for (const tinyxml2::XMLAttribute* a = e->FirstAttribute(); a; a = a->Next()) {
    const std::string_view name = a->Name();
    if (PrefixOf(name) == "xmlns" || name == "xmlns") continue;
    if (LocalName(name) == local) return a->Value();
  }
  return nullptr;
}

std::string Text(const XMLElement* e) {
  if (!e) return {};
  std::string out;
  for (const tinyxml2::XMLNode* n = e->FirstChild(); n; n = n->NextSibling()) {
    if (const tinyxml2::XMLText* t = n->ToText()) out += t->Value();
  }
  const char* ws = " \t\r\n";
  const size_t b = out.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return out.substr(b, out.find_last_not_of(ws) - b + 1);
}

}  // namespace dm::soap
