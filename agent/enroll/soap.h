// SOAP 1.2 + WS-Addressing on tinyxml2, for both sides of MS-MDE2 enrollment.
//
// Building: an Envelope declares the namespaces the caller lists (in that order, with the
// prefixes given), writes the addressing header and serializes compactly (no whitespace
// between tags), which is what strict servers match against.
// Parsing: a Message checks size and depth limits, then finds elements by namespace URI and
// local name, never by prefix (peers choose prefixes freely).
#pragma once

#include <tinyxml2.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/crypto.h"
#include "base/status.h"

namespace dm::soap {

inline constexpr std::string_view kSoapNs = "http://www.w3.org/2003/05/soap-envelope";
inline constexpr std::string_view kAddressingNs = "http://www.w3.org/2005/08/addressing";
inline constexpr std::string_view kAnonymous = "http://www.w3.org/2005/08/addressing/anonymous";
inline constexpr std::string_view kWsseNs =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
inline constexpr std::string_view kWsuNs =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
inline constexpr std::string_view kWstNs = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
inline constexpr std::string_view kAcNs = "http://schemas.xmlsoap.org/ws/2006/12/authorization";
inline constexpr std::string_view kXsiNs = "http://www.w3.org/2001/XMLSchema-instance";
inline constexpr std::string_view kContentType = "application/soap+xml; charset=utf-8";

// prefix -> namespace URI, declared on s:Envelope in this order.
using Namespaces = std::vector<std::pair<std::string, std::string>>;
// The s and a declarations alone (Discover's order: a then s).
Namespaces AddressingNamespaces();
// s, a, u, wsse, wst, ac: what GetPolicies and RequestSecurityToken declare.
Namespaces SecurityNamespaces();

// The addressing header; empty fields are left out. Action and To carry s:mustUnderstand="1".
struct Addressing {
  std::string action;
  std::string relates_to;  // answers
  std::string message_id;  // "urn:uuid:..."
  bool reply_to_anonymous = false;
  std::string to;
};

// "urn:uuid:" + a random version-4 UUID.
Result<std::string> NewMessageId(crypto::Random& random = crypto::OsRandom());

// An envelope under construction. Element names carry their prefix ("wsse:Username"); the
// caller declares the prefix through Namespaces or an xmlns attribute.
class Envelope {
 public:
  Envelope(const Namespaces& namespaces, const Addressing& addressing);

  tinyxml2::XMLElement* header() { return header_; }
  tinyxml2::XMLElement* body() { return body_; }
  // wsse:Security (s:mustUnderstand="1") at the end of the header, created on first use.
  tinyxml2::XMLElement* security();
  // A child element, with text when `text` is not empty.
  tinyxml2::XMLElement* Add(tinyxml2::XMLElement* parent, const char* name,
                            std::string_view text = {});

  std::string Serialize() const;

 private:
  tinyxml2::XMLDocument doc_;
  tinyxml2::XMLElement* header_ = nullptr;
  tinyxml2::XMLElement* body_ = nullptr;
  tinyxml2::XMLElement* security_ = nullptr;
};

// A complete s:Fault envelope. `code` is "s:Sender" or "s:Receiver"; `subcode` a QName with the
// s or a prefix ("s:authentication", "a:invalidsecurity").
std::string BuildFault(std::string_view code, std::string_view subcode, std::string_view reason,
                       const Addressing& addressing = {});

struct Limits {
  size_t max_bytes = 1 << 20;
  int max_depth = 32;
};

struct Fault {
  std::string code;     // local name of s:Code/s:Value ("Sender", "Receiver")
  std::string subcode;  // local name of s:Subcode/s:Value ("authentication"), may be empty
  std::string reason;   // s:Reason/s:Text
};

// A parsed envelope (request or answer). Element pointers live as long as the Message.
class Message {
 public:
  // InvalidArgument for malformed XML or a non-SOAP-1.2 envelope; ResourceExhausted past limits.
  static Result<Message> Parse(std::string_view xml, const Limits& limits = {});

  const tinyxml2::XMLElement* header() const { return header_; }  // may be null
  const tinyxml2::XMLElement* body() const { return body_; }
  // The single element inside s:Body, or null when there is none or more than one.
  const tinyxml2::XMLElement* payload() const;
  // Addressing values read from the header (empty when absent).
  const Addressing& addressing() const { return addressing_; }
  // The s:Fault in the body, if there is one.
  const Fault* fault() const { return fault_ ? &*fault_ : nullptr; }

 private:
  std::unique_ptr<tinyxml2::XMLDocument> doc_;
  const tinyxml2::XMLElement* header_ = nullptr;
  const tinyxml2::XMLElement* body_ = nullptr;
  Addressing addressing_;
  std::optional<Fault> fault_;
};

// A fault as a Status: authentication -> Unauthenticated, authorization -> PermissionDenied,
// messageformat / invalidsecurity -> InvalidArgument, others -> Unavailable. The message names
// code, subcode and reason.
Status FaultToStatus(const Fault& fault);

// ---- namespace-aware navigation ----
// The namespace URI of an element's (or a QName value's) prefix, resolved in e's scope.
std::string NamespaceOf(const tinyxml2::XMLElement* e, std::string_view qname);
std::string_view LocalName(std::string_view qname);
bool Is(const tinyxml2::XMLElement* e, std::string_view ns, std::string_view local);
const tinyxml2::XMLElement* Child(const tinyxml2::XMLElement* e, std::string_view ns,
                                  std::string_view local);
std::vector<const tinyxml2::XMLElement*> Children(const tinyxml2::XMLElement* e,
                                                  std::string_view ns, std::string_view local);
// Follows a path of local names, all in namespace `ns`; null when a step is missing.
const tinyxml2::XMLElement* Path(const tinyxml2::XMLElement* e, std::string_view ns,
                                 std::initializer_list<std::string_view> locals);
// An attribute matched by local name (any prefix or none); null when absent.
const char* Attr(const tinyxml2::XMLElement* e, std::string_view local);
// The element's text with surrounding whitespace trimmed; empty for null.
std::string Text(const tinyxml2::XMLElement* e);

}  // namespace dm::soap
