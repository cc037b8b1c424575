#include "agent/transport/http_types.h"

#include <algorithm>
#include <cctype>

#include "base/ascii.h"

namespace dm::transport {

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  return AsciiEqualsIgnoreCase(a, b);
}

std::optional<std::string> FindHeader(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (HeaderNameEquals(n, name)) return v;
  }
  return std::nullopt;
}

void SetHeader(HttpHeaders& headers, std::string_view name, std::string value) {
  std::erase_if(headers, [&](const auto& h) { return HeaderNameEquals(h.first, name); });
  headers.emplace_back(std::string(name), std::move(value));
}

Status HttpStatusToStatus(const HttpResponse& response) {
  const int s = response.status;
  if (s >= 200 && s < 300) return Status::Ok();
  std::string m = "HTTP " + std::to_string(s);
  if (s >= 300 && s < 400) {
    m += " redirect";
    if (auto loc = response.Header("Location")) m += " to " + *loc;
    m += " (redirects are not followed)";
    return FailedPrecondition(std::move(m));
  }
  // A short excerpt of the body often says why (e.g. an ASP.NET error page title).
  if (!response.body.empty()) {
    std::string excerpt = response.body.substr(0, 200);
    std::replace_if(
        excerpt.begin(), excerpt.end(),
        [](char c) { return std::iscntrl(static_cast<unsigned char>(c)); }, ' ');
    m += ": " + excerpt;
  }
  if (s == 401) return Unauthenticated(std::move(m));
  if (s == 403) return PermissionDenied(std::move(m));
  if (s == 404) return NotFound(std::move(m));
  if (s == 413) return ResourceExhausted(std::move(m));
  if (s == 408 || s == 429 || (s >= 500 && s < 600)) return Unavailable(std::move(m));
  if (s >= 400 && s < 500) return InvalidArgument(std::move(m));
  return Internal(std::move(m));
}

}  // namespace dm::transport
