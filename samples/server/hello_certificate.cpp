// POST /EnrollmentServer/hello-certificate (mutual TLS: an enrolled device)
// Request:  {"public_key": SPKI PEM, "upn": a user of the device's tenant}
// Response: {"certificate": PEM, CN = the UPN, clientAuth, issued by the server CA}
// The enterprise CA certifying a Windows Hello key (certificate trust).
#include <spdlog/spdlog.h>

#include "samples/server/server_internal.h"

namespace dm::server {

using nlohmann::json;

transport::HttpResponse HandleHelloCertificate(ServerContext& ctx,
                                               const transport::HttpRequest& request,
                                               const transport::PeerInfo& peer) {
  auto parsed = ParseJsonBody(request.body, 64 * 1024);
  json body = parsed.ok() ? std::move(*parsed) : json();
  if (!body.is_object() || !body.contains("public_key") || !body.contains("upn") ||
      !body["public_key"].is_string() || !body["upn"].is_string()) {
    return JsonError(400, "invalid_request", "expected {\"public_key\": PEM, \"upn\": UPN}");
  }
  const std::string upn = body["upn"];
  Store& store = ctx.store;
  auto lock = store.Lock();
  auto device = DeviceOfPeer(store, peer);
  if (!device.ok()) return JsonError(403, "device_not_enrolled", device.error().message());
  auto user = store.FindUser(upn);
  if (!user.ok() || user->tenant_id != device->tenant_id) {
    return JsonError(403, "unknown_user", upn + " is not a user of the device's tenant");
  }
  pki::IssueOptions issue;
  issue.common_name = user->upn;
  issue.not_before = store.clock().Now() - std::chrono::minutes(5);
  issue.validity = ctx.device_cert_validity;
  issue.client_auth = true;
  auto cert = pki::IssueForPublicKey(ctx.ca, body["public_key"].get<std::string>(), issue);
  if (!cert.ok()) return JsonError(400, "invalid_public_key", cert.error().message());
  spdlog::info("issued a Hello certificate for {} on device {}", user->upn, device->dev_id);
  return JsonResponse(200, json{{"certificate", *cert}});
}

}  // namespace dm::server
