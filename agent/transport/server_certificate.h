// The certificate and key an HttpsServer presents, replaceable while it serves: every
// handshake takes the current pair through OpenSSL's certificate callback, so a renewed
// certificate is presented from the next connection on, and connections already open keep
// theirs. Internal to agent/transport.
#pragma once

#include <memory>
#include <mutex>
#include <string_view>

#include "base/secret.h"
#include "base/status.h"

struct ssl_ctx_st;
struct ssl_st;

namespace dm::transport::internal {

class ServerCertificate {
 public:
  ServerCertificate();
  ~ServerCertificate();
  ServerCertificate(const ServerCertificate&) = delete;
  ServerCertificate& operator=(const ServerCertificate&) = delete;

  // `chain_pem`: leaf first, then intermediates. Replaces the pair only when both parse and
  // the key is the leaf's (InvalidArgument otherwise, the current pair stays).
  Status Set(std::string_view chain_pem, const SecretBytes& key_pem);
  // From now on the context's handshakes present the current pair; must outlive `ctx`'s use.
  void Install(ssl_ctx_st* ctx);

 private:
  struct Pair;
  static int OnHandshake(ssl_st* ssl, void* self);

  std::mutex mu_;
  std::shared_ptr<const Pair> current_;
};

}  // namespace dm::transport::internal
