// Plain HTTP request/response values shared by the HTTPS client and server. Free of Boost so
// the session engine and dmserver handlers do not pull Asio into every translation unit.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace dm::transport {

// Header fields in order; names compare case-insensitively (RFC 9110 5.1).
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

bool HeaderNameEquals(std::string_view a, std::string_view b);
// The first field named `name`, if any.
std::optional<std::string> FindHeader(const HttpHeaders& headers, std::string_view name);
// Replaces every field named `name` with one field (appends when absent).
void SetHeader(HttpHeaders& headers, std::string_view name, std::string value);

struct HttpRequest {
  std::string method;  // "POST"
  std::string target;  // "/ManagementServer/MDM.svc?mode=Maintenance&Platform=WoA"
  HttpHeaders headers;
  std::string body;

  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;

  std::optional<std::string> Header(std::string_view name) const {
    return FindHeader(headers, name);
  }
};

// OK for 2xx; otherwise a Status a caller can act on: 401/403 -> Unauthenticated /
// PermissionDenied, 404 -> NotFound, 408/429/5xx -> Unavailable, 413 -> ResourceExhausted,
// other 4xx -> InvalidArgument, 3xx -> FailedPrecondition (redirects are not followed),
// anything else -> Internal. The message names the status code and a short body excerpt.
Status HttpStatusToStatus(const HttpResponse& response);

}  // namespace dm::transport
