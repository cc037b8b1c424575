// The TLS server certificate dmserver presents on both listeners: the operator's
// (--tls-cert/--tls-key), or one its own CA issues and keeps in the state directory
// (server.pem, server-key.pem), re-issued only when it no longer fits: expiring within 30 days,
// not from the current CA, or not naming every host the server now answers to.
#pragma once

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/pki.h"
#include "base/secret.h"
#include "base/status.h"
#include "samples/server/server.h"

namespace dm::server {

struct TlsMaterial {
  std::string cert_chain_pem;  // leaf first, then intermediates (or dmserver's CA)
  SecretBytes key_pem;
  bool issued_now = false;  // a new certificate was issued this time
};

// Every name the server answers to, for the certificate's subjectAltNames.
std::vector<std::string> ServerNames(const ServerOptions& options);

Result<TlsMaterial> LoadTlsMaterial(const ServerOptions& options,
                                    const pki::CertificateAuthority& ca, TimePoint now);

}  // namespace dm::server
