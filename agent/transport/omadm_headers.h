// The HTTP header set a Windows OMA-DM client sends with each SyncML message (MS-MDM 2.1,
// protocol notes 1.1): Accept, Accept-Charset, Client-Request-Id and an MS-CV correlation
// vector whose last element increments per message (<base>.0.0.0, <base>.0.0.1, ...).
// Content-Type and User-Agent are set by HttpsClient. Accept-Encoding is deliberately not sent:
// the client does not decode gzip.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/transport/http_types.h"

namespace dm::transport {

inline constexpr std::string_view kSyncMlXml = "application/vnd.syncml.dm+xml";
inline constexpr std::string_view kSyncMlWbxml = "application/vnd.syncml.dm+wbxml";
inline constexpr std::string_view kOmaDmAccept =
    "application/vnd.syncml.dm+xml, application/vnd.syncml.dm+wbxml, application/octet-stream";
inline constexpr std::string_view kDefaultUserAgent = "dmagent/0.1 (MSFT OMA DM Client compatible)";

class CorrelationVector {
 public:
  // A fresh random base: 16 base64 characters (96 bits), the cV 1.0 base length.
  static CorrelationVector New();
  explicit CorrelationVector(std::string base) : base_(std::move(base)) {}

  // "<base>.0.0.<n>" with n = 0, 1, 2, ... on successive calls.
  std::string Next();
  const std::string& base() const { return base_; }

 private:
  std::string base_;
  uint64_t next_ = 0;
};

// One per OMA-DM session: the vector's base is fixed for the session, its suffix counts the
// messages. A retry of the same message reuses that message's headers.
class OmaDmHeaders {
 public:
  explicit OmaDmHeaders(std::string client_request_id = "0",
                        CorrelationVector cv = CorrelationVector::New())
      : client_request_id_(std::move(client_request_id)), cv_(std::move(cv)) {}

  HttpHeaders NextMessage();
  const CorrelationVector& correlation_vector() const { return cv_; }

 private:
  std::string client_request_id_;
  CorrelationVector cv_;
};

}  // namespace dm::transport
