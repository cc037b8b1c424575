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
// POST /PinReset/authenticate (mutual TLS, as above) {"upn", "password", "totp"}
//   200 {"upn", "authenticated": true}; the user's sign-in for a destructive reset, which
//   needs no PIN reset service and so no consent; errors as above.
#include <spdlog/spdlog.h>

#include "container/local_pin_reset_service.h"
#include "samples/server/server_internal.h"

namespace dm::server {
namespace {

using nlohmann::json;

constexpr size_t kProtectorSize = 32;

Status CheckConsent(const Tenant& tenant) {
  return container::CheckPinResetConsent(tenant.consent_pin_reset_service,
                                         tenant.consent_pin_reset_client);
}

}  // namespace

transport::HttpResponse HandlePinResetPublicKey(ServerContext& ctx) {
  auto digest = Sha256Hex(ctx.pin_reset_public_key);
  if (!digest.ok()) return StatusError(digest.error());
  return JsonResponse(200, json{{"public_key", ctx.pin_reset_public_key},
                                {"algorithm", "RSA-OAEP-256"},
                                {"key_id", *digest}});
}

namespace {

// Both endpoints: an enrolled device of the user's tenant (mutual TLS), then the user's
// password and TOTP. Only `recover` needs the tenant's consent to the PIN reset apps and a
// protector; `authenticate` is the plain sign-in a destructive reset needs.
transport::HttpResponse SignInAndMaybeRecover(ServerContext& ctx,
                                              const transport::HttpRequest& request,
                                              const transport::PeerInfo& peer, bool recover) {
  if (!peer.has_client_cert) {
    return JsonError(401, "client_certificate_required",
                     "PIN reset needs the device's client certificate (mutual TLS)");
  }
  auto parsed = ParseJsonBody(request.body, 64 * 1024);
  if (!parsed.ok() || !parsed->is_object()) {
    return JsonError(400, "invalid_request", "the body is not a JSON object of at most 64 KiB");
  }
  json body = std::move(*parsed);
  std::string upn, totp, encrypted_b64;
  SecretBytes password;
  try {
    upn = body.value("upn", "");
    totp = body.value("totp", "");
    encrypted_b64 = body.value("encrypted_protector", "");
    password = SecretBytes(body.value("password", ""));
  } catch (const json::exception&) {
    return JsonError(400, "invalid_request",
                     "upn, password, totp and encrypted_protector must be strings");
  }
  if (upn.empty()) return JsonError(400, "invalid_request", "upn is required");
  Bytes encrypted;
  if (recover) {
    auto decoded = crypto::Base64Decode(encrypted_b64);
    if (encrypted_b64.empty() || !decoded.ok()) {
      return JsonError(400, "invalid_protector", "encrypted_protector (base64) is required");
    }
    encrypted = std::move(*decoded);
  }

  Store& store = ctx.store;
  auto lock = store.Lock();
  auto device = DeviceOfPeer(store, peer);
  if (!device.ok()) return JsonError(403, "device_not_enrolled", device.error().message());
  auto tenant = store.TenantById(device->tenant_id);
  if (!tenant.ok()) return StatusError(tenant.error());
  if (recover) {
    if (Status consent = CheckConsent(*tenant); !consent.ok()) {
      spdlog::warn("PIN reset refused for device {}: tenant {} lacks consent", device->dev_id,
                   tenant->name);
      return JsonError(403, "AADSTS650052", consent.message());
    }
  }
  // A user of another tenant is answered like a wrong password.
  auto user = store.FindUser(upn);
  const bool same_tenant = user.ok() && user->tenant_id == tenant->id;
  lock.unlock();  // VerifyUser takes it around its reads only
  Status auth = store.VerifyUser(same_tenant ? upn : std::string_view(), password, totp,
                                 {.upn = upn, .address = peer.remote_address});
  if (auth.code() == Code::kResourceExhausted) {
    return JsonError(429, "too_many_attempts", auth.message());
  }
  if (!auth.ok()) {
    if (auth.code() != Code::kUnauthenticated) return StatusError(auth);
    return JsonError(401, "invalid_grant", auth.message());
  }
  if (!recover) return JsonResponse(200, json{{"upn", user->upn}, {"authenticated", true}});
  // The label binds the protector to its user: Bob's sign-in cannot release Alice's.
  auto protector = crypto::RsaOaepDecrypt(ctx.pin_reset_key, encrypted,
                                          container::PinResetProtectorLabel(user->upn));
  if (!protector.ok() || protector->size() != kProtectorSize) {
    return JsonError(400, "invalid_protector",
                     "the encrypted PIN reset protector was not made for this service's key "
                     "and this user");
  }
  spdlog::info("PIN reset: protector released for {} on device {}", user->upn, device->dev_id);
  return JsonResponse(200, json{{"protector", crypto::Base64Encode(protector->span())}});
}

}  // namespace

transport::HttpResponse HandlePinResetRecover(ServerContext& ctx,
                                              const transport::HttpRequest& request,
                                              const transport::PeerInfo& peer) {
  return SignInAndMaybeRecover(ctx, request, peer, /*recover=*/true);
}

transport::HttpResponse HandlePinResetAuthenticate(ServerContext& ctx,
                                                   const transport::HttpRequest& request,
                                                   const transport::PeerInfo& peer) {
  return SignInAndMaybeRecover(ctx, request, peer, /*recover=*/false);
}

}  // namespace dm::server
