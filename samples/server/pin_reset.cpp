// The networked PIN reset service, with the conventions of container::LocalPinResetService:
// protectors are RSA-OAEP (SHA-256, MGF1-SHA-256, no label) encrypted to the service's key; the
// tenant must have consented to both Entra apps (checked first, AADSTS650052 naming what is
// missing); then password and TOTP (one generic answer for any wrong factor, a code accepted
// once); only then is the 32-byte protector decrypted and returned.
//
// GET|POST /PinReset/publickey -> {"public_key": PEM, "algorithm": "RSA-OAEP-256",
//                                  "key_id": sha256 hex of the PEM}
// POST /PinReset/recover (mutual TLS: an enrolled device of the user's tenant)
//   {"upn", "password", "totp", "encrypted_protector": base64}
//   200 {"protector": base64}
//   401 {"error": "client_certificate_required" | "invalid_grant", "message"}
//   403 {"error": "device_not_enrolled" | "AADSTS650052", "message"}
//   400 {"error": "invalid_request" | "invalid_protector", "message"}
#include <spdlog/spdlog.h>

#include "container/local_pin_reset_service.h"
#include "samples/server/server_internal.h"

namespace dm::server {
namespace {

using nlohmann::json;

constexpr size_t kProtectorSize = 32;

// Both Entra apps or nothing, naming each missing one as Entra does.
Status CheckConsent(const Tenant& tenant) {
  std::string missing;
  if (!tenant.consent_pin_reset_service) {
    missing += std::string(container::kPinResetServiceAppName) + " (" +
               container::kPinResetServiceAppId + ")";
  }
  if (!tenant.consent_pin_reset_client) {
    if (!missing.empty()) missing += " and ";
    missing += std::string(container::kPinResetClientAppName) + " (" +
               container::kPinResetClientAppId + ")";
  }
  if (missing.empty()) return Status::Ok();
  return PermissionDenied("AADSTS650052: the tenant has not consented to " + missing +
                          "; an administrator must grant consent before PINs can be reset "
                          "(CAA20004)");
}

}  // namespace

transport::HttpResponse HandlePinResetPublicKey(ServerContext& ctx) {
  auto digest = Sha256Hex(ctx.pin_reset_public_key);
  if (!digest.ok()) return StatusError(digest.error());
  return JsonResponse(200, json{{"public_key", ctx.pin_reset_public_key},
                                {"algorithm", "RSA-OAEP-256"},
                                {"key_id", *digest}});
}

transport::HttpResponse HandlePinResetRecover(ServerContext& ctx,
                                              const transport::HttpRequest& request,
                                              const transport::PeerInfo& peer) {
  if (!peer.has_client_cert) {
    return JsonError(401, "client_certificate_required",
                     "PIN recovery needs the device's client certificate (mutual TLS)");
  }
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object()) return JsonError(400, "invalid_request", "the body is not a JSON object");
  std::string upn, totp, encrypted_b64;
  SecretBytes password;
  try {
    upn = body.value("upn", "");
    totp = body.value("totp", "");
    encrypted_b64 = body.value("encrypted_protector", "");
    password = SecretBytes(body.value("password", ""));
  } catch (const json::exception&) {
    return JsonError(400, "invalid_request",
                     "upn, password, totp and encrypted_protector "
                     "must be strings");
  }
  if (upn.empty() || encrypted_b64.empty()) {
    return JsonError(400, "invalid_request", "upn and encrypted_protector are required");
  }
  auto encrypted = crypto::Base64Decode(encrypted_b64);
  if (!encrypted.ok()) {
    return JsonError(400, "invalid_protector", "encrypted_protector is not base64");
  }

  Store& store = ctx.store;
  auto lock = store.Lock();
  auto device = DeviceOfPeer(store, peer);
  if (!device.ok()) return JsonError(403, "device_not_enrolled", device.error().message());
  auto tenant = store.TenantById(device->tenant_id);
  if (!tenant.ok()) return StatusError(tenant.error());
  if (Status consent = CheckConsent(*tenant); !consent.ok()) {
    spdlog::warn("PIN reset refused for device {}: tenant {} lacks consent", device->dev_id,
                 tenant->name);
    return JsonError(403, "AADSTS650052", consent.message());
  }
  // A user of another tenant is answered like a wrong password.
  auto user = store.FindUser(upn);
  const bool same_tenant = user.ok() && user->tenant_id == tenant->id;
  Status auth = store.VerifyUser(same_tenant ? upn : std::string_view(), password, totp);
  if (!auth.ok()) {
    if (auth.code() != Code::kUnauthenticated) return StatusError(auth);
    return JsonError(401, "invalid_grant", auth.message());
  }
  auto protector = crypto::RsaOaepDecrypt(ctx.pin_reset_key, *encrypted);
  if (!protector.ok() || protector->size() != kProtectorSize) {
    return JsonError(400, "invalid_protector",
                     "the encrypted PIN reset protector was not made for this service's key");
  }
  spdlog::info("PIN reset: protector released for {} on device {}", user->upn, device->dev_id);
  return JsonResponse(200, json{{"protector", crypto::Base64Encode(protector->span())}});
}

}  // namespace dm::server
