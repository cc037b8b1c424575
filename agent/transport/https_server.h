// A small HTTPS/1.1 server (Boost.Asio/Beast async, on its own io_context threads) for the
// reference server dmserver and for in-process tests of the client.
//
// TLS 1.2+, server certificate from memory, optional or required client certificates verified
// against a CA (the verified peer certificate is handed to the handler), keep-alive, a timeout on
// every handshake/read/write (which is also the keep-alive idle timeout), a request body
// limit answered with 413, and limits on open connections in all and per source address. Handlers
// run on the server's threads; with threads > 1 they run concurrently and must be thread-safe. A
// handler that throws yields a 500.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/transport/http_types.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::transport {

enum class ClientCertMode {
  kNone,      // do not ask for a client certificate
  kOptional,  // ask; a presented certificate must verify, but none is accepted too
  kRequired,  // the handshake fails without a certificate that verifies against client_ca_pem
};

struct PeerInfo {
  std::string remote_address;
  uint16_t remote_port = 0;
  bool has_client_cert = false;  // true only for a certificate that verified
  std::string client_cert_pem;
  std::string client_cert_cn;
  std::string client_cert_serial_hex;
};

struct HttpsServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port, see HttpsServer::port()

  std::string cert_chain_pem;  // leaf first, then intermediates
  SecretBytes key_pem;

  ClientCertMode client_cert_mode = ClientCertMode::kNone;
  std::string client_ca_pem;  // trust anchors for client certificates
  // A CRL (PEM) signed by a client CA: the certificates it lists fail the handshake, and so
  // does every client certificate once the CRL is out of date. Empty: no revocation check
  // until SetRevocationList.
  std::string client_crl_pem;

  std::chrono::milliseconds io_timeout{30'000};
  // Stop() stops accepting at once, then waits this long at most for requests being handled to
  // be answered before it closes every connection.
  std::chrono::milliseconds stop_grace{10'000};
  size_t max_body_bytes = 4u << 20;
  // After a 413 the server keeps reading (and discarding) up to this much of the oversized body,
  // so the client can finish sending and then read the 413 instead of hitting a reset.
  size_t max_discard_bytes = 64u << 20;
  // Connections open at once, in all and per source (an IPv4 address, an IPv6 /64): one over
  // a limit is closed right after accept, before any TLS work, and logged at most once a
  // minute per source. 0: no limit.
  size_t max_connections = 1024;
  size_t max_connections_per_address = 64;
  int threads = 1;
  std::string server_name = "dmagent-https/0.1";  // the Server header
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&, const PeerInfo&)>;

class HttpsServer {
 public:
  // Binds, listens and starts the threads. Fails on bad PEM, a key not matching the certificate,
  // a missing client CA when client certificates are requested, or a bind error.
  static Result<std::unique_ptr<HttpsServer>> Start(HttpsServerOptions options,
                                                    HttpHandler handler);
  ~HttpsServer();  // Stop()
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  uint16_t port() const;
  const std::string& address() const;
  // "https://127.0.0.1:<port>" (IPv6 addresses in brackets).
  std::string BaseUrl() const;

  // Replaces the CRL client certificates are checked against, for every handshake from now on
  // (a resumed TLS session is checked too: a revoked certificate gets a full handshake, which
  // fails). Refused, leaving the current list, unless it parses, is signed by a client CA and
  // is not out of date.
  Status SetRevocationList(std::string_view crl_pem);
  // Replaces the certificate chain (leaf first) and key presented from the next handshake on;
  // open connections keep theirs. Refused, leaving the current pair, unless the key is the
  // leaf's.
  Status SetCertificate(std::string_view chain_pem, const SecretBytes& key_pem);

  // Stops accepting, lets the requests being handled finish and their answers go out (up to
  // options.stop_grace), then drops open connections and joins the threads. Idempotent.
  void Stop();

  uint64_t connections_accepted() const;
  uint64_t connections_refused() const;  // over a connection limit
  uint64_t active_connections() const;
  uint64_t requests_handled() const;

 private:
  class Impl;
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::transport
