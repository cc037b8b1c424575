#include "agent/transport/https_server.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "agent/transport/asio.h"
#include "agent/transport/client_revocation.h"
#include "agent/transport/server_certificate.h"
#include "agent/transport/tls_internal.h"
#include "base/pki.h"

namespace dm::transport {
namespace {

class ServerSession;

constexpr std::string_view kSessionIdContext = "dmagent-https";

// The verified peer certificate as PEM, or empty.
std::string PeerCertificatePem(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  std::string pem;
  if (PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0) pem.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return pem;
}

// Makes every certificate of a PEM bundle an acceptable client-certificate issuer that the server
// names in its CertificateRequest, so a client with several certificates can pick the right one.
Status AdvertiseClientCas(SSL_CTX* ctx, std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return Internal("BIO_new_mem_buf");
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add_client_CA(ctx, cert) == 1) ++added;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on "no start line"
  if (added == 0) return InvalidArgument("client CA bundle holds no certificate");
  return Status::Ok();
}

// What a connection counts against for the per-address limit: the IPv4 address (also when
// mapped into IPv6), or the /64 of an IPv6 address (one host usually holds a whole /64).
std::string SourceKey(const net::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  const net::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return net::ip::make_address_v4(net::ip::v4_mapped, v6).to_string();
  net::ip::address_v6::bytes_type bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return net::ip::address_v6(bytes).to_string() + "/64";
}

// Everything the connections share: options, handler, TLS context, io_context, acceptor and
// the registry of live sessions. HttpsServer::Impl is this class; sessions only see this name.
class ServerCore {
 public:
  ServerCore(HttpsServerOptions options, HttpHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ssl_ctx_(ssl::context::tls_server),
        acceptor_(net::make_strand(ioc_)) {}

  ~ServerCore() { Stop(); }

  Status Init();
  void StartThreads();
  void Stop();

  const HttpsServerOptions& options() const { return options_; }
  ssl::context& ssl_ctx() { return ssl_ctx_; }
  Status SetRevocationList(std::string_view crl_pem) {
    if (options_.client_cert_mode == ClientCertMode::kNone) {
      return FailedPrecondition("the server does not ask for client certificates");
    }
    return revocation_.Set(crl_pem);
  }
  Status SetCertificate(std::string_view chain_pem, const SecretBytes& key_pem) {
    return certificate_.Set(chain_pem, key_pem);
  }
  HttpResponse Handle(const HttpRequest& request, const PeerInfo& peer);

  // A connection is counted from accept until its session object is destroyed, which every
  // way a session ends (close, error, timeout, Stop) comes to.
  void Unregister(uint64_t id) {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    auto count = per_source_.find(it->second.source);
    if (count != per_source_.end() && --count->second == 0) per_source_.erase(count);
    sessions_.erase(it);
    --active_;
  }
  void CountRequest() { ++requests_; }
  // Requests read and not yet answered (Stop waits for them); `draining_` makes sessions close
  // after their answer instead of reading the next request.
  void BeginRequest() { ++busy_; }
  void EndRequest() { --busy_; }
  bool draining() const { return draining_; }

  uint16_t port_ = 0;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> active_{0};
  std::atomic<uint64_t> requests_{0};

 private:
  struct Admission {
    std::optional<uint64_t> id;  // empty: over a limit, nothing counted
    size_t open = 0;             // connections open (before this one)
    size_t open_from_source = 0;
  };
  struct Entry {
    std::weak_ptr<ServerSession> session;  // set once the session exists
    std::string source;
  };

  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  Admission Admit(const std::string& source);
  void Attach(uint64_t id, const std::shared_ptr<ServerSession>& session);
  void LogRefusal(const std::string& source, const Admission& a);

  HttpsServerOptions options_;
  HttpHandler handler_;
  internal::ClientRevocation revocation_;    // before ssl_ctx_, whose handshakes call it
  internal::ServerCertificate certificate_;  // likewise
  ssl::context ssl_ctx_;
  std::mutex sessions_mu_;
  std::map<uint64_t, Entry> sessions_;
  std::map<std::string, size_t> per_source_;  // open connections per SourceKey
  uint64_t next_id_ = 0;
  std::mutex refusal_log_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_refusal_log_;
  // Declared after everything the sessions use: destroying the io_context destroys the sessions
  // still referenced by queued handlers, and they unregister from the members above.
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int> busy_{0};
};

// One TLS connection: handshake, then request/response turns until the peer closes, a timeout,
// or a response that closes. Mirrors the Beast async server examples: the session keeps itself
// alive through shared_from_this() in each pending handler, each step is bounded by
// expires_after(io_timeout).
class ServerSession : public std::enable_shared_from_this<ServerSession> {
 public:
  ServerSession(tcp::socket&& socket, ServerCore* server, uint64_t id)
      : stream_(std::move(socket), server->ssl_ctx()), server_(server), id_(id) {}
  ~ServerSession() {
    if (busy_) server_->EndRequest();
    server_->Unregister(id_);
  }

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&ServerSession::OnRun, shared_from_this()));
  }

  // Only called from HttpsServer::Stop() once no thread runs the io_context.
  void ForceClose() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

 private:
  const HttpsServerOptions& opts() const { return server_->options(); }
  void ArmTimer() { beast::get_lowest_layer(stream_).expires_after(opts().io_timeout); }

  void OnRun() {
    beast::error_code ec;
    tcp::endpoint remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      peer_.remote_address = remote.address().to_string();
      peer_.remote_port = remote.port();
    }
    ArmTimer();
    stream_.async_handshake(
        ssl::stream_base::server,
        beast::bind_front_handler(&ServerSession::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      spdlog::debug("TLS handshake from {} failed: {}",
                    internal::HostPort(peer_.remote_address, peer_.remote_port),
                    internal::ErrorText(ec));
      // The alert is on its way; linger so the client reads it instead of a reset caused by
      // closing with its request still unread.
      return Linger();
    }
    if (opts().client_cert_mode != ClientCertMode::kNone) {
      peer_.client_cert_pem = PeerCertificatePem(stream_.native_handle());
      if (!peer_.client_cert_pem.empty()) {
        peer_.has_client_cert = true;
        if (auto id = pki::IdentityOf(SSL_get0_peer_certificate(stream_.native_handle()));
            id.ok()) {
          peer_.client_cert_cn = std::move(id->subject_cn);
          peer_.client_cert_serial_hex = std::move(id->serial_hex);
        }
      }
    }
    DoRead();
  }

  void DoRead() {
    parser_.emplace();
    parser_->body_limit(opts().max_body_bytes);
    ArmTimer();
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&ServerSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream) return DoShutdown();
    if (ec == http::error::body_limit) {
      return SendError(413,
                       "request body exceeds " + std::to_string(opts().max_body_bytes) + " bytes",
                       /*discard_rest=*/true);
    }
    if (ec == http::error::header_limit) {
      return SendError(431, "request header too large", /*discard_rest=*/false);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return SendError(400, "malformed HTTP request: " + ec.message(), /*discard_rest=*/false);
    }
    if (ec) {
      // Timeout, reset or a TLS error: nothing sensible can be sent back.
      spdlog::debug("reading a request from {} failed: {}",
                    internal::HostPort(peer_.remote_address, peer_.remote_port),
                    internal::ErrorText(ec));
      return;
    }
    http::request<http::string_body> msg = parser_->release();
    // Only chunked is implemented; any other coding leaves the body's length unknown, so the
    // rest of the connection cannot be trusted (RFC 9112 section 6.1): 400 and close.
    if (auto te = msg.find(http::field::transfer_encoding); te != msg.end()) {
      std::string v(te->value());
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(v.begin());
      if (!HeaderNameEquals(v, "chunked")) {
        return SendError(400, "Transfer-Encoding '" + v.substr(0, 64) + "' is not implemented",
                         /*discard_rest=*/false);
      }
    }
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    server_->CountRequest();
    server_->BeginRequest();
    busy_ = true;
    HttpResponse res = server_->Handle(req, peer_);
    bool close = !msg.keep_alive();
    if (auto c = res.Header("Connection"); c && HeaderNameEquals(*c, "close")) close = true;
    Send(std::move(res), close, /*discard_rest=*/false);
  }

  void SendError(int status, const std::string& why, bool discard_rest) {
    spdlog::info("rejecting a request from {} with {}: {}",
                 internal::HostPort(peer_.remote_address, peer_.remote_port), status, why);
    HttpResponse res;
    res.status = status;
    res.headers = {{"Content-Type", "text/plain; charset=utf-8"}};
    res.body = why + "\n";
    Send(std::move(res), /*close=*/true, discard_rest);
  }

  void Send(HttpResponse res, bool close, bool discard_rest) {
    auto& out = response_.emplace();
    out.version(11);
    if (res.status < 100 || res.status > 599) {
      spdlog::error("handler returned invalid HTTP status {}; sending 500", res.status);
      res = HttpResponse{500, {}, "invalid status from handler\n"};
    }
    out.result(static_cast<unsigned>(res.status));
    for (const auto& [name, value] : res.headers) {
      // Framing is ours to decide.
      if (HeaderNameEquals(name, "Content-Length") || HeaderNameEquals(name, "Transfer-Encoding") ||
          HeaderNameEquals(name, "Connection")) {
        continue;
      }
      out.set(name, value);
    }
    if (out.find(http::field::server) == out.end())
      out.set(http::field::server, opts().server_name);
    out.body() = std::move(res.body);
    out.keep_alive(!close);
    out.prepare_payload();
    ArmTimer();
    http::async_write(stream_, out,
                      beast::bind_front_handler(&ServerSession::OnWrite, shared_from_this(), close,
                                                discard_rest));
  }

  void OnWrite(bool close, bool discard_rest, beast::error_code ec, size_t) {
    if (busy_) {
      busy_ = false;
      server_->EndRequest();
    }
    if (ec) return;  // the peer went away; the session ends
    if (discard_rest) return Discard();
    if (close || server_->draining()) return DoShutdown();
    DoRead();
  }

  // Reads and drops what the client is still sending of an oversized body, up to a bound.
  void Discard() {
    ArmTimer();
    stream_.async_read_some(
        net::buffer(scratch_),
        beast::bind_front_handler(&ServerSession::OnDiscard, shared_from_this()));
  }
  void OnDiscard(beast::error_code ec, size_t n) {
    discarded_ += n;
    if (ec || discarded_ > opts().max_discard_bytes) return DoShutdown();
    Discard();
  }

  void DoShutdown() {
    ArmTimer();
    stream_.async_shutdown(
        beast::bind_front_handler(&ServerSession::OnShutdown, shared_from_this()));
  }
  void OnShutdown(beast::error_code) {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  // After a failed handshake: half-close, absorb whatever the client still sends (bounded by the
  // timeout and scratch reads), then close.
  void Linger() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    ArmTimer();
    beast::get_lowest_layer(stream_).async_read_some(
        net::buffer(scratch_),
        beast::bind_front_handler(&ServerSession::OnLinger, shared_from_this()));
  }
  void OnLinger(beast::error_code ec, size_t n) {
    discarded_ += n;
    if (ec || discarded_ > opts().max_discard_bytes) {
      beast::get_lowest_layer(stream_).close();
      return;
    }
    Linger();
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  ServerCore* server_;
  uint64_t id_;
  bool busy_ = false;  // a request of ours is counted in the server's busy count
  PeerInfo peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::array<char, 16 * 1024> scratch_{};
  size_t discarded_ = 0;
};

}  // namespace

class HttpsServer::Impl : public ServerCore {
 public:
  using ServerCore::ServerCore;
};

Status ServerCore::Init() {
  DM_RETURN_IF_ERROR(internal::ConfigureCommonTls(ssl_ctx_));
  DM_RETURN_IF_ERROR(internal::LoadCertificateAndKey(ssl_ctx_, options_.cert_chain_pem,
                                                     options_.key_pem, "server"));
  // The same pair again, replaceable later (SetCertificate).
  DM_RETURN_IF_ERROR(certificate_.Set(options_.cert_chain_pem, options_.key_pem));
  certificate_.Install(ssl_ctx_.native_handle());
  beast::error_code ec;
  options_.key_pem.Wipe();  // OpenSSL holds the key from here on
  // Send exactly the configured chain. Otherwise OpenSSL completes it from the trust store
  // (which holds the client CA), so clients would see our root and report "self-signed
  // certificate in certificate chain" instead of the real problem.
  SSL_CTX_set_mode(ssl_ctx_.native_handle(), SSL_MODE_NO_AUTO_CHAIN);

  if (options_.client_cert_mode != ClientCertMode::kNone) {
    if (options_.client_ca_pem.empty()) {
      return InvalidArgument("client certificates requested but no client CA given");
    }
    ssl_ctx_.add_certificate_authority(net::buffer(options_.client_ca_pem), ec);
    if (ec) return InvalidArgument("client CA does not parse: " + internal::ErrorText(ec));
    DM_RETURN_IF_ERROR(AdvertiseClientCas(ssl_ctx_.native_handle(), options_.client_ca_pem));
    ssl::verify_mode mode = ssl::verify_peer;
    if (options_.client_cert_mode == ClientCertMode::kRequired) {
      mode |= ssl::verify_fail_if_no_peer_cert;
    }
    ssl_ctx_.set_verify_mode(mode);
    DM_RETURN_IF_ERROR(revocation_.SetIssuers(options_.client_ca_pem));
    revocation_.Install(ssl_ctx_.native_handle());
    if (!options_.client_crl_pem.empty()) {
      DM_RETURN_IF_ERROR(revocation_.Set(options_.client_crl_pem));
    }
    // Session resumption with client verification needs a session id context.
    SSL_CTX_set_session_id_context(ssl_ctx_.native_handle(),
                                   reinterpret_cast<const unsigned char*>(kSessionIdContext.data()),
                                   static_cast<unsigned int>(kSessionIdContext.size()));
  } else {
    ssl_ctx_.set_verify_mode(ssl::verify_none);
  }

  if (options_.threads < 1) return InvalidArgument("threads must be >= 1");
  if (options_.io_timeout.count() <= 0) return InvalidArgument("io_timeout must be positive");
  net::ip::address addr = net::ip::make_address(options_.address, ec);
  if (ec) return InvalidArgument("bad listen address: " + options_.address);
  tcp::endpoint endpoint(addr, options_.port);
  const std::string where = internal::HostPort(options_.address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + where + ": " + internal::ErrorText(ec));
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return Internal("cannot read the bound port: " + internal::ErrorText(ec));
  return Status::Ok();
}

void ServerCore::StartThreads() {
  DoAccept();
  for (int i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] {
      try {
        ioc_.run();
      } catch (const std::exception& e) {
        spdlog::error("HTTPS server thread stopped by an exception: {}", e.what());
      }
    });
  }
  spdlog::info("HTTPS server listening on {}", internal::HostPort(options_.address, port_));
}

void ServerCore::DoAccept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         beast::bind_front_handler(&ServerCore::OnAccept, this));
}

void ServerCore::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor_.is_open() || ec == net::error::operation_aborted) return;
  if (ec) {
    spdlog::warn("accept failed: {}", internal::ErrorText(ec));  // e.g. out of descriptors
  } else {
    beast::error_code remote_ec;
    const tcp::endpoint remote = socket.remote_endpoint(remote_ec);
    const std::string source = remote_ec ? std::string("unknown") : SourceKey(remote.address());
    const Admission a = Admit(source);
    if (!a.id) {
      ++refused_;
      LogRefusal(source, a);
      beast::error_code ignored;
      socket.close(ignored);  // before any TLS work is spent on it
    } else {
      ++accepted_;
      auto session = std::make_shared<ServerSession>(std::move(socket), this, *a.id);
      Attach(*a.id, session);
      session->Run();
    }
  }
  DoAccept();
}

ServerCore::Admission ServerCore::Admit(const std::string& source) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  Admission a;
  a.open = sessions_.size();
  if (auto it = per_source_.find(source); it != per_source_.end()) a.open_from_source = it->second;
  if ((options_.max_connections > 0 && a.open >= options_.max_connections) ||
      (options_.max_connections_per_address > 0 &&
       a.open_from_source >= options_.max_connections_per_address)) {
    return a;
  }
  a.id = next_id_++;
  sessions_[*a.id] = Entry{{}, source};
  ++per_source_[source];
  ++active_;
  return a;
}

void ServerCore::Attach(uint64_t id, const std::shared_ptr<ServerSession>& session) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  if (auto it = sessions_.find(id); it != sessions_.end()) it->second.session = session;
}

void ServerCore::LogRefusal(const std::string& source, const Admission& a) {
  constexpr auto kInterval = std::chrono::minutes(1);
  constexpr size_t kMaxRemembered = 4096;  // a flood from many sources cannot grow this
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(refusal_log_mu_);
    auto it = last_refusal_log_.find(source);
    if (it != last_refusal_log_.end() && now - it->second < kInterval) return;
    if (it == last_refusal_log_.end() && last_refusal_log_.size() >= kMaxRemembered) {
      std::erase_if(last_refusal_log_, [&](const auto& e) { return now - e.second >= kInterval; });
      if (last_refusal_log_.size() >= kMaxRemembered) last_refusal_log_.clear();
    }
    last_refusal_log_[source] = now;
  }
  spdlog::warn(
      "refusing connections from {} on {}: {} open from there (limit {}), {} in all (limit {}); "
      "logged once a minute per source",
      source, internal::HostPort(options_.address, port_), a.open_from_source,
      options_.max_connections_per_address, a.open, options_.max_connections);
}

HttpResponse ServerCore::Handle(const HttpRequest& request, const PeerInfo& peer) {
  try {
    return handler_(request, peer);
  } catch (const std::exception& e) {
    spdlog::error("HTTP handler threw for {} {}: {}", request.method, request.target, e.what());
  } catch (...) {
    spdlog::error("HTTP handler threw a non-exception for {} {}", request.method, request.target);
  }
  return HttpResponse{
      500, {{"Content-Type", "text/plain; charset=utf-8"}}, "internal server error\n"};
}

void ServerCore::Stop() {
  if (stopped_.exchange(true)) return;
  // Accept nothing more, then give the requests being handled their answers.
  draining_ = true;
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  const auto deadline = std::chrono::steady_clock::now() + options_.stop_grace;
  while (busy_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ioc_.stop();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  // No thread runs the io_context any more, so the sockets can be touched directly. Closing them
  // now lets clients see the connection end instead of hanging until their own timeout.
  beast::error_code ignored;
  acceptor_.close(ignored);
  std::vector<std::shared_ptr<ServerSession>> live;
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (auto& [id, entry] : sessions_) {
      if (auto s = entry.session.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->ForceClose();
}

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsServer::~HttpsServer() { Stop(); }

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(HttpsServerOptions options,
                                                        HttpHandler handler) {
  if (!handler) return InvalidArgument("HTTPS server needs a handler");
  try {
    auto impl = std::make_unique<Impl>(std::move(options), std::move(handler));
    DM_RETURN_IF_ERROR(impl->Init());
    impl->StartThreads();
    return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
  } catch (const std::exception& e) {  // Asio throws only on resource exhaustion here
    return Internal(std::string("cannot start the HTTPS server: ") + e.what());
  }
}

uint16_t HttpsServer::port() const { return impl_->port_; }
const std::string& HttpsServer::address() const { return impl_->options().address; }
std::string HttpsServer::BaseUrl() const {
  return "https://" + internal::HostPort(impl_->options().address, impl_->port_);
}
Status HttpsServer::SetCertificate(std::string_view chain_pem, const SecretBytes& key_pem) {
  return impl_->SetCertificate(chain_pem, key_pem);
}

Status HttpsServer::SetRevocationList(std::string_view crl_pem) {
  return impl_->SetRevocationList(crl_pem);
}
void HttpsServer::Stop() { impl_->Stop(); }
uint64_t HttpsServer::connections_accepted() const { return impl_->accepted_; }
uint64_t HttpsServer::connections_refused() const { return impl_->refused_; }
uint64_t HttpsServer::active_connections() const { return impl_->active_; }
uint64_t HttpsServer::requests_handled() const { return impl_->requests_; }

}  // namespace dm::transport
