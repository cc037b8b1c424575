#include "samples/server/testing/test_server.h"

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

}  // namespace dm::server::testing
