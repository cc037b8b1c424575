#include "agent/transport/client_revocation.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <ctime>
#include <vector>

namespace dm::transport::internal {

// One CRL in the stack OpenSSL's verification takes (X509_STORE_CTX_set0_crls).
class ClientRevocation::List {
 public:
  explicit List(X509_CRL* crl) : crls_(sk_X509_CRL_new_null()) {
    if (crls_ == nullptr || sk_X509_CRL_push(crls_, crl) == 0) {
      X509_CRL_free(crl);
      return;
    }
    // OpenSSL sorts the revoked entries on the first lookup; do it now, before any handshake
    // thread can see the list.
    ASN1_INTEGER* zero = ASN1_INTEGER_new();
    X509_REVOKED* ignored = nullptr;
    if (zero != nullptr) X509_CRL_get0_by_serial(crl, &ignored, zero);
    ASN1_INTEGER_free(zero);
  }
  ~List() { sk_X509_CRL_pop_free(crls_, X509_CRL_free); }
  List(const List&) = delete;
  List& operator=(const List&) = delete;

  bool ok() const { return crls_ != nullptr && sk_X509_CRL_num(crls_) == 1; }
  STACK_OF(X509_CRL) * crls() const { return crls_; }
  // Listed, or the list is out of date (fail closed, as the full verification does).
  bool Refuses(X509* cert) const {
    X509_CRL* crl = sk_X509_CRL_value(crls_, 0);
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
    if (next != nullptr && X509_cmp_current_time(next) <= 0) return true;
    X509_REVOKED* entry = nullptr;
    return X509_CRL_get0_by_cert(crl, &entry, cert) == 1;
  }

 private:
  STACK_OF(X509_CRL) * crls_;
};

struct ClientRevocation::Issuers {
  std::vector<X509*> certs;
  ~Issuers() {
    for (X509* c : certs) X509_free(c);
  }
};

ClientRevocation::ClientRevocation() : issuers_(std::make_unique<Issuers>()) {}
ClientRevocation::~ClientRevocation() = default;

Status ClientRevocation::SetIssuers(std::string_view client_ca_pem) {
  BIO* bio = BIO_new_mem_buf(client_ca_pem.data(), static_cast<int>(client_ca_pem.size()));
  if (bio == nullptr) return Internal("BIO_new_mem_buf");
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    issuers_->certs.push_back(cert);
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on "no start line"
  if (issuers_->certs.empty()) return InvalidArgument("client CA bundle holds no certificate");
  return Status::Ok();
}

void ClientRevocation::Install(SSL_CTX* ctx) {
  SSL_CTX_set_cert_verify_callback(ctx, &ClientRevocation::VerifyCallback, this);
  SSL_CTX_set_session_ticket_cb(ctx, nullptr, &ClientRevocation::DecryptTicketCallback, this);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

Status ClientRevocation::Set(std::string_view crl_pem) {
  if (crl_pem.size() > (16u << 20)) return InvalidArgument("CRL: too large");
  ERR_clear_error();
  BIO* bio = BIO_new_mem_buf(crl_pem.data(), static_cast<int>(crl_pem.size()));
  if (bio == nullptr) return Internal("BIO_new_mem_buf");
  X509_CRL* crl = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (crl == nullptr) return InvalidArgument("the CRL PEM does not parse");
  auto list = std::make_shared<const List>(crl);  // owns crl from here
  if (!list->ok()) return Internal("cannot hold the CRL");
  bool signed_by_issuer = false;
  for (X509* ca : issuers_->certs) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0 &&
        X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
      signed_by_issuer = true;
      break;
    }
  }
  ERR_clear_error();
  if (!signed_by_issuer) return InvalidArgument("the CRL is not signed by a client CA");
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
  if (next != nullptr && X509_cmp_current_time(next) <= 0) {
    return InvalidArgument("the CRL is out of date (nextUpdate has passed)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(list);
  return Status::Ok();
}

std::shared_ptr<const ClientRevocation::List> ClientRevocation::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

// The full verification, with the current CRL when there is one (the leaf's revocation is
// checked; the CA is the trust anchor).
int ClientRevocation::VerifyCallback(X509_STORE_CTX* ctx, void* self) {
  std::shared_ptr<const List> list = static_cast<ClientRevocation*>(self)->Current();
  if (list) {
    X509_STORE_CTX_set0_crls(ctx, list->crls());
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
  }
  const int ok = X509_verify_cert(ctx);
  if (list) X509_STORE_CTX_set0_crls(ctx, nullptr);  // `list` goes away with this frame
  return ok;
}

// A resumed session skips the certificate verification: a ticket whose certificate is revoked
// now is ignored, so the client gets a full handshake (which then fails).
SSL_TICKET_RETURN ClientRevocation::DecryptTicketCallback(SSL*, SSL_SESSION* session,
                                                          const unsigned char*, size_t,
                                                          SSL_TICKET_STATUS status, void* self) {
  switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
      std::shared_ptr<const List> list = static_cast<ClientRevocation*>(self)->Current();
      X509* peer = SSL_SESSION_get0_peer(session);
      if (list && peer != nullptr && list->Refuses(peer)) return SSL_TICKET_RETURN_IGNORE_RENEW;
      return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
      return SSL_TICKET_RETURN_IGNORE_RENEW;  // what OpenSSL does without a callback
    case SSL_TICKET_FATAL_ERR_MALLOC:
    case SSL_TICKET_FATAL_ERR_OTHER:
      return SSL_TICKET_RETURN_ABORT;
    default:
      return SSL_TICKET_RETURN_IGNORE;
  }
}

}  // namespace dm::transport::internal
