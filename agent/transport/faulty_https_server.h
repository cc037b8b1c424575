// Test support: an HTTPS/1.1 server that breaks connections on purpose, byte-exactly, for the
// network fault tests of the client (agent/transport) and of whole sessions (tests/e2e).
//
// transport::HttpsServer is a correct server and cannot misbehave; this one is a small blocking
// OpenSSL server (one thread per connection, keep-alive, Content-Length bodies only) whose next
// requests can be told to fail in the ways a real network or a crashing server fails:
//   kTruncateBody        the handler runs; full headers (Content-Length N), then N/2 body bytes,
//                        then TLS close_notify and close: a clean close mid-body
//   kTruncateBodyAbrupt  the same without close_notify (the TCP FIN only)
//   kResetInRequest      the request's headers arrive, then the connection is reset (RST); the
//                        handler never runs: nothing was processed
//   kResetInResponse     the handler runs; full headers and N/2 body bytes, then a reset: the
//                        server processed the request but the client never sees the answer
// Handler calls are counted, so a test can tell "processed twice" from "never processed".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/transport/https_server.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::transport {

enum class Fault { kNone, kTruncateBody, kTruncateBodyAbrupt, kResetInRequest, kResetInResponse };

struct FaultyHttpsServerOptions {
  std::string cert_chain_pem;  // leaf first
  SecretBytes key_pem;
  // Non-empty: a client certificate that verifies against these anchors is required, and is
  // handed to the handler in PeerInfo.
  std::string client_ca_pem;
};

class FaultyHttpsServer {
 public:
  // Listens on 127.0.0.1, a free port.
  static Result<std::unique_ptr<FaultyHttpsServer>> Start(FaultyHttpsServerOptions options,
                                                          HttpHandler handler);
  ~FaultyHttpsServer();
  FaultyHttpsServer(const FaultyHttpsServer&) = delete;
  FaultyHttpsServer& operator=(const FaultyHttpsServer&) = delete;

  // The next requests (in arrival order) get these faults; after them, requests are answered.
  void InjectFaults(std::vector<Fault> faults);
  // Faults not used up yet.
  size_t faults_left() const;

  uint16_t port() const;
  std::string BaseUrl() const;    // https://127.0.0.1:<port>
  int requests_received() const;  // requests whose headers arrived
  int handler_calls() const;      // requests the handler processed

  void Stop();  // closes every connection and joins the threads; idempotent

 private:
  class Impl;
  explicit FaultyHttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::transport
