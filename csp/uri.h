// DM-tree URIs as the session engine receives them in LocURI, parsed and normalised.
//
// Accepted forms (protocol-omadm.md 1.2, "User targeted vs. Device targeted"):
//   ./Device/Vendor/MSFT/X   device scope
//   ./Vendor/MSFT/X          device scope (no prefix = device)
//   ./User/Vendor/MSFT/X     user scope (the session's signed-in user)
//   ./DevInfo/..., ./DevDetail/...   device scope (root-level CSPs)
//   Vendor/MSFT/X            relative to the root (OMA-DM allows relative URIs); same as ./Vendor
//   .                        the root itself
// Every segment is percent-decoded (UTF-8). Rejected (InvalidArgument, the tree answers 400):
// an empty URI, a leading '/', a trailing '/', an empty segment ("a//b"), "." or ".." anywhere
// but the leading ".", a segment that is only "*", control characters (raw or percent-encoded),
// malformed percent escapes, invalid UTF-8, a '#', and URIs over the limits below. A query
// ("?list=...") is refused with Unimplemented (the tree answers 406): no CSP here supports one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dm::csp {

// Limits, also reported by ./DevDetail/URI/MaxTotLen, MaxSegLen and MaxDepth.
inline constexpr size_t kMaxUriBytes = 2048;     // the URI as received (percent-encoded)
inline constexpr size_t kMaxSegmentBytes = 255;  // one decoded segment
inline constexpr size_t kMaxDepth = 32;          // segments after "." and the scope prefix

enum class UriScope { kDevice, kUser };

struct ParsedUri {
  UriScope scope = UriScope::kDevice;
  // Decoded segments after "." and the optional Device/User prefix: {"Vendor","MSFT","Reboot"}.
  std::vector<std::string> segments;
  // "./Device/Vendor/MSFT/Reboot" or "./User/...": scope always explicit, segments re-encoded
  // with EncodeSegment. Two URIs naming the same node have the same canonical form.
  std::string canonical;
};

Result<ParsedUri> ParseUri(std::string_view uri);

// Percent-encodes one segment: RFC 3986 unreserved characters and the sub-delimiters
// ! $ & ' ( ) * + , ; = : @ stay as they are, every other byte becomes %XX (upper-case hex).
// So '/' inside a node name is always %2F and a canonical path splits on '/' unambiguously.
std::string EncodeSegment(std::string_view segment);
// Decodes %XX escapes; InvalidArgument for a malformed escape.
Result<std::string> DecodeSegment(std::string_view segment);

// "Vendor/MSFT/Reboot" from segments (each encoded).
std::string JoinPath(const std::vector<std::string>& segments);
// "./Device/<path>" or "./User/<path>"; the root is "./Device" / "./User".
std::string CanonicalUri(UriScope scope, const std::vector<std::string>& segments);

}  // namespace dm::csp
