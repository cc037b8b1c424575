#include "samples/server/tls_material.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/ascii.h"
#include "samples/server/server_internal.h"

namespace dm::server {
namespace {

// Re-issued this long before it expires, so a server restarted now and then never presents an
// expired certificate.
constexpr auto kRenewBefore = std::chrono::hours(24 * 30);
constexpr auto kValidity = std::chrono::hours(24 * 90);
// The first line of server.pem (text before "-----BEGIN" is ignored by PEM readers): the names
// the certificate was issued for, so a start can tell whether it still fits.
constexpr char kNamesPrefix[] = "# dmserver names: ";

std::string NamesLine(const std::vector<std::string>& names) {
  std::string line = kNamesPrefix;
  for (size_t i = 0; i < names.size(); ++i) line += (i ? "," : "") + names[i];
  return line + "\n";
}

// The kept certificate, when it still fits: same names, from this CA, valid well past now.
std::optional<TlsMaterial> KeptCertificate(const StatePaths& paths, const std::string& names_line,
                                           const pki::CertificateAuthority& ca, TimePoint now) {
  auto cert = ReadFile(paths.server_cert);
  auto key = ReadSecretFile(paths.server_key);
  if (!cert.ok() || !key.ok()) return std::nullopt;
  if (cert->compare(0, names_line.size(), names_line) != 0) return std::nullopt;
  if (!pki::VerifyCertificate(*cert, ca.cert_pem, now + kRenewBefore).ok()) return std::nullopt;
  auto info = pki::ParseCertificate(*cert);
  auto public_key = pki::PublicKeyOf(*key);
  if (!info.ok() || !public_key.ok() || info->public_key_pem != *public_key) return std::nullopt;
  return TlsMaterial{.cert_chain_pem = cert->substr(names_line.size()) + ca.cert_pem,
                     .key_pem = std::move(*key),
                     .issued_now = false};
}

}  // namespace

std::vector<std::string> ServerNames(const ServerOptions& options) {
  std::vector<std::string> candidates = {
      "127.0.0.1",         "localhost",      options.listen_address,
      options.public_host, options.idp_host, options.admin_listen_address};
  if (!options.enrollment_domain.empty()) {
    candidates.push_back("enterpriseenrollment." + AsciiLower(options.enrollment_domain));
  }
  candidates.insert(candidates.end(), options.extra_names.begin(), options.extra_names.end());
  std::vector<std::string> names;
  for (const std::string& n : candidates) {
    if (n.empty() || n == "0.0.0.0" || n == "::") continue;
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  return names;
}

Result<TlsMaterial> LoadTlsMaterial(const ServerOptions& options,
                                    const pki::CertificateAuthority& ca, TimePoint now) {
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
      return InvalidArgument("--tls-cert and --tls-key go together");
    }
    DM_ASSIGN_OR_RETURN(std::string chain, ReadFile(options.tls_cert_file));
    DM_ASSIGN_OR_RETURN(SecretBytes key, ReadSecretFile(options.tls_key_file));
    DM_ASSIGN_OR_RETURN(pki::CertInfo leaf, pki::ParseCertificate(chain));
    DM_ASSIGN_OR_RETURN(std::string public_key, pki::PublicKeyOf(key));
    if (leaf.public_key_pem != public_key) {
      return InvalidArgument(options.tls_key_file.string() + " is not the key of the first " +
                             "certificate in " + options.tls_cert_file.string());
    }
    if (leaf.not_after <= now) {
      return FailedPrecondition(options.tls_cert_file.string() + " has expired");
    }
    return TlsMaterial{.cert_chain_pem = chain, .key_pem = std::move(key), .issued_now = false};
  }
  const StatePaths paths = PathsFor(options.state_dir);
  const std::vector<std::string> names = ServerNames(options);
  const std::string names_line = NamesLine(names);
  if (auto kept = KeptCertificate(paths, names_line, ca, now)) return std::move(*kept);

  pki::IssueOptions issue;
  issue.common_name = !options.public_host.empty() ? options.public_host : names.front();
  issue.not_before = now - std::chrono::hours(1);
  issue.validity = kValidity;
  issue.server_auth = true;
  for (const std::string& n : names) {
    (IsIpAddress(n) ? issue.ip_addresses : issue.dns_names).push_back(n);
  }
  DM_ASSIGN_OR_RETURN(pki::KeyPair key, pki::GenerateKeyPair(pki::KeyType::kEcP256));
  DM_ASSIGN_OR_RETURN(std::string cert, pki::IssueForPublicKey(ca, key.public_pem, issue));
  DM_RETURN_IF_ERROR(WriteFile(paths.server_key, key.private_pem.view(), 0600));
  DM_RETURN_IF_ERROR(WriteFile(paths.server_cert, names_line + cert, 0644));
  spdlog::info("issued the TLS server certificate ({})",
               names_line.substr(2, names_line.size() - 3));
  return TlsMaterial{.cert_chain_pem = cert + ca.cert_pem,
                     .key_pem = std::move(key.private_pem),
                     .issued_now = true};
}

}  // namespace dm::server
