#include "agent/runtime/pin_reset_client.h"

#include <nlohmann/json.hpp>

#include "agent/transport/https_client.h"

namespace dm::agent {
namespace {

using nlohmann::json;

// The service's base URL from its recover URL ("https://h:p/PinReset/recover" -> "/PinReset").
std::string BasePath(const std::string& recover_url) {
  auto pos = recover_url.rfind('/');
  return pos == std::string::npos ? recover_url : recover_url.substr(0, pos);
}

// Builds the JSON body without leaving a copy of the password in a std::string that outlives
// the call: nlohmann keeps its own buffer, which is wiped right after serialisation.
std::string CredentialsBody(std::string_view user, const container::ResetCredentials& creds,
                            const std::string* protector_b64) {
  json body{{"upn", user}, {"password", creds.password.view()}, {"totp", creds.otp_code}};
  if (protector_b64 != nullptr) body["encrypted_protector"] = *protector_b64;
  std::string out = body.dump();
  std::string& pw = body["password"].get_ref<std::string&>();
  std::fill(pw.begin(), pw.end(), '\0');
  return out;
}

// The request may have reached the service and its answer been lost: the sign-in may have
// succeeded and used up the one-time code. Tell the user what to do. The container calls the
// service before it changes anything, so a failed call leaves the device as it was.
Status OutcomeUnknown(const Status& cause) {
  return Status(cause.code(),
                "PIN reset service: no usable answer to the sign-in (" + cause.message() +
                    "). The service may already have used your one-time code and will not "
                    "accept it again: wait for the next code from your authenticator app and try "
                    "again. Nothing on this device was changed.");
}

}  // namespace

RemotePinResetService::RemotePinResetService(EnrollmentState state,
                                             std::unique_ptr<transport::HttpsClient> client)
    : state_(std::move(state)), client_(std::move(client)) {}

RemotePinResetService::~RemotePinResetService() = default;

Result<std::unique_ptr<RemotePinResetService>> RemotePinResetService::Connect(Device& device) {
  DM_ASSIGN_OR_RETURN(EnrollmentState state, LoadEnrollment(device.db()));
  if (state.pin_reset_url.empty()) {
    return FailedPrecondition(
        "the device is not enrolled with a PIN reset service: enroll it with `dmagent enroll`");
  }
  DM_ASSIGN_OR_RETURN(
      transport::HttpsClientOptions opts,
      ServiceClientOptions(device.db(), device.state_dir(), state, state.pin_reset_url));
  opts.step_timeout = std::chrono::seconds(30);
  DM_ASSIGN_OR_RETURN(auto client, transport::HttpsClient::Create(std::move(opts)));
  return std::unique_ptr<RemotePinResetService>(
      new RemotePinResetService(std::move(state), std::move(client)));
}

Result<std::string> RemotePinResetService::PublicKeyPem() {
  if (state_.pin_reset_public_key_pem.empty()) {
    return FailedPrecondition("no PIN reset service key was provisioned at enrollment");
  }
  return state_.pin_reset_public_key_pem;
}

Result<std::string> RemotePinResetService::Call(std::string_view path, const std::string& body) {
  // Sent once, never retried: the body carries the user's one-time code, which the service
  // accepts only once. A retry after a lost answer would be refused as a wrong code although
  // the first attempt may have succeeded.
  Result<transport::HttpResponse> sent = client_->PostOnce(
      BasePath(state_.pin_reset_url) + std::string(path), body, "application/json");
  if (!sent.ok()) {
    const Code code = sent.error().code();
    if (code == Code::kUnavailable || code == Code::kDeadlineExceeded) {
      return OutcomeUnknown(sent.error());
    }
    return sent.error();
  }
  const transport::HttpResponse& resp = *sent;
  if (resp.status == 200) return resp.body;
  json err = json::parse(resp.body, nullptr, false);
  std::string message = err.is_object() ? err.value("message", "") : "";
  std::string text = "PIN reset service: " + (message.empty() ? resp.body : message);
  if (resp.status == 401) return Unauthenticated(text);
  if (resp.status == 403) return PermissionDenied(text);
  // A server error may come after the code was checked (and so used up).
  if (resp.status >= 500) return OutcomeUnknown(transport::HttpStatusToStatus(resp));
  return transport::HttpStatusToStatus(resp).WithContext(text);
}

Status RemotePinResetService::Authenticate(std::string_view user,
                                           const container::ResetCredentials& creds) {
  return Call("/authenticate", CredentialsBody(user, creds, nullptr)).status();
}

Result<SecretBytes> RemotePinResetService::RecoverProtector(
    std::string_view user, std::span<const uint8_t> encrypted_protector,
    const container::ResetCredentials& creds) {
  std::string b64 = crypto::Base64Encode(encrypted_protector);
  DM_ASSIGN_OR_RETURN(std::string body, Call("/recover", CredentialsBody(user, creds, &b64)));
  json answer = json::parse(body, nullptr, false);
  if (!answer.is_object() || !answer.contains("protector")) {
    return InvalidArgument("PIN reset service answered without a protector");
  }
  std::string& b = answer["protector"].get_ref<std::string&>();
  auto raw = crypto::Base64Decode(b);
  std::fill(b.begin(), b.end(), '\0');
  if (!raw.ok()) return InvalidArgument("PIN reset service sent a protector that is not base64");
  SecretBytes protector(raw->data(), raw->size());
  std::fill(raw->begin(), raw->end(), 0);
  return protector;
}

}  // namespace dm::agent
