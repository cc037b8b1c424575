// The agent's HTTPS client for OMA-DM: synchronous (the agent is a single-threaded daemon), one
// kept-alive connection per client, mutual TLS, per-step timeouts and a retry policy.
//
// Security defaults: the server certificate chain AND host name are always verified; the only
// way out is `insecure_skip_verify`, which logs a warning on every connection. The client key is
// loaded from memory and is never written to disk.
//
// Errors (Status codes):
//   kUnauthenticated    TLS certificate problem: server cert not trusted / expired / wrong name,
//                       or the server rejected our client certificate. Never retried.
//   kFailedPrecondition other TLS handshake failure (no common protocol, plain HTTP port, ...).
//   kUnavailable        resolve/connect/reset/closed; retried.
//   kDeadlineExceeded   a step (connect, handshake, write, read) exceeded step_timeout; retried.
//   kResourceExhausted  response larger than max_response_bytes.
//   kInvalidArgument    bad URL or header.
// An HTTP error status is not a transport error: Post returns the HttpResponse (after retries
// for 5xx/429); use HttpStatusToStatus() to turn it into a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/transport/http_types.h"
#include "agent/transport/omadm_headers.h"
#include "agent/transport/retry.h"
#include "base/clock.h"
#include "base/secret.h"
#include "base/status.h"

struct ssl_session_st;

namespace dm::transport {

// TLS session resumption from one client to the next (the fleet simulator keeps one per
// simulated device). A resumed handshake skips both certificate verifications and signatures,
// which were most of the server's work per session. The session holds a resumption secret:
// it lives in memory only, never on disk. Resumed only with the exact endpoint and name it was
// made for, after a full handshake that verified the server.
struct TlsResumption {
  std::string endpoint;
  std::shared_ptr<ssl_session_st> session;
};

struct HttpsUrl {
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 443;
  std::string target = "/";  // path + query

  // "host" or "host:port" (non-default port), as the Host header wants it.
  std::string Authority() const;
};
// Accepts only https:// URLs; no user-info, no fragment.
Result<HttpsUrl> ParseHttpsUrl(std::string_view url);

struct HttpsClientOptions {
  std::string server_url;  // https://host[:port]/path?query

  // Trust anchors (PEM, one or more). Empty: the system's default trust store.
  std::string ca_bundle_pem;
  // With a bundle: trust the system store as well (management sessions after MS-MDE2
  // enrollment trust the enrollment-time trust and the provisioned Root/System anchors).
  bool also_trust_system_store = false;
  // Turns off server certificate and host name verification. For lab use only; logs loudly.
  bool insecure_skip_verify = false;

  // Mutual TLS: the client certificate (leaf first, then any intermediates) and its key.
  std::string client_cert_pem;
  SecretBytes client_key_pem;

  // Name sent as SNI and checked against the server certificate; empty: the URL's host.
  // (No SNI is sent for IP-address hosts, per RFC 6066.)
  std::string tls_server_name;

  // Each of connect, TLS handshake, write and read gets this long.
  std::chrono::milliseconds step_timeout{30'000};
  std::string user_agent{kDefaultUserAgent};
  HttpHeaders extra_headers;  // sent with every request
  size_t max_response_bytes = 16u << 20;

  RetryOptions retry;
  const Clock* clock = nullptr;                          // null: system clock (Retry-After dates)
  std::function<void(std::chrono::milliseconds)> sleep;  // null: really sleep
  std::function<double()> uniform01;                     // null: PRNG (backoff jitter)
  TlsResumption* resumption = nullptr;  // resume from / save to this; null: full handshakes
};

class HttpsClient {
 public:
  // Builds the TLS context (loads CA bundle, client certificate and key). Fails with
  // InvalidArgument on a bad URL, unparsable PEM or a key that does not match the certificate.
  static Result<std::unique_ptr<HttpsClient>> Create(HttpsClientOptions options);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // POSTs `body` to `path_or_url`: empty = the server URL itself; "/path?q" = that target on the
  // server; "https://..." = that URL. Retries per RetryPolicy, sleeping through options.sleep.
  Result<HttpResponse> Post(std::string_view path_or_url, std::string_view body,
                            std::string_view content_type = kSyncMlXml,
                            const HttpHeaders& headers = {});
  // One attempt, no retry (a reused connection the server had closed is still re-opened once).
  Result<HttpResponse> PostOnce(std::string_view path_or_url, std::string_view body,
                                std::string_view content_type = kSyncMlXml,
                                const HttpHeaders& headers = {});

  // One GET, no retry (enrollment probes and sign-in pages).
  Result<HttpResponse> GetOnce(std::string_view path_or_url, const HttpHeaders& headers = {});
  // Closes the kept-alive connection (TLS close_notify, bounded by step_timeout).
  void Close();

  // TCP+TLS connections opened so far (keep-alive makes this smaller than the request count).
  uint64_t connections_opened() const;
  // Attempts made by the last Post (1 when it succeeded at once).
  int last_attempts() const;
  // Connections whose TLS handshake resumed a saved session.
  uint64_t connections_resumed() const;

 private:
  class Impl;
  explicit HttpsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::transport
