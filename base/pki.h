// X.509 operations shared by the agent (device and Hello certificates, enrollment CSR) and
// the reference server (its CA, device certificates). Keys and certificates travel as PEM;
// private keys only ever as SecretBytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/secret.h"
#include "base/status.h"

struct x509_st;

namespace dm::pki {

enum class KeyType { kEcP256, kRsa2048 };

struct KeyPair {
  SecretBytes private_pem;  // PKCS#8 PEM
  std::string public_pem;   // SubjectPublicKeyInfo PEM
};

Result<KeyPair> GenerateKeyPair(KeyType type);
// The SubjectPublicKeyInfo PEM of a private key.
Result<std::string> PublicKeyOf(const SecretBytes& private_pem);

struct CertInfo {
  std::string subject_cn;
  std::string issuer_cn;
  std::string serial_hex;
  std::string thumbprint;  // SHA-1 of the DER, upper-case hex, as Windows shows it
  TimePoint not_before;
  TimePoint not_after;
  std::string public_key_pem;
  bool is_ca = false;
};
Result<CertInfo> ParseCertificate(std::string_view cert_pem);

// Who a verified peer certificate names, read straight from OpenSSL's X509 (no PEM round trip,
// no key encoding): what a server needs on every connection.
struct CertIdentity {
  std::string subject_cn;
  std::string serial_hex;
};
Result<CertIdentity> IdentityOf(const x509_st* cert);

struct CertificateAuthority {
  std::string cert_pem;
  SecretBytes key_pem;
};

struct IssueOptions {
  std::string common_name;
  TimePoint not_before;
  std::chrono::seconds validity = std::chrono::hours(24 * 365);
  bool server_auth = false;
  bool client_auth = false;
  std::vector<std::string> dns_names;     // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
};

Result<CertificateAuthority> CreateCa(std::string_view common_name, TimePoint now,
                                      std::chrono::seconds validity);
// A PKCS#10 request signed by the key, subject CN = common_name.
Result<std::string> CreateCsr(const SecretBytes& private_pem, std::string_view common_name);
// Checks the CSR's signature; the subject comes from `options`, never from the request, so a
// device cannot choose its own identity.
Result<std::string> IssueFromCsr(const CertificateAuthority& ca, std::string_view csr_pem,
                                 const IssueOptions& options);
Result<std::string> IssueForPublicKey(const CertificateAuthority& ca,
                                      std::string_view public_key_pem, const IssueOptions& options);
Result<std::string> SelfSign(const SecretBytes& private_pem, const IssueOptions& options);
// PEM <-> the base64 DER that SOAP and provisioning documents carry. PemBase64 joins the base64
// lines of the first PEM block ("" when there is none); PemFromDer wraps DER under `label`
// ("CERTIFICATE", "CERTIFICATE REQUEST") in 64-column lines.
std::string PemBase64(std::string_view pem);
std::string PemFromDer(std::span<const uint8_t> der, std::string_view label);
// Every "CERTIFICATE" PEM block of a bundle, in order.
std::vector<std::string> SplitCertificatePems(std::string_view bundle);

// A v2 CRL signed by the CA listing `revoked_serials_hex` (as CertInfo::serial_hex spells
// them), valid from `this_update` for `validity` (nextUpdate), with a CRL number.
Result<std::string> CreateCrl(const CertificateAuthority& ca,
                              const std::vector<std::string>& revoked_serials_hex,
                              TimePoint this_update, std::chrono::seconds validity,
                              uint64_t crl_number);

// OK when `cert_pem` chains to `ca_pem` and is valid at `at`.
Status VerifyCertificate(std::string_view cert_pem, std::string_view ca_pem, TimePoint at);

}  // namespace dm::pki
