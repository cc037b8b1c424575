// A read-only XML DOM for the decoder's fast path. Internal to agent/syncml.
//
// tinyxml2 stays the reference parser. This reader accepts only a strict subset of XML in
// which it builds exactly the tree tinyxml2 builds (same nodes, names, text values, attribute
// values, CDATA flags), and refuses everything else, so the caller falls back to tinyxml2:
//  - accepted: an optional run of <?...?> declarations before the root element; elements with
//    ASCII names; attributes (name = "value" or 'value', whitespace-separated, unique); text
//    with the five predefined entities; CDATA sections; whitespace anywhere tinyxml2 skips it.
//  - refused: comments, DOCTYPE and other <! declarations, processing instructions after the
//    start, numeric character references, unknown entities, CR (line-end normalisation), NUL,
//    vertical tab and form feed (tinyxml2 counts them as whitespace), non-ASCII names, nesting
//    deeper than kMaxDepth, anything after the root element but whitespace, elements inside a
//    <Data> element (inner-XML payloads: the decoder re-serialises those with tinyxml2's
//    printer), and everything malformed.
// Text that needs no entity decoding is a view of the input; decoded text lives in the
// document. The input must outlive the document.
//
// The node API mirrors the part of tinyxml2's that the decoder uses (Name, Value, FirstChild,
// NextSibling, ToElement, ToText, CData, FirstChildElement, NextSiblingElement, FirstAttribute),
// so one decoder walk serves both DOMs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dm::syncml::internal {

class FastDoc;

class FastAttr {
 public:
  std::string_view Name() const { return name_; }
  std::string_view Value() const { return value_; }
  const FastAttr* Next() const { return last_ ? nullptr : this + 1; }

 private:
  friend class FastDoc;
  friend class FastNode;
  std::string_view name_;
  std::string_view value_;
  bool last_ = false;
};

class FastNode {
 public:
  // An element's name or a text node's (decoded) text, like tinyxml2's Value().
  std::string_view Name() const { return value_; }
  std::string_view Value() const { return value_; }
  bool CData() const { return cdata_; }

  const FastNode* ToElement() const { return element_ ? this : nullptr; }
  const FastNode* ToText() const { return element_ ? nullptr : this; }
  // Never present in an accepted document.
  const FastNode* ToComment() const { return nullptr; }
  const FastNode* ToUnknown() const { return nullptr; }

  const FastNode* FirstChild() const;
  const FastNode* NextSibling() const;
  const FastNode* FirstChildElement() const;
  const FastNode* FirstChildElement(std::string_view name) const;
  const FastNode* NextSiblingElement() const;
  const FastAttr* FirstAttribute() const;
  // The attribute's value, or nullptr when the element has none of that name.
  const std::string_view* Attribute(std::string_view name) const;

 private:
  friend class FastDoc;
  static constexpr uint32_t kNone = UINT32_MAX;
  const FastDoc* doc_ = nullptr;
  std::string_view value_;
  uint32_t first_child_ = kNone;
  uint32_t last_child_ = kNone;
  uint32_t next_sibling_ = kNone;
  uint32_t first_attr_ = kNone;
  uint32_t attr_count_ = 0;
  bool element_ = false;
  bool cdata_ = false;
};

class FastDoc {
 public:
  // Deeper documents are refused (tinyxml2's own limit is 100).
  static constexpr int kMaxDepth = 64;

  // False when `xml` is outside the subset described above (nothing is said about whether it
  // is well-formed).
  bool Parse(std::string_view xml);
  const FastNode* RootElement() const { return nodes_.empty() ? nullptr : &nodes_[0]; }

 private:
  friend class FastNode;
  bool AddText(std::string_view raw, bool cdata, uint32_t parent);
  uint32_t NewNode(uint32_t parent);

  std::vector<FastNode> nodes_;
  std::vector<FastAttr> attrs_;
  // Text that needed entity decoding; blocks never move once written.
  std::vector<std::unique_ptr<std::string>> decoded_;
};

}  // namespace dm::syncml::internal
