// POST /EnrollmentServer/hello-certificate (mutual TLS: an enrolled device)
// Authorization: Bearer <user token> (token_service.cpp) of a user of the device's tenant
// Request:  {"public_key": SPKI PEM}
// Response: {"certificate": PEM, CN = the token's UPN, clientAuth, issued by the server CA}
// The enterprise CA certifying a Windows Hello key (certificate trust). The name comes from
// the signed token, never from the request, and the certificate is recorded for the device,
// so only that user's PIN sign-in on that device can use it (token_service.cpp).
#include <spdlog/spdlog.h>

#include "base/log.h"
#include "samples/server/server_internal.h"

namespace dm::server {

using nlohmann::json;

transport::HttpResponse HandleHelloCertificate(ServerContext& ctx,
                                               const transport::HttpRequest& request,
                                               const transport::PeerInfo& peer) {
  auto parsed = ParseJsonBody(request.body, 64 * 1024);
  json body = parsed.ok() ? std::move(*parsed) : json();
  if (!body.is_object() || !body.contains("public_key") || !body["public_key"].is_string()) {
    return JsonError(400, "invalid_request", "expected {\"public_key\": PEM}");
  }
  const std::string authorization = request.Header("Authorization").value_or("");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer) {
    return JsonError(401, "invalid_token", "a user token (Authorization: Bearer) is required");
  }
  Store& store = ctx.store;
  auto lock = store.Lock();
  auto device = DeviceOfPeer(store, peer);
  if (!device.ok()) return JsonError(403, "device_not_enrolled", device.error().message());
  auto claims = ctx.user_tokens.Verify(authorization.substr(kBearer.size()), store.Now());
  auto user = claims.ok() ? store.FindUser(claims->upn) : Result<User>(claims.error());
  if (!user.ok() || user->tenant_id != device->tenant_id ||
      AsciiLower(claims->tenant_id) != AsciiLower(device->tenant_id)) {
    spdlog::warn(
        "device {}: Hello certificate refused: {}", Printable(device->dev_id),
        claims.ok() ? "the token's user is not of the device's tenant" : claims.error().message());
    return JsonError(401, "invalid_token", "the user token was not accepted");
  }
  pki::IssueOptions issue;
  issue.common_name = user->upn;
  issue.not_before = store.clock().Now() - std::chrono::minutes(5);
  issue.validity = ctx.device_cert_validity;
  issue.client_auth = true;
  auto cert = pki::IssueForPublicKey(ctx.ca, body["public_key"].get<std::string>(), issue);
  if (!cert.ok()) return JsonError(400, "invalid_public_key", cert.error().message());
  auto info = pki::ParseCertificate(*cert);
  if (!info.ok()) return StatusError(info.error());
  Status recorded = store.RecordHelloCertificate(info->serial_hex, device->dev_id, user->upn,
                                                 ToUnixSeconds(info->not_after));
  if (!recorded.ok()) return StatusError(recorded);
  spdlog::info("issued a Hello certificate for {} on device {}", Printable(user->upn),
               Printable(device->dev_id));
  return JsonResponse(200, json{{"certificate", *cert}});
}

}  // namespace dm::server
