#include "agent/transport/server_certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace dm::transport::internal {

struct ServerCertificate::Pair {
  X509* leaf = nullptr;
  STACK_OF(X509) * chain = nullptr;  // what follows the leaf
  EVP_PKEY* key = nullptr;
  ~Pair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

ServerCertificate::ServerCertificate() = default;
ServerCertificate::~ServerCertificate() = default;

Status ServerCertificate::Set(std::string_view chain_pem, const SecretBytes& key_pem) {
  auto pair = std::make_shared<Pair>();
  pair->chain = sk_X509_new_null();
  BIO* certs = BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size()));
  while (X509* cert = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr)) {
    if (pair->leaf == nullptr) {
      pair->leaf = cert;
    } else {
      sk_X509_push(pair->chain, cert);
    }
  }
  BIO_free(certs);
  BIO* key = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  pair->key = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
  BIO_free(key);
  ERR_clear_error();  // the end of the PEM list leaves an error behind
  if (pair->leaf == nullptr) return InvalidArgument("the server certificate does not parse");
  if (pair->key == nullptr) return InvalidArgument("the server key does not parse");
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    return InvalidArgument("the server key is not the certificate's");
  }
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(pair);
  return Status::Ok();
}

void ServerCertificate::Install(ssl_ctx_st* ctx) { SSL_CTX_set_cert_cb(ctx, &OnHandshake, this); }

int ServerCertificate::OnHandshake(ssl_st* ssl, void* self) {
  auto* me = static_cast<ServerCertificate*>(self);
  std::shared_ptr<const Pair> pair;
  {
    std::lock_guard<std::mutex> lock(me->mu_);
    pair = me->current_;
  }
  if (!pair) return 1;  // nothing set: the context's own certificate
  // SSL_use_cert_and_key takes its own references; `pair` may be replaced meanwhile.
  return SSL_use_cert_and_key(ssl, pair->leaf, pair->key, pair->chain, /*override=*/1) == 1 ? 1 : 0;
}

}  // namespace dm::transport::internal
