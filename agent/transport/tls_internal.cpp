#include "agent/transport/tls_internal.h"

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace dm::transport::internal {

Status ConfigureCommonTls(ssl::context& ctx) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    ERR_clear_error();
    return Internal("cannot set TLS 1.2 as the minimum protocol version");
  }
  // TLS 1.2 with forward-secret AEAD suites only (TLS 1.3's are all AEAD): no CBC, no RSA key
  // exchange, whatever OpenSSL's defaults of the day allow.
  static constexpr char kTls12Ciphers[] =
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
  if (SSL_CTX_set_cipher_list(ctx.native_handle(), kTls12Ciphers) != 1) {
    ERR_clear_error();
    return Internal("cannot restrict TLS 1.2 to AEAD cipher suites");
  }
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  return Status::Ok();
}

namespace {

// A PKCS#8 PEM key of the certificate's key type; nullptr when that is not what it is (the
// caller then falls back to the generic reader, which also gives the error text).
EVP_PKEY* DecodePrivateKey(const SecretBytes& key_pem, X509* cert) {
  constexpr std::string_view kPkcs8 = "-----BEGIN PRIVATE KEY-----";
  EVP_PKEY* pub = cert != nullptr ? X509_get0_pubkey(cert) : nullptr;
  const char* type = pub != nullptr ? EVP_PKEY_get0_type_name(pub) : nullptr;
  if (type == nullptr || key_pem.view().substr(0, kPkcs8.size()) != kPkcs8) return nullptr;
  EVP_PKEY* key = nullptr;
  OSSL_DECODER_CTX* dctx = OSSL_DECODER_CTX_new_for_pkey(
      &key, "PEM", "PrivateKeyInfo", type, OSSL_KEYMGMT_SELECT_KEYPAIR, nullptr, nullptr);
  if (dctx == nullptr) return nullptr;
  const auto* data = reinterpret_cast<const unsigned char*>(key_pem.data());
  size_t len = key_pem.size();
  if (OSSL_DECODER_from_data(dctx, &data, &len) != 1) {
    EVP_PKEY_free(key);
    key = nullptr;
  }
  OSSL_DECODER_CTX_free(dctx);
  ERR_clear_error();
  return key;
}

}  // namespace

Status LoadCertificateAndKey(ssl::context& ctx, std::string_view chain_pem,
                             const SecretBytes& key_pem, std::string_view who) {
  const std::string w(who);
  if (chain_pem.empty()) return InvalidArgument(w + " certificate is missing");
  if (key_pem.empty()) return InvalidArgument(w + " key is missing");
  beast::error_code ec;
  ctx.use_certificate_chain(net::buffer(chain_pem.data(), chain_pem.size()), ec);
  if (ec) return InvalidArgument(w + " certificate does not parse: " + ErrorText(ec));
  // The key type is the certificate's: a decoder asked for exactly that type and PKCS#8 is
  // about four times cheaper than OpenSSL 3's try-every-decoder PEM read, which dominated the
  // cost of each new session.
  EVP_PKEY* key = DecodePrivateKey(key_pem, SSL_CTX_get0_certificate(ctx.native_handle()));
  if (key == nullptr) {
    ctx.use_private_key(net::buffer(key_pem.data(), key_pem.size()), ssl::context::pem, ec);
  } else if (SSL_CTX_use_PrivateKey(ctx.native_handle(), key) != 1) {
    ec.assign(static_cast<int>(ERR_get_error()), net::error::get_ssl_category());
  }
  EVP_PKEY_free(key);
  if (ec &&
      ERR_GET_LIB(static_cast<unsigned long>(static_cast<unsigned int>(ec.value()))) ==
          ERR_LIB_X509 &&
      ERR_GET_REASON(static_cast<unsigned long>(static_cast<unsigned int>(ec.value()))) ==
          X509_R_KEY_VALUES_MISMATCH) {
    return InvalidArgument(w + " key does not match the " + w + " certificate");
  }
  if (ec) return InvalidArgument(w + " key does not parse: " + ErrorText(ec));
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    return InvalidArgument(w + " key does not match the " + w + " certificate");
  }
  return Status::Ok();
}

int SslReason(const beast::error_code& ec) {
  if (ec.category() != net::error::get_ssl_category()) return 0;
  return ERR_GET_REASON(static_cast<unsigned long>(static_cast<unsigned int>(ec.value())));
}

bool IsPeerClosed(const beast::error_code& ec) {
  return ec == net::error::eof || ec == http::error::end_of_stream ||
         ec == ssl::error::stream_truncated || ec == net::error::connection_reset ||
         ec == net::error::broken_pipe || ec == net::error::connection_aborted ||
         SslReason(ec) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

bool IsCertificateAlert(int reason) {
  switch (reason) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

bool IsIpLiteral(std::string_view host) {
  beast::error_code ec;
  net::ip::make_address(std::string(host), ec);
  return !ec;
}

std::string HostPort(std::string_view host, unsigned port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

std::string ErrorText(const beast::error_code& ec) {
  std::string m = ec.message();
  if (m.empty()) m = ec.category().name() + std::string(" error ") + std::to_string(ec.value());
  return m;
}

}  // namespace dm::transport::internal
