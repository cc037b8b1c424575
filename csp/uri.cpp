#include "csp/uri.h"

#include <cstdint>

#include "base/ascii.h"

namespace dm::csp {
namespace {

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7F; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) {
      return false;  // overlong
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool StaysUnencoded(unsigned char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':  // unreserved
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':  // sub-delims
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string EncodeSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size());
  for (char ch : segment) {
    auto c = static_cast<unsigned char>(ch);
    if (StaysUnencoded(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

namespace {
// Decodes into `out`; false on a malformed escape. (A plain out-parameter: GCC 12 reports a
// false maybe-uninitialized for a std::string moved out of a Result at -O2.)
bool DecodeInto(std::string_view segment, std::string& out) {
  out.clear();
  out.reserve(segment.size());
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out += segment[i];
      continue;
    }
    if (i + 2 >= segment.size()) return false;
    int hi = HexValue(segment[i + 1]);
    int lo = HexValue(segment[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}
}  // namespace

Result<std::string> DecodeSegment(std::string_view segment) {
  std::string out;
  if (!DecodeInto(segment, out)) {
    return InvalidArgument("malformed percent escape in '" + std::string(segment.substr(0, 64)) +
                           "'");
  }
  return out;
}

std::string JoinPath(const std::vector<std::string>& segments) {
  std::string out;
  for (const auto& s : segments) {
    if (!out.empty()) out += '/';
    out += EncodeSegment(s);
  }
  return out;
}

std::string CanonicalUri(UriScope scope, const std::vector<std::string>& segments) {
  std::string out = scope == UriScope::kUser ? "./User" : "./Device";
  for (const auto& s : segments) {
    out += '/';
    out += EncodeSegment(s);
  }
  return out;
}

Result<ParsedUri> ParseUri(std::string_view uri) {
  if (uri.empty()) return InvalidArgument("empty URI");
  if (uri.size() > kMaxUriBytes) {
    return InvalidArgument("URI is " + std::to_string(uri.size()) + " bytes; the limit is " +
                           std::to_string(kMaxUriBytes));
  }
  for (char ch : uri) {
    auto c = static_cast<unsigned char>(ch);
    if (IsControl(c)) return InvalidArgument("URI contains a control character");
    if (c == '?') return Unimplemented("URI queries ('?...') are not supported");
    if (c == '#') return InvalidArgument("URI contains '#'");
  }
  if (uri.front() == '/') return InvalidArgument("URI must not start with '/'");
  if (uri.back() == '/') return InvalidArgument("URI must not end with '/'");

  // Split; the leading "." (absolute form) is dropped, a URI without it is relative to the root.
  std::vector<std::string_view> raw;
  size_t start = 0;
  for (;;) {
    size_t slash = uri.find('/', start);
    raw.push_back(uri.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  size_t first = (raw.front() == ".") ? 1 : 0;

  ParsedUri out;
  std::vector<std::string> segments;
  for (size_t i = first; i < raw.size(); ++i) {
    std::string_view r = raw[i];
    if (r.empty()) return InvalidArgument("URI has an empty segment");
    std::string seg;
    if (!DecodeInto(r, seg)) return InvalidArgument("URI has a malformed percent escape");
    if (seg.empty()) return InvalidArgument("URI has an empty segment");
    if (seg == "." || seg == "..") {
      return InvalidArgument("URI segment '" + seg + "' is not allowed after the leading '.'");
    }
    if (seg == "*") return InvalidArgument("URI segment '*' is not a node name");
    if (seg.size() > kMaxSegmentBytes) {
      return InvalidArgument("URI segment is " + std::to_string(seg.size()) +
                             " bytes; the limit is " + std::to_string(kMaxSegmentBytes));
    }
    for (char ch : seg) {
      if (IsControl(static_cast<unsigned char>(ch))) {
        return InvalidArgument("URI segment contains an encoded control character");
      }
    }
    if (!IsValidUtf8(seg)) return InvalidArgument("URI segment is not valid UTF-8");
    segments.push_back(std::move(seg));
  }

  // Scope prefix, matched like every static name: whatever its case (the DDFs' CaseSense CIS).
  // Anything else is a path under the device root (./Vendor, ./DevInfo, ...).
  size_t skip = 0;
  if (!segments.empty() && AsciiEqualsIgnoreCase(segments.front(), "Device")) {
    skip = 1;
  } else if (!segments.empty() && AsciiEqualsIgnoreCase(segments.front(), "User")) {
    out.scope = UriScope::kUser;
    skip = 1;
  }
  out.segments.assign(std::make_move_iterator(segments.begin() + static_cast<long>(skip)),
                      std::make_move_iterator(segments.end()));
  if (out.segments.size() > kMaxDepth) {
    return InvalidArgument("URI has " + std::to_string(out.segments.size()) +
                           " segments; the limit is " + std::to_string(kMaxDepth));
  }
  out.canonical = CanonicalUri(out.scope, out.segments);
  return out;
}

}  // namespace dm::csp
