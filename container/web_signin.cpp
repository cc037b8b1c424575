// Web sign-in allow-list (Policy Authentication/ConfigureWebSignInAllowedUrls).
//
// Matching is on the exact host (and port), case-insensitively. The parser is deliberately
// stricter than a browser: anything a browser would read differently from a naive parser
// (user info, backslashes, percent-encoding, trailing dots, numeric host forms, whitespace) is
// refused rather than interpreted, so the host we compare is the host the page would load from.
#include <string>
#include <vector>

#include "container/container.h"
#include "container/container_internal.h"

namespace dm::container {
namespace {

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsAsciiSpace(s.back())) s.remove_suffix(1);
  return s;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A host a browser would parse as IPv4 (its last label is numeric, decimal or 0x-hex) must be
// the canonical dotted quad; "127.1", "0x7f.0.0.1", "017.0.0.1" and "2130706433" are refused.
Status CheckNumericHost(const std::vector<std::string_view>& labels) {
  std::string_view last = labels.back();
  const bool hex = last.size() >= 2 && last[0] == '0' && last[1] == 'x';
  if (!IsDigits(last) && !hex) return Status::Ok();
  if (labels.size() != 4) return InvalidArgument("numeric host is not a dotted-quad IPv4 address");
  for (std::string_view l : labels) {
    if (!IsDigits(l) || l.size() > 3 || (l.size() > 1 && l[0] == '0') ||
        std::stoi(std::string(l)) > 255) {
      return InvalidArgument("numeric host is not a canonical dotted-quad IPv4 address");
    }
  }
  return Status::Ok();
}

// Lower-cases and validates a DNS host name (or canonical IPv4 address).
Result<std::string> NormalizeHost(std::string_view host) {
  if (host.empty()) return InvalidArgument("empty host");
  if (host.size() > 253) return InvalidArgument("host longer than 253 characters");
  if (host.back() == '.') return InvalidArgument("host ends with a dot");
  std::string out;
  out.reserve(host.size());
  for (char c : host) {
    const char l = Lower(c);
    if (!((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '.')) {
      if (c == '%') return InvalidArgument("percent-encoded host");
      if (c == '*') return InvalidArgument("wildcards are not supported; list each host");
      return InvalidArgument("host has a character outside a-z, 0-9, '-' and '.'");
    }
    out.push_back(l);
  }
  std::vector<std::string_view> labels;
  std::string_view rest = out;
  while (true) {
    size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    if (label.empty()) return InvalidArgument("host has an empty label");
    if (label.size() > 63) return InvalidArgument("host label longer than 63 characters");
    if (label.front() == '-' || label.back() == '-') {
      return InvalidArgument("host label starts or ends with '-'");
    }
    labels.push_back(label);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  DM_RETURN_IF_ERROR(CheckNumericHost(labels));
  return out;
}

Result<int> ParsePort(std::string_view p) {
  if (p.empty()) return InvalidArgument("empty port");
  if (!IsDigits(p) || p.size() > 5 || p[0] == '0') return InvalidArgument("malformed port");
  int port = std::stoi(std::string(p));
  if (port < 1 || port > 65535) return InvalidArgument("port out of range");
  return port;
}

// host[:port] with nothing else: user info, IPv6 literals and odd characters are refused.
Result<AllowedHost> ParseAuthority(std::string_view authority) {
  if (authority.empty()) return InvalidArgument("no host");
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("user info ('@') in the address");
  }
  if (authority.find('[') != std::string_view::npos) {
    return InvalidArgument("IPv6 literal hosts are not supported");
  }
  AllowedHost out;
  std::string_view host = authority;
  size_t colon = authority.find(':');
  if (colon != std::string_view::npos) {
    if (authority.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgument("more than one ':' in the address");
    }
    host = authority.substr(0, colon);
    DM_ASSIGN_OR_RETURN(out.port, ParsePort(authority.substr(colon + 1)));
  }
  DM_ASSIGN_OR_RETURN(out.host, NormalizeHost(host));
  return out;
}

// Characters no legitimate address here contains and that parsers disagree on.
Status CheckRawCharacters(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return InvalidArgument("whitespace, control or non-ASCII character in the address");
    }
    if (c == '\\') return InvalidArgument("backslash in the address");
  }
  return Status::Ok();
}

// scheme://authority... -> authority, or the whole thing up to the first '/', '?' or '#' when
// there is no scheme (bare host entries only).
Result<std::string_view> SplitAuthority(std::string_view text, bool require_scheme) {
  size_t sep = text.find("://");
  std::string_view rest = text;
  if (sep != std::string_view::npos) {
    std::string scheme;
    for (char c : text.substr(0, sep)) scheme.push_back(Lower(c));
    if (scheme != "https") return InvalidArgument("only https pages can be opened");
    rest = text.substr(sep + 3);
  } else if (require_scheme) {
    return InvalidArgument("not an absolute https URL");
  }
  size_t end = rest.find_first_of("/?#");
  return rest.substr(0, end);
}

}  // namespace

Result<std::vector<AllowedHost>> ParseWebSignInAllowList(std::string_view value) {
  std::vector<AllowedHost> hosts;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(';', start);
    if (end == std::string_view::npos) end = value.size();
    std::string_view entry = Trim(value.substr(start, end - start));
    start = end + 1;
    if (entry.empty()) continue;
    auto parsed = [&]() -> Result<AllowedHost> {
      DM_RETURN_IF_ERROR(CheckRawCharacters(entry));
      DM_ASSIGN_OR_RETURN(std::string_view authority, SplitAuthority(entry, false));
      return ParseAuthority(authority);
    }();
    if (!parsed.ok()) {
      return InvalidArgument("ConfigureWebSignInAllowedUrls entry '" +
                             internal::SanitizeForLog(entry) + "': " + parsed.error().message());
    }
    bool duplicate = false;
    for (const auto& h : hosts) duplicate = duplicate || h == *parsed;
    if (!duplicate) hosts.push_back(*parsed);
  }
  return hosts;
}

namespace internal {

Result<NavigationTarget> ParseNavigationUrl(std::string_view url) {
  DM_RETURN_IF_ERROR(CheckRawCharacters(url));
  DM_ASSIGN_OR_RETURN(std::string_view authority, SplitAuthority(url, true));
  DM_ASSIGN_OR_RETURN(AllowedHost h, ParseAuthority(authority));
  return NavigationTarget{h.host, h.port};
}

std::string SanitizeForLog(std::string_view text, size_t max_len) {
  std::string out;
  for (char c : text.substr(0, max_len)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
  }
  if (text.size() > max_len) out += "...";
  return out;
}

}  // namespace internal
}  // namespace dm::container
