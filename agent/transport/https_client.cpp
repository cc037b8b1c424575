#include "agent/transport/https_client.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/transport/asio.h"
#include "agent/transport/tls_internal.h"
#include "base/crypto.h"

namespace dm::transport {
namespace {

// The trust store of a CA bundle, parsed once per process: a daemon or a simulated fleet
// opens a client per session, always with the same bundle, and parsing it (OpenSSL 3 decodes
// each certificate's key through its decoder framework) was a visible share of a session.
// X509_STORE is reference-counted and safe to share between contexts and threads.
Result<X509_STORE*> SharedTrustStore(const std::string& pem) {
  static std::mutex mu;
  static std::map<std::string, X509_STORE*>* stores = new std::map<std::string, X509_STORE*>();
  constexpr size_t kMaxBundles = 8;  // a process trusts a handful of bundles, not thousands
  std::lock_guard lock(mu);
  if (auto it = stores->find(pem); it != stores->end()) {
    X509_STORE_up_ref(it->second);
    return it->second;
  }
  X509_STORE* store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    added += X509_STORE_add_cert(store, cert) == 1;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on "no start line"
  if (added == 0) {
    X509_STORE_free(store);
    return InvalidArgument("CA bundle does not parse: no certificate in it");
  }
  if (stores->size() < kMaxBundles) {
    X509_STORE_up_ref(store);
    stores->emplace(pem, store);
  }
  return store;
}

using internal::HostPort;
using internal::IsIpLiteral;

bool IEqualsPrefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && HeaderNameEquals(s.substr(0, prefix.size()), prefix);
}

bool HasControlOrSpace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7F;
  });
}

// RFC 9110 token characters for a field name.
bool ValidHeaderName(std::string_view name) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

// Refuses CR, LF and NUL so a value cannot inject another header or split the request.
bool ValidHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

struct Endpoint {
  std::string host;
  uint16_t port = 443;
  std::string tls_name;  // SNI and the name the certificate must carry

  bool operator==(const Endpoint&) const = default;
  std::string HostPortText() const { return HostPort(host, port); }
};

// ssl::host_name_verification answers only yes/no; when it says no we record why, so the
// handshake error reads "Hostname mismatch" instead of "unspecified certificate verification
// error".
class VerifyServerName {
 public:
  explicit VerifyServerName(const std::string& name) : check_(name), is_ip_(IsIpLiteral(name)) {}

  bool operator()(bool preverified, ssl::verify_context& ctx) const {
    if (check_(preverified, ctx)) return true;
    if (preverified) {
      X509_STORE_CTX_set_error(ctx.native_handle(), is_ip_ ? X509_V_ERR_IP_ADDRESS_MISMATCH
                                                           : X509_V_ERR_HOSTNAME_MISMATCH);
    }
    return false;
  }

 private:
  ssl::host_name_verification check_;
  bool is_ip_;
};

enum class Step { kResolve, kConnect, kHandshake, kWrite, kRead };

}  // namespace

std::string HttpsUrl::Authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != 443) out += ":" + std::to_string(port);
  return out;
}

Result<HttpsUrl> ParseHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (!IEqualsPrefix(url, kScheme)) {
    if (IEqualsPrefix(url, "http://")) {
      return InvalidArgument("plain http is not allowed, the URL must be https: " +
                             std::string(url));
    }
    return InvalidArgument("not an https:// URL: " + std::string(url));
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos)
    rest = rest.substr(0, hash);  // fragments never go on the wire
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  HttpsUrl out;
  if (end != std::string_view::npos) {
    out.target = std::string(rest.substr(end));
    if (out.target.front() == '?') out.target.insert(out.target.begin(), '/');
  }
  if (HasControlOrSpace(out.target)) {
    return InvalidArgument("URL path contains spaces or control characters: " + std::string(url));
  }
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("user info in URLs is not supported: " + std::string(url));
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("bad authority in URL: " + std::string(url));
      port = after.substr(1);
    }
    if (!IsIpLiteral(host)) return InvalidArgument("bad IPv6 literal: " + std::string(host));
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return InvalidArgument("URL has no host: " + std::string(url));
  if (HasControlOrSpace(host)) return InvalidArgument("bad host in URL: " + std::string(url));
  if (authority.front() != '[' && host.find(':') != std::string_view::npos) {
    return InvalidArgument("IPv6 hosts must be in brackets: " + std::string(url));
  }
  out.host = std::string(host);
  if (!port.empty() || (authority.size() > host.size() && authority.back() == ':')) {
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return InvalidArgument("bad port in URL: " + std::string(url));
    }
    int p = std::stoi(std::string(port));
    if (p < 1 || p > 65535) return InvalidArgument("port out of range in URL: " + std::string(url));
    out.port = static_cast<uint16_t>(p);
  }
  return out;
}

// One kept-alive connection and the exchange chain over it, in the style of the Beast client
// examples: resolve -> connect -> handshake -> write -> read, every step bounded by
// expires_after(step_timeout), every failure through Fail(). Post() drives the chain
// synchronously by running the private io_context until the chain records a result.
class HttpsClient::Impl {
 public:
  explicit Impl(HttpsClientOptions options)
      : options_(std::move(options)),
        ssl_ctx_(ssl::context::tls_client),
        resolver_(ioc_),
        retry_(options_.retry, options_.clock, options_.uniform01) {}

  ~Impl() { Close(); }

  Status Init(const HttpsUrl& server, const SecretBytes& key_pem);
  Result<HttpResponse> Post(std::string_view path_or_url, std::string_view body,
                            std::string_view content_type, const HttpHeaders& headers);
  Result<HttpResponse> PostOnce(std::string_view path_or_url, std::string_view body,
                                std::string_view content_type, const HttpHeaders& headers);
  Result<HttpResponse> SendOnce(http::verb verb, std::string_view path_or_url,
                                std::string_view body, std::string_view content_type,
                                const HttpHeaders& headers);
  void Close();

  uint64_t connections_opened() const { return connections_opened_; }
  uint64_t connections_resumed() const { return connections_resumed_; }
  int last_attempts() const { return last_attempts_; }

 private:
  Result<Endpoint> EndpointFor(std::string_view path_or_url, std::string* target) const;
  Result<HttpResponse> Exchange(const Endpoint& ep, http::request<http::string_body>& req);

  void StartConnect();
  void OnResolve(beast::error_code ec, tcp::resolver::results_type results);
  void OnConnect(beast::error_code ec, const tcp::endpoint& peer);
  void OnHandshake(beast::error_code ec);
  void StartWrite();
  void OnWrite(beast::error_code ec, size_t bytes);
  void OnRead(beast::error_code ec, size_t bytes);
  void Fail(beast::error_code ec, Step step);
  Status MapError(const beast::error_code& ec, Step step);
  std::string Describe(Step step) const;
  void CloseSocket();
  // What a saved session is bound to: the host, port and verified name of the connection.
  std::string ResumptionKey() const {
    return endpoint_->HostPortText() + " " + endpoint_->tls_name + " " + identity_tag_;
  }
  void ArmTimer(std::chrono::milliseconds t) { beast::get_lowest_layer(*stream_).expires_after(t); }

  HttpsClientOptions options_;
  HttpsUrl server_;
  bool has_client_cert_ = false;

  net::io_context ioc_;
  ssl::context ssl_ctx_;
  tcp::resolver resolver_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;  // persists across reads of one connection
  std::optional<http::response_parser<http::string_body>> parser_;

  // State of the exchange in flight.
  std::optional<Endpoint> endpoint_;
  bool connected_ = false;
  bool reused_ = false;       // the request went out on a kept-alive connection
  bool reconnected_ = false;  // the one transparent re-open was used
  http::request<http::string_body>* req_ = nullptr;
  std::optional<Result<HttpResponse>> result_;

  RetryPolicy retry_;
  uint64_t connections_opened_ = 0;
  uint64_t connections_resumed_ = 0;
  std::string identity_tag_;  // SHA-256 of the client certificate: a session is that identity's
  int last_attempts_ = 0;
};

Status HttpsClient::Impl::Init(const HttpsUrl& server, const SecretBytes& key_pem) {
  server_ = server;
  DM_RETURN_IF_ERROR(internal::ConfigureCommonTls(ssl_ctx_));
  beast::error_code ec;
  if (!options_.ca_bundle_pem.empty() && options_.also_trust_system_store) {
    // The system store plus the bundle's anchors, in this context's own store (the shared
    // bundle stores stay bundle-only).
    ssl_ctx_.set_default_verify_paths(ec);
    if (ec) return Internal("cannot load the system trust store: " + internal::ErrorText(ec));
    X509_STORE* own = SSL_CTX_get_cert_store(ssl_ctx_.native_handle());
    BIO* bio = BIO_new_mem_buf(options_.ca_bundle_pem.data(),
                               static_cast<int>(options_.ca_bundle_pem.size()));
    int added = 0;
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(own, cert);  // a duplicate of a system anchor is fine
      X509_free(cert);
      ++added;
    }
    BIO_free(bio);
    ERR_clear_error();  // the end of the bundle reads as an error
    if (added == 0) return InvalidArgument("the CA bundle holds no PEM certificate");
  } else if (!options_.ca_bundle_pem.empty()) {
    DM_ASSIGN_OR_RETURN(X509_STORE * store, SharedTrustStore(options_.ca_bundle_pem));
    SSL_CTX_set1_cert_store(ssl_ctx_.native_handle(), store);
    X509_STORE_free(store);  // the context holds its own reference
  } else {
    ssl_ctx_.set_default_verify_paths(ec);
    if (ec) return Internal("cannot load the system trust store: " + internal::ErrorText(ec));
  }
  ssl_ctx_.set_verify_mode(options_.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);

  if (!options_.client_cert_pem.empty()) {
    DM_RETURN_IF_ERROR(
        internal::LoadCertificateAndKey(ssl_ctx_, options_.client_cert_pem, key_pem, "client"));
    has_client_cert_ = true;
    if (options_.resumption != nullptr) {  // only a saved session needs to know whose it is
      DM_ASSIGN_OR_RETURN(Bytes digest,
                          crypto::Sha256(std::span<const uint8_t>(
                              reinterpret_cast<const uint8_t*>(options_.client_cert_pem.data()),
                              options_.client_cert_pem.size())));
      identity_tag_ = crypto::HexEncode(digest);
    }
  } else if (!key_pem.empty()) {
    return InvalidArgument("client key given without a client certificate");
  }
  if (options_.insecure_skip_verify) {
    spdlog::warn(
        "INSECURE: TLS server certificate verification is OFF for {} (insecure_skip_verify); "
        "anyone on the network path can impersonate the server",
        options_.server_url);
  }
  return Status::Ok();
}

Result<Endpoint> HttpsClient::Impl::EndpointFor(std::string_view path_or_url,
                                                std::string* target) const {
  HttpsUrl url = server_;
  if (path_or_url.empty()) {
    // the server URL as configured
  } else if (path_or_url.front() == '/') {
    if (HasControlOrSpace(path_or_url)) {
      return InvalidArgument("request path contains spaces or control characters");
    }
    url.target = std::string(path_or_url);
  } else {
    DM_ASSIGN_OR_RETURN(url, ParseHttpsUrl(path_or_url));
  }
  Endpoint ep;
  ep.host = url.host;
  ep.port = url.port;
  ep.tls_name = (!options_.tls_server_name.empty() && url.host == server_.host)
                    ? options_.tls_server_name
                    : url.host;
  *target = url.target;
  return ep;
}

Result<HttpResponse> HttpsClient::Impl::PostOnce(std::string_view path_or_url,
                                                 std::string_view body,
                                                 std::string_view content_type,
                                                 const HttpHeaders& headers) {
  return SendOnce(http::verb::post, path_or_url, body, content_type, headers);
}

Result<HttpResponse> HttpsClient::Impl::SendOnce(http::verb verb, std::string_view path_or_url,
                                                 std::string_view body,
                                                 std::string_view content_type,
                                                 const HttpHeaders& headers) {
  std::string target;
  DM_ASSIGN_OR_RETURN(Endpoint ep, EndpointFor(path_or_url, &target));
  http::request<http::string_body> req{verb, target, 11};
  HttpsUrl authority{ep.host, ep.port, target};
  req.set(http::field::host, authority.Authority());
  req.set(http::field::user_agent, options_.user_agent);
  if (verb != http::verb::get) req.set(http::field::content_type, std::string(content_type));
  for (const HttpHeaders* set :
       std::array<const HttpHeaders*, 2>{&options_.extra_headers, &headers}) {
    for (const auto& [name, value] : *set) {
      if (!ValidHeaderName(name) || !ValidHeaderValue(value)) {
        return InvalidArgument("invalid HTTP header: " + name);
      }
      req.set(name, value);  // later sets (per-call headers) replace earlier ones
    }
  }
  req.body().assign(body.data(), body.size());
  req.keep_alive(true);
  req.prepare_payload();
  spdlog::debug("{} https://{}{} ({} bytes)", std::string(http::to_string(verb)),
                authority.Authority(), target, body.size());
  return Exchange(ep, req);
}

Result<HttpResponse> HttpsClient::Impl::Post(std::string_view path_or_url, std::string_view body,
                                             std::string_view content_type,
                                             const HttpHeaders& headers) {
  for (int attempt = 1;; ++attempt) {
    last_attempts_ = attempt;
    Result<HttpResponse> r = PostOnce(path_or_url, body, content_type, headers);
    std::optional<std::chrono::milliseconds> delay = retry_.NextDelay(attempt, r);
    if (!delay) {
      if (!r.has_value() && attempt > 1) {
        return Status(r.error().code(), r.error().message() + " (gave up after " +
                                            std::to_string(attempt) + " attempts)");
      }
      return r;
    }
    spdlog::warn("POST to {} failed ({}); retry {} of {} in {} ms", options_.server_url,
                 r.has_value() ? "HTTP " + std::to_string(r->status) : r.error().ToString(),
                 attempt, retry_.options().max_attempts - 1, delay->count());
    if (options_.sleep) {
      options_.sleep(*delay);
    } else {
      std::this_thread::sleep_for(*delay);
    }
  }
}

Result<HttpResponse> HttpsClient::Impl::Exchange(const Endpoint& ep,
                                                 http::request<http::string_body>& req) {
  if (connected_ && endpoint_ != ep) Close();
  endpoint_ = ep;
  req_ = &req;
  result_.reset();
  reconnected_ = false;
  reused_ = connected_;
  if (connected_) {
    StartWrite();
  } else {
    StartConnect();
  }
  ioc_.restart();
  ioc_.run();
  req_ = nullptr;
  if (!result_) return Internal("HTTPS exchange ended without a result");
  return std::move(*result_);
}

void HttpsClient::Impl::StartConnect() {
  connected_ = false;
  stream_.emplace(ioc_, ssl_ctx_);
  buffer_.clear();
  resolver_.async_resolve(endpoint_->host, std::to_string(endpoint_->port),
                          beast::bind_front_handler(&Impl::OnResolve, this));
}

void HttpsClient::Impl::OnResolve(beast::error_code ec, tcp::resolver::results_type results) {
  if (ec) return Fail(ec, Step::kResolve);
  ArmTimer(options_.step_timeout);
  beast::get_lowest_layer(*stream_).async_connect(
      results, beast::bind_front_handler(&Impl::OnConnect, this));
}

void HttpsClient::Impl::OnConnect(beast::error_code ec, const tcp::endpoint&) {
  if (ec) return Fail(ec, Step::kConnect);
  ++connections_opened_;
  SSL* ssl = stream_->native_handle();
  if (!IsIpLiteral(endpoint_->tls_name) &&
      SSL_set_tlsext_host_name(ssl, endpoint_->tls_name.c_str()) != 1) {
    ec.assign(static_cast<int>(ERR_get_error()), net::error::get_ssl_category());
    return Fail(ec, Step::kHandshake);
  }
  if (options_.insecure_skip_verify) {
    spdlog::warn("INSECURE: not verifying the TLS certificate of {}", endpoint_->HostPortText());
    stream_->set_verify_mode(ssl::verify_none);
  } else {
    stream_->set_verify_mode(ssl::verify_peer);
    stream_->set_verify_callback(VerifyServerName(endpoint_->tls_name));
    TlsResumption* saved = options_.resumption;
    if (saved != nullptr && saved->session && saved->endpoint == ResumptionKey()) {
      SSL_set_session(ssl, saved->session.get());
    }
  }
  ArmTimer(options_.step_timeout);
  stream_->async_handshake(ssl::stream_base::client,
                           beast::bind_front_handler(&Impl::OnHandshake, this));
}

void HttpsClient::Impl::OnHandshake(beast::error_code ec) {
  if (ec) return Fail(ec, Step::kHandshake);
  connected_ = true;
  if (SSL_session_reused(stream_->native_handle()) == 1) ++connections_resumed_;
  StartWrite();
}

void HttpsClient::Impl::StartWrite() {
  parser_.emplace();
  parser_->body_limit(options_.max_response_bytes);
  ArmTimer(options_.step_timeout);
  http::async_write(*stream_, *req_, beast::bind_front_handler(&Impl::OnWrite, this));
}

void HttpsClient::Impl::OnWrite(beast::error_code ec, size_t) {
  if (ec) return Fail(ec, Step::kWrite);
  ArmTimer(options_.step_timeout);
  http::async_read(*stream_, buffer_, *parser_, beast::bind_front_handler(&Impl::OnRead, this));
}

void HttpsClient::Impl::OnRead(beast::error_code ec, size_t) {
  if (ec) return Fail(ec, Step::kRead);
  http::response<http::string_body> msg = parser_->release();
  HttpResponse r;
  r.status = static_cast<int>(msg.result_int());
  for (const auto& field : msg) {
    r.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  r.body = std::move(msg.body());
  // TLS 1.3 tickets arrive after the handshake: by the end of a response the session is
  // resumable. Never kept from a connection that skipped verification.
  if (options_.resumption != nullptr && !options_.insecure_skip_verify) {
    SSL_SESSION* s = SSL_get1_session(stream_->native_handle());
    if (s != nullptr && SSL_SESSION_is_resumable(s) == 1) {
      options_.resumption->session.reset(s, SSL_SESSION_free);
      options_.resumption->endpoint = ResumptionKey();
    } else {
      SSL_SESSION_free(s);
    }
  }
  if (msg.keep_alive()) {
    beast::get_lowest_layer(*stream_).expires_never();
  } else {
    CloseSocket();
  }
  result_ = std::move(r);
}

void HttpsClient::Impl::Fail(beast::error_code ec, Step step) {
  // A kept-alive connection the server has meanwhile closed shows up as EOF/reset on the first
  // write or before any byte of the response. Nothing was processed, so open a fresh
  // connection once, transparently; anything else is a real failure.
  bool stale = reused_ && !reconnected_ && internal::IsPeerClosed(ec) &&
               (step == Step::kWrite || (step == Step::kRead && !parser_->got_some()));
  Status status = MapError(ec, step);
  CloseSocket();
  if (stale) {
    spdlog::debug("kept-alive connection to {} was closed by the server ({}); reconnecting",
                  endpoint_->HostPortText(), ec.message());
    reconnected_ = true;
    reused_ = false;
    // Posted, so the old stream is replaced outside its own completion handler.
    net::post(ioc_, [this] { StartConnect(); });
    return;
  }
  spdlog::debug("{}", status.ToString());
  result_ = std::move(status);
}

std::string HttpsClient::Impl::Describe(Step step) const {
  const std::string where = endpoint_->HostPortText();
  switch (step) {
    case Step::kResolve:
      return "resolving " + endpoint_->host;
    case Step::kConnect:
      return "connecting to " + where;
    case Step::kHandshake:
      return "TLS handshake with " + where;
    case Step::kWrite:
      return "sending the request to " + where;
    case Step::kRead:
      return "reading the response from " + where;
  }
  return where;
}

Status HttpsClient::Impl::MapError(const beast::error_code& ec, Step step) {
  const std::string what = Describe(step);
  if (ec == beast::error::timeout) {
    return DeadlineExceeded(what + " timed out after " +
                            std::to_string(options_.step_timeout.count()) + " ms");
  }
  // A body shorter than its Content-Length: say exactly that, so a truncating middlebox is
  // told apart from a server that hung up.
  if (step == Step::kRead && ec != http::error::body_limit && parser_ &&
      parser_->is_header_done() && !parser_->is_done()) {
    auto total = parser_->content_length();
    auto left = parser_->content_length_remaining();
    if (total && left && *left <= *total) {
      return Unavailable(what + " failed: the body ended after " + std::to_string(*total - *left) +
                         " of " + std::to_string(*total) + " bytes (" + internal::ErrorText(ec) +
                         ")");
    }
  }
  if (int reason = internal::SslReason(ec); reason != 0) {
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      long vr = SSL_get_verify_result(stream_->native_handle());
      std::string detail = X509_verify_cert_error_string(vr);
      if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        detail += ": the server certificate is not issued for " + endpoint_->tls_name;
      }
      return Unauthenticated(what + " failed: " + internal::ErrorText(ec) + " (" + detail + ")");
    }
    if (internal::IsCertificateAlert(reason)) {
      return Unauthenticated(what + " failed: " +
                             (has_client_cert_
                                  ? "the server rejected the client certificate"
                                  : "the server requires a client certificate and none is "
                                    "configured") +
                             " (" + internal::ErrorText(ec) + ")");
    }
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      return Unavailable(what + " failed: the server closed the connection");
    }
    // Other handshake failures (no shared protocol, not a TLS port) are configuration errors.
    if (step == Step::kHandshake) {
      return FailedPrecondition(what + " failed: " + internal::ErrorText(ec));
    }
    return Unavailable(what + " failed: " + internal::ErrorText(ec));
  }
  if (ec == http::error::body_limit) {
    return ResourceExhausted(what + " failed: the response body exceeds " +
                             std::to_string(options_.max_response_bytes) + " bytes");
  }
  return Unavailable(what + " failed: " + internal::ErrorText(ec));
}

void HttpsClient::Impl::CloseSocket() {
  connected_ = false;
  if (!stream_) return;
  beast::error_code ignored;
  beast::get_lowest_layer(*stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(*stream_).close();
}

void HttpsClient::Impl::Close() {
  if (connected_ && stream_) {
    // Send close_notify so the server sees an orderly end rather than a truncation. Bounded:
    // a server that never answers the shutdown does not hold us up.
    ArmTimer(std::min<std::chrono::milliseconds>(options_.step_timeout,
                                                 std::chrono::milliseconds(2000)));
    stream_->async_shutdown([](beast::error_code) {});
    ioc_.restart();
    ioc_.run();
  }
  CloseSocket();
}

HttpsClient::HttpsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsClient::~HttpsClient() = default;

Result<std::unique_ptr<HttpsClient>> HttpsClient::Create(HttpsClientOptions options) {
  DM_ASSIGN_OR_RETURN(HttpsUrl server, ParseHttpsUrl(options.server_url));
  if (options.step_timeout.count() <= 0) return InvalidArgument("step_timeout must be positive");
  if (options.retry.max_attempts < 1) return InvalidArgument("retry.max_attempts must be >= 1");
  SecretBytes key = std::move(options.client_key_pem);
  try {
    auto impl = std::make_unique<Impl>(std::move(options));
    DM_RETURN_IF_ERROR(impl->Init(server, key));
    return std::unique_ptr<HttpsClient>(new HttpsClient(std::move(impl)));
  } catch (const std::exception& e) {  // Asio throws only on resource exhaustion here
    return Internal(std::string("cannot create the HTTPS client: ") + e.what());
  }
}

Result<HttpResponse> HttpsClient::Post(std::string_view path_or_url, std::string_view body,
                                       std::string_view content_type, const HttpHeaders& headers) {
  return impl_->Post(path_or_url, body, content_type, headers);
}

Result<HttpResponse> HttpsClient::PostOnce(std::string_view path_or_url, std::string_view body,
                                           std::string_view content_type,
                                           const HttpHeaders& headers) {
  return impl_->PostOnce(path_or_url, body, content_type, headers);
}

Result<HttpResponse> HttpsClient::GetOnce(std::string_view path_or_url,
                                          const HttpHeaders& headers) {
  return impl_->SendOnce(http::verb::get, path_or_url, {}, {}, headers);
}

void HttpsClient::Close() { impl_->Close(); }
uint64_t HttpsClient::connections_opened() const { return impl_->connections_opened(); }
uint64_t HttpsClient::connections_resumed() const { return impl_->connections_resumed(); }
int HttpsClient::last_attempts() const { return impl_->last_attempts(); }

}  // namespace dm::transport
