// The PIN reset service over HTTPS (dmserver's /PinReset/*), behind the same interface as the
// in-process service, so the container's reset code does not know which one it talks to.
// Mutual TLS with the device's enrollment identity: the service only answers enrolled devices.
// The calls that carry the user's one-time code are sent once, never retried (the service takes
// a code once); when their answer is lost (Unavailable / DeadlineExceeded, or a 5xx) the error
// tells the user to wait for the next authenticator code and try again.
#pragma once

#include <memory>

#include "agent/runtime/device.h"
#include "agent/runtime/enrollment.h"
#include "container/container.h"

namespace dm::transport {
class HttpsClient;
}

namespace dm::agent {

class RemotePinResetService final : public container::PinResetService {
 public:
  // FailedPrecondition when the device is not enrolled with a PIN reset service.
  static Result<std::unique_ptr<RemotePinResetService>> Connect(Device& device);
  ~RemotePinResetService() override;

  Result<std::string> PublicKeyPem() override;
  // Password + one-time code, checked by the service (destructive reset needs no consent).
  Status Authenticate(std::string_view user, const container::ResetCredentials& creds) override;
  Result<SecretBytes> RecoverProtector(std::string_view user,
                                       std::span<const uint8_t> encrypted_protector,
                                       const container::ResetCredentials& creds) override;

 private:
  RemotePinResetService(EnrollmentState state, std::unique_ptr<transport::HttpsClient> client);
  Result<std::string> Call(std::string_view path, const std::string& body);

  EnrollmentState state_;
  std::unique_ptr<transport::HttpsClient> client_;
};

}  // namespace dm::agent
