// libFuzzer target: DM-tree URI parsing (csp/uri.h). Properties: the canonical form of an
// accepted URI splits back into exactly its decoded segments and, when within kMaxUriBytes,
// parses again to the same node; segment encoding round-trips every byte string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "csp/uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view uri(reinterpret_cast<const char*>(data), size);

  const std::string encoded = dm::csp::EncodeSegment(uri);
  dm::Result<std::string> decoded = dm::csp::DecodeSegment(encoded);
  if (!decoded.ok() || *decoded != uri) std::abort();
  (void)dm::csp::DecodeSegment(uri);

  dm::Result<dm::csp::ParsedUri> parsed = dm::csp::ParseUri(uri);
  if (!parsed.ok()) return 0;
  if (parsed->segments.size() > dm::csp::kMaxDepth) std::abort();
  for (const std::string& s : parsed->segments) {
    if (s.empty() || s == "." || s == ".." || s.size() > dm::csp::kMaxSegmentBytes) std::abort();
  }
  // The canonical path splits on '/' into exactly the decoded segments (so node keys are
  // unambiguous), after the scope prefix.
  const std::string prefix = parsed->scope == dm::csp::UriScope::kUser ? "./User" : "./Device";
  if (parsed->canonical.compare(0, prefix.size(), prefix) != 0) std::abort();
  std::vector<std::string> split;
  std::string_view rest = std::string_view(parsed->canonical).substr(prefix.size());
  while (!rest.empty()) {
    if (rest.front() != '/') std::abort();
    rest.remove_prefix(1);
    const size_t slash = rest.find('/');
    dm::Result<std::string> seg = dm::csp::DecodeSegment(rest.substr(0, slash));
    if (!seg.ok()) std::abort();
    split.push_back(*seg);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  }
  if (split != parsed->segments) std::abort();
  // Re-encoding may lengthen a URI past kMaxUriBytes ('{' becomes %7B, the scope prefix is
  // added); nothing re-parses canonical forms, so that is allowed. Within the limit the
  // canonical form parses again to the same node.
  if (parsed->canonical.size() <= dm::csp::kMaxUriBytes) {
    dm::Result<dm::csp::ParsedUri> again = dm::csp::ParseUri(parsed->canonical);
    if (!again.ok()) std::abort();
    if (again->canonical != parsed->canonical || again->segments != parsed->segments ||
        again->scope != parsed->scope) {
      std::abort();
    }
  }
  if (dm::csp::CanonicalUri(parsed->scope, parsed->segments) != parsed->canonical) std::abort();
  return 0;
}
