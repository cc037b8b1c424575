#include "agent/syncml/fast_xml.h"

#include <cstring>

namespace dm::syncml::internal {
namespace {

// The whitespace tinyxml2 skips between nodes, minus \v and \f (refused up front) and \r
// (refused in text; between nodes it is skipped like the others).
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'; }

bool AllSpace(std::string_view s) {
  for (char c : s) {
    if (!IsSpace(c)) return false;
  }
  return true;
}

// Reads an ASCII name at `p`; returns its end, or `p` when there is none (or it continues with
// a byte outside ASCII, which tinyxml2 would take as part of the name).
size_t ScanName(std::string_view xml, size_t p) {
  if (p >= xml.size() || !IsNameStart(xml[p])) return p;
  size_t e = p + 1;
  while (e < xml.size() && IsNameChar(xml[e])) ++e;
  if (e < xml.size() && static_cast<unsigned char>(xml[e]) >= 0x80) return p;
  return e;
}

size_t SkipSpace(std::string_view xml, size_t p) {
  while (p < xml.size() && IsSpace(xml[p])) ++p;
  return p;
}

// The five predefined entities, as tinyxml2 decodes them; false for anything else (numeric
// references and unknown names are left to tinyxml2).
bool DecodeEntities(std::string_view raw, std::string* out) {
  out->reserve(raw.size());
  size_t i = 0;
  while (i < raw.size()) {
    const size_t amp = raw.find('&', i);
    if (amp == std::string_view::npos) {
      out->append(raw.substr(i));
      break;
    }
    out->append(raw.substr(i, amp - i));
    const std::string_view rest = raw.substr(amp + 1);
    struct Entity {
      std::string_view pattern;
      char value;
    };
    static constexpr Entity kEntities[] = {
        {"quot;", '"'}, {"amp;", '&'}, {"apos;", '\''}, {"lt;", '<'}, {"gt;", '>'}};
    bool found = false;
    for (const Entity& e : kEntities) {
      if (rest.starts_with(e.pattern)) {
        *out += e.value;
        i = amp + 1 + e.pattern.size();
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

const FastNode* FastNode::FirstChild() const {
  return first_child_ == kNone ? nullptr : &doc_->nodes_[first_child_];
}

const FastNode* FastNode::NextSibling() const {
  return next_sibling_ == kNone ? nullptr : &doc_->nodes_[next_sibling_];
}

const FastNode* FastNode::FirstChildElement() const {
  const FastNode* n = FirstChild();
  while (n != nullptr && !n->element_) n = n->NextSibling();
  return n;
}

const FastNode* FastNode::FirstChildElement(std::string_view name) const {
  for (const FastNode* n = FirstChildElement(); n != nullptr; n = n->NextSiblingElement()) {
    if (n->value_ == name) return n;
  }
  return nullptr;
}

const FastNode* FastNode::NextSiblingElement() const {
  const FastNode* n = NextSibling();
  while (n != nullptr && !n->element_) n = n->NextSibling();
  return n;
}

const FastAttr* FastNode::FirstAttribute() const {
  return attr_count_ == 0 ? nullptr : &doc_->attrs_[first_attr_];
}

const std::string_view* FastNode::Attribute(std::string_view name) const {
  for (const FastAttr* a = FirstAttribute(); a != nullptr; a = a->Next()) {
    if (a->name_ == name) return &a->value_;
  }
  return nullptr;
}

uint32_t FastDoc::NewNode(uint32_t parent) {
  const uint32_t index = static_cast<uint32_t>(nodes_.size());
  FastNode& n = nodes_.emplace_back();
  n.doc_ = this;
  if (parent != FastNode::kNone) {
    FastNode& p = nodes_[parent];
    if (p.last_child_ == FastNode::kNone) {
      p.first_child_ = index;
    } else {
      nodes_[p.last_child_].next_sibling_ = index;
    }
    p.last_child_ = index;
  }
  return index;
}

bool FastDoc::AddText(std::string_view raw, bool cdata, uint32_t parent) {
  if (raw.find('\r') != std::string_view::npos) return false;  // line-end normalisation
  std::string_view value = raw;
  if (!cdata && raw.find('&') != std::string_view::npos) {
    auto decoded = std::make_unique<std::string>();
    if (!DecodeEntities(raw, decoded.get())) return false;
    value = *decoded;
    decoded_.push_back(std::move(decoded));
  }
  const uint32_t index = NewNode(parent);
  nodes_[index].value_ = value;
  nodes_[index].cdata_ = cdata;
  return true;
}

bool FastDoc::Parse(std::string_view xml) {
  nodes_.clear();
  attrs_.clear();
  decoded_.clear();
  // Bytes where tinyxml2 would stop (NUL) or count whitespace differently (\v, \f).
  for (char c : {'\0', '\v', '\f'}) {
    if (std::memchr(xml.data(), c, xml.size()) != nullptr) return false;
  }
  // A node per '<' at most, plus text: a cheap upper bound keeps the vector from regrowing.
  nodes_.reserve(xml.size() / 24 + 16);

  size_t p = SkipSpace(xml, 0);
  // Declarations (<?xml ...?>), only before the root, as tinyxml2 allows them.
  while (xml.substr(p).starts_with("<?")) {
    const size_t end = xml.find("?>", p + 2);
    if (end == std::string_view::npos) return false;
    p = SkipSpace(xml, end + 2);
  }

  std::vector<uint32_t> open;  // element indices from the root down
  open.reserve(kMaxDepth);
  bool root_done = false;
  while (p < xml.size()) {
    if (xml[p] != '<') {
      const size_t lt = xml.find('<', p);
      if (lt == std::string_view::npos) {
        // Text after the root: only whitespace, which tinyxml2 skips too.
        if (!root_done || !AllSpace(xml.substr(p))) return false;
        break;
      }
      const std::string_view raw = xml.substr(p, lt - p);
      p = lt;
      if (AllSpace(raw)) continue;  // tinyxml2 makes no node of whitespace before a '<'
      if (open.empty() || !AddText(raw, /*cdata=*/false, open.back())) return false;
      continue;
    }
    if (root_done) return false;  // a second root, a comment, ... after the root
    const std::string_view at = xml.substr(p);
    if (at.starts_with("</")) {
      const size_t name_end = ScanName(xml, p + 2);
      if (name_end == p + 2 || open.empty()) return false;
      if (xml.substr(p + 2, name_end - p - 2) != nodes_[open.back()].value_) return false;
      if (name_end >= xml.size() || xml[name_end] != '>') return false;
      open.pop_back();
      p = name_end + 1;
      if (open.empty()) root_done = true;
      continue;
    }
    if (at.starts_with("<![CDATA[")) {
      const size_t end = xml.find("]]>", p + 9);
      if (end == std::string_view::npos || open.empty()) return false;
      if (!AddText(xml.substr(p + 9, end - p - 9), /*cdata=*/true, open.back())) return false;
      p = end + 3;
      continue;
    }
    // An element; anything else after '<' (comments, <!..., <?...) is left to tinyxml2.
    const size_t name_end = ScanName(xml, p + 1);
    if (name_end == p + 1) return false;
    if (open.empty() && !nodes_.empty()) return false;
    // Markup inside <Data> is an inner-XML payload, which the decoder re-serialises with
    // tinyxml2's printer.
    if (!open.empty() && nodes_[open.back()].value_ == "Data") return false;
    const uint32_t index = NewNode(open.empty() ? FastNode::kNone : open.back());
    nodes_[index].element_ = true;
    nodes_[index].value_ = xml.substr(p + 1, name_end - p - 1);
    nodes_[index].first_attr_ = static_cast<uint32_t>(attrs_.size());
    p = name_end;
    bool closed = false;
    for (;;) {
      const size_t q = SkipSpace(xml, p);
      if (q >= xml.size()) return false;
      if (xml[q] == '>') {
        p = q + 1;
        break;
      }
      if (xml[q] == '/') {
        if (q + 1 >= xml.size() || xml[q + 1] != '>') return false;
        p = q + 2;
        closed = true;
        break;
      }
      // name = "value": whitespace before the name, ASCII name, unique, plain value.
      const size_t attr_end = ScanName(xml, q);
      if (q == p || attr_end == q) return false;
      size_t v = SkipSpace(xml, attr_end);
      if (v >= xml.size() || xml[v] != '=') return false;
      v = SkipSpace(xml, v + 1);
      if (v >= xml.size() || (xml[v] != '"' && xml[v] != '\'')) return false;
      const size_t close = xml.find(xml[v], v + 1);
      if (close == std::string_view::npos) return false;
      const std::string_view value = xml.substr(v + 1, close - v - 1);
      if (value.find_first_of("&<\r") != std::string_view::npos) return false;
      const std::string_view name = xml.substr(q, attr_end - q);
      if (nodes_[index].Attribute(name) != nullptr) return false;  // tinyxml2: an error
      if (nodes_[index].attr_count_ > 0) attrs_.back().last_ = false;
      FastAttr& a = attrs_.emplace_back();
      a.name_ = name;
      a.value_ = value;
      a.last_ = true;
      ++nodes_[index].attr_count_;
      p = close + 1;
    }
    if (closed) {
      if (open.empty()) root_done = true;
    } else {
      if (static_cast<int>(open.size()) >= kMaxDepth) return false;
      open.push_back(index);
    }
  }
  return root_done;
}

}  // namespace dm::syncml::internal
