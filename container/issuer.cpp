#include "container/container.h"

namespace dm::container {

LocalCaIssuer::LocalCaIssuer(pki::CertificateAuthority ca, std::chrono::seconds validity)
    : ca_(std::move(ca)), validity_(validity) {}

Result<std::string> LocalCaIssuer::Issue(std::string_view public_key_pem,
                                         std::string_view common_name, TimePoint now) {
  pki::IssueOptions options;
  options.common_name = std::string(common_name);
  options.not_before = now;
  options.validity = validity_;
  options.client_auth = true;
  return pki::IssueForPublicKey(ca_, public_key_pem, options);
}

}  // namespace dm::container
