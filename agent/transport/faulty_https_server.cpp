#include "agent/transport/faulty_https_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "base/pki.h"

namespace dm::transport {
namespace {

// Every blocking read or write gives up after this long, so a client that went away can never
// hold a connection thread (and so the test) forever.
constexpr int kIoTimeoutSeconds = 10;
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 16u << 20;

std::string OpenSslError(std::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return std::string(what) + ": " + buf;
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// The serialised response, and where its body starts (faults cut inside the body).
struct Wire {
  std::string bytes;
  size_t body_offset = 0;
};

Wire Serialise(const HttpResponse& r) {
  Wire w;
  w.bytes =
      "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(ReasonPhrase(r.status)) + "\r\n";
  for (const auto& [name, value] : r.headers) {
    if (HeaderNameEquals(name, "Content-Length") || HeaderNameEquals(name, "Connection") ||
        HeaderNameEquals(name, "Transfer-Encoding")) {
      continue;
    }
    w.bytes += name + ": " + value + "\r\n";
  }
  w.bytes += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
  w.body_offset = w.bytes.size();
  w.bytes += r.body;
  return w;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// Parses the request line and header fields of `head` (without the final CRLF CRLF).
bool ParseHead(std::string_view head, HttpRequest& req, size_t& content_length) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  req.method = std::string(line.substr(0, sp1));
  req.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  content_length = 0;
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 2);
    eol = head.find("\r\n");
    std::string_view field = head.substr(0, eol);
    size_t colon = field.find(':');
    if (colon == std::string_view::npos) return false;
    std::string name(field.substr(0, colon));
    std::string value = Trim(field.substr(colon + 1));
    if (HeaderNameEquals(name, "Transfer-Encoding")) return false;  // not supported here
    if (HeaderNameEquals(name, "Content-Length")) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (ec != std::errc() || p != value.data() + value.size()) return false;
    }
    req.headers.emplace_back(std::move(name), std::move(value));
  }
  return content_length <= kMaxBodyBytes;
}

void ResetSocket(int fd) {
  // SO_LINGER 0: close() sends RST instead of FIN and drops anything unsent.
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

class FaultyHttpsServer::Impl {
 public:
  Impl(HttpHandler handler) : handler_(std::move(handler)) {}
  ~Impl() {
    Stop();
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  Status Init(const FaultyHttpsServerOptions& o);
  void Stop();

  std::deque<Fault> faults_;
  mutable std::mutex mu_;
  std::atomic<int> requests_{0};
  std::atomic<int> handled_{0};
  uint16_t port_ = 0;

 private:
  void AcceptLoop();
  void Serve(int fd, std::string remote);
  Fault NextFault();
  bool ReadMore(SSL* ssl, std::string& buf);
  bool WriteAll(SSL* ssl, std::string_view bytes);

  HttpHandler handler_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // under mu_
  std::set<int> open_fds_;                // under mu_
};

Status FaultyHttpsServer::Impl::Init(const FaultyHttpsServerOptions& o) {
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (ctx_ == nullptr) return Internal(OpenSslError("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);

  BioPtr chain(BIO_new_mem_buf(o.cert_chain_pem.data(), static_cast<int>(o.cert_chain_pem.size())));
  X509* leaf = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return InvalidArgument(OpenSslError("server certificate"));
  const int used = SSL_CTX_use_certificate(ctx_, leaf);
  X509_free(leaf);
  if (used != 1) return InvalidArgument(OpenSslError("server certificate"));
  while (X509* extra = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)) {
    SSL_CTX_add_extra_chain_cert(ctx_, extra);  // takes ownership
  }
  ERR_clear_error();  // the loop ends on "no start line"

  BioPtr key_bio(BIO_new_mem_buf(o.key_pem.data(), static_cast<int>(o.key_pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return InvalidArgument(OpenSslError("server key"));
  const int key_used = SSL_CTX_use_PrivateKey(ctx_, key);
  EVP_PKEY_free(key);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx_) != 1) {
    return InvalidArgument(OpenSslError("server key"));
  }

  if (!o.client_ca_pem.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
    BioPtr cas(BIO_new_mem_buf(o.client_ca_pem.data(), static_cast<int>(o.client_ca_pem.size())));
    int added = 0;
    while (X509* ca = PEM_read_bio_X509(cas.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, ca);
      X509_free(ca);
      ++added;
    }
    ERR_clear_error();
    if (added == 0) return InvalidArgument("client CA bundle holds no certificate");
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    return Internal(std::string("bind/listen: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void FaultyHttpsServer::Impl::AcceptLoop() {
  // A write to a connection the client has reset raises SIGPIPE in the writing thread; blocked
  // here (and inherited by the connection threads) it only makes the write fail with EPIPE,
  // without touching the disposition of the test process (whose children inherit it).
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (!stopping_) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // Stop() shut the listening socket down
    }
    timeval tv{kIoTimeoutSeconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char ip[INET_ADDRSTRLEN] = "";
    ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_fds_.insert(fd);
    connections_.emplace_back([this, fd, remote = std::string(ip)] { Serve(fd, remote); });
  }
}

Fault FaultyHttpsServer::Impl::NextFault() {
  std::lock_guard<std::mutex> lock(mu_);
  if (faults_.empty()) return Fault::kNone;
  Fault f = faults_.front();
  faults_.pop_front();
  return f;
}

bool FaultyHttpsServer::Impl::ReadMore(SSL* ssl, std::string& buf) {
  char chunk[16 * 1024];
  int n = SSL_read(ssl, chunk, sizeof chunk);
  if (n <= 0) return false;
  buf.append(chunk, static_cast<size_t>(n));
  return true;
}

bool FaultyHttpsServer::Impl::WriteAll(SSL* ssl, std::string_view bytes) {
  while (!bytes.empty()) {
    int n = SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size()));
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void FaultyHttpsServer::Impl::Serve(int fd, std::string remote) {
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd);
  bool clean_close = false;  // send close_notify before closing
  if (SSL_accept(ssl) == 1) {
    PeerInfo peer;
    peer.remote_address = remote;
    if (X509* cert = SSL_get1_peer_certificate(ssl)) {
      if (SSL_get_verify_result(ssl) == X509_V_OK) {
        BioPtr out(BIO_new(BIO_s_mem()));
        PEM_write_bio_X509(out.get(), cert);
        char* data = nullptr;
        long size = BIO_get_mem_data(out.get(), &data);
        peer.client_cert_pem.assign(data, static_cast<size_t>(size));
        if (auto id = pki::IdentityOf(cert); id.ok()) {
          peer.client_cert_cn = std::move(id->subject_cn);
          peer.client_cert_serial_hex = std::move(id->serial_hex);
        }
        peer.has_client_cert = true;
      }
      X509_free(cert);
    }
    std::string buf;
    for (;;) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (buf.size() > kMaxHeaderBytes || !ReadMore(ssl, buf)) break;
      }
      if (head_end == std::string::npos) {
        clean_close = true;  // the client closed between requests (or sent garbage)
        break;
      }
      HttpRequest req;
      size_t content_length = 0;
      if (!ParseHead(std::string_view(buf).substr(0, head_end), req, content_length)) break;
      ++requests_;
      const Fault fault = NextFault();
      if (fault == Fault::kResetInRequest) {
        ResetSocket(fd);  // whatever of the body arrived is dropped unprocessed
        break;
      }
      buf.erase(0, head_end + 4);
      while (buf.size() < content_length) {
        if (!ReadMore(ssl, buf)) break;
      }
      if (buf.size() < content_length) break;
      req.body = buf.substr(0, content_length);
      buf.erase(0, content_length);

      HttpResponse resp;
      try {
        resp = handler_(req, peer);
      } catch (const std::exception&) {
        resp = HttpResponse{500, {}, "handler threw"};
      }
      ++handled_;
      const Wire wire = Serialise(resp);
      if (fault == Fault::kNone) {
        if (!WriteAll(ssl, wire.bytes)) break;
        continue;
      }
      const size_t cut = wire.body_offset + (wire.bytes.size() - wire.body_offset) / 2;
      (void)WriteAll(ssl, std::string_view(wire.bytes).substr(0, cut));
      if (fault == Fault::kTruncateBody) clean_close = true;
      if (fault == Fault::kResetInResponse) ResetSocket(fd);
      break;  // kTruncateBodyAbrupt: a plain close, no close_notify
    }
  }
  if (clean_close) SSL_shutdown(ssl);
  SSL_free(ssl);
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(fd);
  }
  ::close(fd);
}

void FaultyHttpsServer::Impl::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) {
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  }
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);  // wakes blocked reads
    threads.swap(connections_);
  }
  for (std::thread& t : threads) t.join();
}

FaultyHttpsServer::FaultyHttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaultyHttpsServer::~FaultyHttpsServer() { Stop(); }

Result<std::unique_ptr<FaultyHttpsServer>> FaultyHttpsServer::Start(
    FaultyHttpsServerOptions options, HttpHandler handler) {
  auto impl = std::make_unique<Impl>(std::move(handler));
  DM_RETURN_IF_ERROR(impl->Init(options));
  return std::unique_ptr<FaultyHttpsServer>(new FaultyHttpsServer(std::move(impl)));
}

void FaultyHttpsServer::InjectFaults(std::vector<Fault> faults) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->faults_.assign(faults.begin(), faults.end());
}

size_t FaultyHttpsServer::faults_left() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->faults_.size();
}

uint16_t FaultyHttpsServer::port() const { return impl_->port_; }
std::string FaultyHttpsServer::BaseUrl() const {
  return "https://127.0.0.1:" + std::to_string(impl_->port_);
}
int FaultyHttpsServer::requests_received() const { return impl_->requests_; }
int FaultyHttpsServer::handler_calls() const { return impl_->handled_; }
void FaultyHttpsServer::Stop() { impl_->Stop(); }

}  // namespace dm::transport
