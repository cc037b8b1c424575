// The CRL an HTTPS server checks client certificates against (internal to the transport):
// swapped whole while handshakes run, consulted by the full verification and when a client
// offers to resume a TLS session.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string_view>

#include "base/status.h"

namespace dm::transport::internal {

class ClientRevocation {
 public:
  ClientRevocation();
  ~ClientRevocation();
  ClientRevocation(const ClientRevocation&) = delete;
  ClientRevocation& operator=(const ClientRevocation&) = delete;

  // The CAs whose CRLs are accepted. Once, before Install.
  Status SetIssuers(std::string_view client_ca_pem);
  // Hooks the checks into the context; `this` must outlive its handshakes. Without a CRL set
  // the checks change nothing. Turns off the server's session-id cache: resumption is by
  // ticket only, where a revoked certificate can be caught.
  void Install(SSL_CTX* ctx);
  // A CRL (PEM) signed by one of the issuers and not out of date; the old list stays otherwise.
  Status Set(std::string_view crl_pem);

 private:
  class List;
  std::shared_ptr<const List> Current() const;
  static int VerifyCallback(X509_STORE_CTX* ctx, void* self);
  static SSL_TICKET_RETURN DecryptTicketCallback(SSL* ssl, SSL_SESSION* session,
                                                 const unsigned char* key_name, size_t key_name_len,
                                                 SSL_TICKET_STATUS status, void* self);

  struct Issuers;
  std::unique_ptr<Issuers> issuers_;
  mutable std::mutex mu_;
  std::shared_ptr<const List> current_;
};

}  // namespace dm::transport::internal
