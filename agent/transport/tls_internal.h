// Helpers shared by the HTTPS client and server; not part of the transport's public API.
#pragma once

#include <string>
#include <string_view>

#include "agent/transport/asio.h"
#include "base/secret.h"
#include "base/status.h"

namespace dm::transport::internal {

// TLS 1.2 as the floor: MS-MDM requires TLS, and anything older is broken.
Status ConfigureCommonTls(ssl::context& ctx);

// Loads a certificate chain and its private key (from memory: Asio reads the key through a
// memory BIO over `key_pem`, no copy, no temp file) and checks they belong together. `who` is
// "client" or "server", for the messages.
Status LoadCertificateAndKey(ssl::context& ctx, std::string_view chain_pem,
                             const SecretBytes& key_pem, std::string_view who);

// The OpenSSL reason code of an error in Asio's SSL category, or 0 for any other error.
int SslReason(const beast::error_code& ec);

// The peer closed (or reset) the connection: EOF, TLS truncation, reset, broken pipe.
bool IsPeerClosed(const beast::error_code& ec);

// The peer's TLS alert says it did not accept our certificate (bad/unknown/expired/required).
bool IsCertificateAlert(int ssl_reason);

bool IsIpLiteral(std::string_view host);

// "host:port", with brackets around IPv6 literals.
std::string HostPort(std::string_view host, unsigned port);

// A clear message for an Asio/Beast/OpenSSL error.
std::string ErrorText(const beast::error_code& ec);

}  // namespace dm::transport::internal
