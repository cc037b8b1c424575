// What dmserver's HTTP handlers share (internal).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "agent/transport/http_types.h"
#include "agent/transport/https_server.h"
#include "base/pki.h"
#include "base/secret.h"
#include "base/status.h"
#include "samples/server/management.h"
#include "samples/server/store.h"
#include "samples/server/user_token.h"

namespace dm::server {

struct ServerContext {
  Store& store;
  ManagementService& management;
  const pki::CertificateAuthority& ca;
  const SecretBytes& pin_reset_key;
  const std::string& pin_reset_public_key;
  std::string base_url;      // https://public_host:port
  std::string idp_base_url;  // https://idp_host:port
  std::chrono::seconds device_cert_validity;
  const UserTokenSigner& user_tokens;  // the IdP's
};

// State files: written whole with `mode` and synced; read whole (NotFound when missing).
Status WriteFile(const std::filesystem::path& path, std::string_view content, mode_t mode);
Result<std::string> ReadFile(const std::filesystem::path& path);
Result<SecretBytes> ReadSecretFile(const std::filesystem::path& path);
bool IsIpAddress(std::string_view host);

transport::HttpResponse JsonResponse(int status, const nlohmann::json& body);
transport::HttpResponse JsonError(int status, std::string_view error, std::string_view message);
// 400 InvalidArgument, 401 Unauthenticated, 403 PermissionDenied, 404 NotFound,
// 409 AlreadyExists, 412 FailedPrecondition, 429 ResourceExhausted, else 500.
int HttpStatusFor(const Status& status);
transport::HttpResponse StatusError(const Status& status);
// HTML with the headers every page here needs (no framing, no scripts, no sniffing).
transport::HttpResponse HtmlResponse(int status, std::string body);
// A JSON request body, its size and nesting checked before the parser sees it:
// ResourceExhausted past max_bytes, InvalidArgument past max_depth or for anything not JSON.
Result<nlohmann::json> ParseJsonBody(std::string_view body, size_t max_bytes = 256 * 1024,
                                     int max_depth = 32);

// application/x-www-form-urlencoded and query strings.
std::map<std::string, std::string> ParseForm(std::string_view text);
std::string UrlEncode(std::string_view text);
std::string HtmlEscape(std::string_view text);

// The enrolled device a verified client certificate belongs to: PermissionDenied when the
// certificate is missing, unknown, superseded or its device unenrolled.
Result<Device> DeviceOfPeer(Store& store, const transport::PeerInfo& peer);

transport::HttpResponse HandlePinResetPublicKey(ServerContext& ctx);
transport::HttpResponse HandlePinResetRecover(ServerContext& ctx,
                                              const transport::HttpRequest& request,
                                              const transport::PeerInfo& peer);
transport::HttpResponse HandlePinResetAuthenticate(ServerContext& ctx,
                                                   const transport::HttpRequest& request,
                                                   const transport::PeerInfo& peer);
// POST /oauth2/token (mutual TLS): user tokens for a device's users (token_service.cpp).
transport::HttpResponse HandleToken(ServerContext& ctx, const transport::HttpRequest& request,
                                    const transport::PeerInfo& peer);
// POST /EnrollmentServer/hello-certificate (mutual TLS): certifies a user's Hello key for the
// user of the Bearer user token.
transport::HttpResponse HandleHelloCertificate(ServerContext& ctx,
                                               const transport::HttpRequest& request,
                                               const transport::PeerInfo& peer);
transport::HttpResponse HandleFederationLogin(ServerContext& ctx, std::string_view query);
// The sign-in page: `federated` selects the IdP's page (federated tenants' users) or the
// managed one (the others).
transport::HttpResponse HandleSignIn(ServerContext& ctx, const transport::HttpRequest& request,
                                     const transport::PeerInfo& peer, std::string_view query,
                                     bool federated);

}  // namespace dm::server
