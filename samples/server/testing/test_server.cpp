#include "samples/server/testing/test_server.h"

#include <fstream>
#include <iterator>

#include "samples/server/user_token.h"

namespace dm::server::testing {

ServerOptions TestServerOptions(const std::filesystem::path& state_dir) {
  ServerOptions o;
  o.state_dir = state_dir;
  o.port = 0;
  o.password_kdf = crypto::ScryptParams::ForTests();
  o.pin_reset_rsa_bits = 2048;  // 3072 by default
  return o;
}

Result<std::unique_ptr<transport::HttpsClient>> TestClient(const DmServer& server,
                                                           std::string cert_pem,
                                                           SecretBytes key_pem, std::string url) {
  transport::HttpsClientOptions o;
  o.server_url = url.empty() ? server.BaseUrl() : std::move(url);
  o.ca_bundle_pem = server.ca_cert_pem();
  o.client_cert_pem = std::move(cert_pem);
  o.client_key_pem = std::move(key_pem);
  o.step_timeout = std::chrono::seconds(10);
  o.retry.max_attempts = 1;
  return transport::HttpsClient::Create(std::move(o));
}

Result<std::string> UserTokenFor(DmServer& server, const std::filesystem::path& state_dir,
                                 std::string_view upn) {
  std::ifstream in(PathsFor(state_dir).idp_key);
  if (!in) return NotFound("no IdP key in " + state_dir.string());
  SecretBytes key{std::string_view(std::string(std::istreambuf_iterator<char>(in), {}))};
  DM_ASSIGN_OR_RETURN(UserTokenSigner signer,
                      UserTokenSigner::Create(std::move(key), server.IdpBaseUrl()));
  auto lock = server.store().Lock();
  DM_ASSIGN_OR_RETURN(User user, server.store().FindUser(upn));
  return signer.Issue(user.tenant_id, user.upn, server.store().Now(), kMaxUserTokenLifetime,
                      crypto::OsRandom());
}

std::string InitialAdminToken(const std::filesystem::path& state_dir) {
  std::ifstream in(PathsFor(state_dir).admin_token);
  std::string token;
  std::getline(in, token);
  return token;
}

}  // namespace dm::server::testing
