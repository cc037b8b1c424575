#include "agent/runtime/hello_issuer.h"

#include <nlohmann/json.hpp>

#include "agent/runtime/enrollment.h"
#include "agent/runtime/user_tokens.h"
#include "agent/transport/https_client.h"

namespace dm::agent {
namespace {

using nlohmann::json;

class RemoteHelloIssuer final : public container::CertificateIssuer {
 public:
  RemoteHelloIssuer(storage::Database& db, std::filesystem::path state_dir,
                    EnrollmentState enrollment)
      : db_(db), state_dir_(std::move(state_dir)), enrollment_(std::move(enrollment)) {}

  Result<std::string> Issue(std::string_view public_key_pem, std::string_view common_name,
                            TimePoint now) override {
    // The server names the certificate after the signed-in user's token, not the request.
    DM_ASSIGN_OR_RETURN(std::string token, CurrentUserToken(db_, state_dir_, now, common_name));
    if (token.empty()) {
      return Unauthenticated(std::string(common_name) +
                             " has no user token from the server: sign in with the password "
                             "and verification code first");
    }
    DM_ASSIGN_OR_RETURN(
        transport::HttpsClientOptions opts,
        ServiceClientOptions(db_, state_dir_, enrollment_, enrollment_.hello_cert_url));
    DM_ASSIGN_OR_RETURN(auto client, transport::HttpsClient::Create(std::move(opts)));
    json body{{"public_key", public_key_pem}};
    DM_ASSIGN_OR_RETURN(
        transport::HttpResponse resp,
        client->Post("", body.dump(), "application/json", {{"Authorization", "Bearer " + token}}));
    json answer = json::parse(resp.body, nullptr, false);
    if (resp.status != 200) {
      std::string why = answer.is_object() ? answer.value("message", resp.body) : resp.body;
      return transport::HttpStatusToStatus(resp).WithContext("Hello certificate request: " + why);
    }
    if (!answer.is_object() || !answer.contains("certificate")) {
      return InvalidArgument("Hello certificate answer has no certificate");
    }
    return answer["certificate"].get<std::string>();
  }

 private:
  storage::Database& db_;
  std::filesystem::path state_dir_;
  EnrollmentState enrollment_;
};

}  // namespace

Result<std::unique_ptr<container::CertificateIssuer>> MakeHelloIssuer(
    storage::Database& db, const std::filesystem::path& state_dir) {
  DM_ASSIGN_OR_RETURN(EnrollmentState e, LoadEnrollment(db));
  if (e.hello_cert_url.empty()) return std::unique_ptr<container::CertificateIssuer>();
  return std::unique_ptr<container::CertificateIssuer>(
      new RemoteHelloIssuer(db, state_dir, std::move(e)));
}

}  // namespace dm::agent
