#include "samples/server/server.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/log.h"
#include "base/pki.h"
#include "samples/server/admin.h"
#include "samples/server/admin_tokens.h"
#include "samples/server/management.h"
#include "samples/server/mde2_service.h"
#include "samples/server/revocation.h"
#include "samples/server/server_internal.h"
#include "samples/server/tls_material.h"
#include "storage/state_dir.h"

namespace dm::server {

// ---- state files (server_internal.h) ----

Status WriteFile(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return IoError("cannot create " + path.string());
  // The mode of an existing file is not changed by open(): make sure of it.
  bool ok = ::fchmod(fd, mode) == 0;
  size_t done = 0;
  while (ok && done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok) return IoError("cannot write " + path.string());
  return Status::Ok();
}

Result<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Result<SecretBytes> ReadSecretFile(const std::filesystem::path& path) {
  DM_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  SecretBytes secret(text);
  OPENSSL_cleanse(text.data(), text.size());
  return secret;
}

bool IsIpAddress(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return true;  // IPv6
  return !host.empty() && std::all_of(host.begin(), host.end(),
                                      [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using transport::HttpRequest;
using transport::HttpResponse;

// Host header without the port, lower case.
std::string RequestHost(const HttpRequest& request) {
  std::string host = request.Header("Host").value_or("");
  if (!host.empty() && host.front() == '[') {
    size_t end = host.find(']');
    return AsciiLower(host.substr(1, end == std::string::npos ? std::string::npos : end - 1));
  }
  size_t colon = host.find(':');
  return AsciiLower(host.substr(0, colon));
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// The initial global admin token, once per state directory: made and written to `file` for
// the operator, or, from a state directory older than scoped tokens, read from that file. The
// database gets its digest either way. A crash between the file and the row leaves the file,
// which the next start imports.
Status InitAdminToken(Store& store, const fs::path& file) {
  auto lock = store.Lock();
  DM_ASSIGN_OR_RETURN(bool known, AdminTokenNameUsed(store, kInitialAdminTokenName));
  if (known) return Status::Ok();  // in force, rotated or revoked: the file is not looked at
  SecretBytes token;
  if (fs::exists(file)) {
    DM_ASSIGN_OR_RETURN(token, ReadSecretFile(file));
  } else {
    DM_ASSIGN_OR_RETURN(SecretBytes raw, store.random().Secret(32));
    std::string hex = crypto::HexEncode(raw.span());
    token = SecretBytes(hex);
    OPENSSL_cleanse(hex.data(), hex.size());
    DM_RETURN_IF_ERROR(WriteFile(file, std::string(token.view()) + "\n", 0600));
  }
  std::string_view t = token.view();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  if (t.empty()) return FailedPrecondition(file.string() + " is empty");
  return AddAdminToken(store, kInitialAdminTokenName, AdminScope::Global(), t);
}

// A wildcard listen address is reached on loopback.
std::string ReachableHost(const std::string& address) {
  if (address == "0.0.0.0") return "127.0.0.1";
  if (address == "::") return "::1";
  return address;
}

}  // namespace

// ---- helpers shared by the handlers ----

HttpResponse JsonResponse(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  // Strings in answers can come from requests (paths, query strings, device reports) and
  // need not be UTF-8: replace bad bytes (U+FFFD) instead of throwing out of the handler.
  r.body = body.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

HttpResponse JsonError(int status, std::string_view error, std::string_view message) {
  return JsonResponse(status, json{{"error", error}, {"message", message}});
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kFailedPrecondition:
      return 412;
    case Code::kResourceExhausted:
      return 429;
    default:
      return 500;
  }
}

HttpResponse StatusError(const Status& status) {
  const int code = HttpStatusFor(status);
  if (code == 500) spdlog::error("request failed: {}", status.ToString());
  return JsonError(code, CodeName(status.code()),
                   code == 500 ? "internal error (see the server log)" : status.message());
}

HttpResponse HtmlResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  // Sign-in pages: never inside another site's frame (clickjacking), no scripts at all.
  r.headers = {{"Content-Type", "text/html; charset=utf-8"},
               {"Cache-Control", "no-store"},
               {"X-Frame-Options", "DENY"},
               {"Content-Security-Policy",
                "default-src 'none'; style-src 'self'; form-action 'self' ms-app:; "
                "frame-ancestors 'none'"},
               {"X-Content-Type-Options", "nosniff"}};
  r.body = std::move(body);
  return r;
}

Result<json> ParseJsonBody(std::string_view body, size_t max_bytes, int max_depth) {
  if (body.size() > max_bytes) {
    return ResourceExhausted("the body has " + std::to_string(body.size()) + " bytes; at most " +
                             std::to_string(max_bytes) + " are read");
  }
  // Depth before parsing: the parser recurses per level.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return InvalidArgument("the JSON nests deeper than " + std::to_string(max_depth));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("the body is not JSON");
  return j;
}

std::map<std::string, std::string> ParseForm(std::string_view text) {
  auto decode = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        out.push_back(' ');
      } else if (s[i] == '%' && i + 2 < s.size() &&
                 std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
      } else {
        out.push_back(s[i]);
      }
    }
    return out;
  };
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('&', start);
    std::string_view pair = text.substr(start, end == std::string_view::npos ? end : end - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      out[decode(pair.substr(0, eq))] =
          eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1));
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '@') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Result<Device> DeviceOfPeer(Store& store, const transport::PeerInfo& peer) {
  if (!peer.has_client_cert) return PermissionDenied("no client certificate");
  DM_ASSIGN_OR_RETURN(std::optional<Device> device, store.FindDevice(peer.client_cert_cn));
  if (!device || !device->enrolled || device->cert_serial != peer.client_cert_serial_hex) {
    return PermissionDenied("the client certificate does not belong to an enrolled device");
  }
  return *device;
}

// ---- state directory ----

StatePaths PathsFor(const fs::path& dir) {
  return StatePaths{.database = dir / "server.db",
                    .ca_cert = dir / "ca.pem",
                    .ca_key = dir / "ca-key.pem",
                    .server_cert = dir / "server.pem",
                    .server_key = dir / "server-key.pem",
                    .pin_reset_key = dir / "pin-reset-key.pem",
                    .admin_token = dir / "admin-token",
                    .idp_key = dir / "idp-key.pem"};
}

Status InitState(const ServerOptions& options) {
  if (options.state_dir.empty()) return InvalidArgument("no state directory given");
  DM_RETURN_IF_ERROR(storage::PrepareStateDir(options.state_dir));
  const StatePaths paths = PathsFor(options.state_dir);
  if (!fs::exists(paths.ca_cert) || !fs::exists(paths.ca_key)) {
    DM_ASSIGN_OR_RETURN(pki::CertificateAuthority ca,
                        pki::CreateCa("dmserver CA", options.clock->Now() - std::chrono::hours(1),
                                      std::chrono::hours(24 * 365 * 10)));
    DM_RETURN_IF_ERROR(WriteFile(paths.ca_key, ca.key_pem.view(), 0600));
    DM_RETURN_IF_ERROR(WriteFile(paths.ca_cert, ca.cert_pem, 0644));
    spdlog::info("created the server CA in {}", options.state_dir.string());
  }
  if (!fs::exists(paths.pin_reset_key)) {
    DM_ASSIGN_OR_RETURN(SecretBytes key, crypto::GenerateRsaPrivateKey(options.pin_reset_rsa_bits));
    DM_RETURN_IF_ERROR(WriteFile(paths.pin_reset_key, key.view(), 0600));
  }
  if (!fs::exists(paths.idp_key)) {
    DM_ASSIGN_OR_RETURN(pki::KeyPair key, pki::GenerateKeyPair(pki::KeyType::kEcP256));
    DM_RETURN_IF_ERROR(WriteFile(paths.idp_key, key.private_pem.view(), 0600));
  }
  DM_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenStore(options));
  return InitAdminToken(*store, paths.admin_token);
}

Result<std::unique_ptr<Store>> OpenStore(const ServerOptions& options) {
  Store::Options store;
  store.clock = options.clock;
  store.random = options.random;
  store.password_kdf = options.password_kdf;
  return Store::Open(PathsFor(options.state_dir).database, std::move(store));
}

// ---- the server ----

class DmServer::Impl {
 public:
  ServerOptions options;
  std::unique_ptr<Store> store;
  std::unique_ptr<ManagementService> management;
  pki::CertificateAuthority ca;
  SecretBytes pin_reset_key;
  std::string pin_reset_public_key;
  std::unique_ptr<transport::HttpsServer> https;
  std::unique_ptr<transport::HttpsServer> admin_https;  // none without an admin address
  // After the listeners, so its poll thread stops before the server it publishes to goes.
  std::unique_ptr<RevocationPublisher> revocation;
  std::optional<UserTokenSigner> user_tokens;  // issuer = the IdP's URL, known with the port
  // Set once the port is known (after the listener started): requests that race the start
  // get 503.
  std::unique_ptr<ServerContext> ctx_owner;
  std::atomic<ServerContext*> ctx{nullptr};

  HttpResponse Route(const HttpRequest& request, const transport::PeerInfo& peer);
  HttpResponse RouteAdmin(const HttpRequest& request);
  HttpResponse Admin(const HttpRequest& request, std::string_view path);
  std::optional<AdminCaller> Authenticate(const HttpRequest& request);
  // After what may have revoked a certificate: the TLS layer refuses it from the next
  // handshake on.
  void PublishRevocations();
};

void DmServer::Impl::PublishRevocations() {
  if (!revocation) return;
  if (Status s = revocation->Refresh(); !s.ok()) {
    spdlog::error("cannot publish the CRL of revoked certificates: {}", s.ToString());
  }
}

// The token of "Authorization: Bearer <token>", if it is one in force.
std::optional<AdminCaller> DmServer::Impl::Authenticate(const HttpRequest& request) {
  std::string header = request.Header("Authorization").value_or("");
  constexpr std::string_view kBearer = "Bearer ";
  std::optional<AdminCaller> caller;
  if (header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0) {
    auto lock = store->Lock();
    auto found = AuthenticateAdminToken(*store, std::string_view(header).substr(kBearer.size()));
    if (found.ok()) caller = std::move(*found);
  }
  OPENSSL_cleanse(header.data(), header.size());
  return caller;
}

HttpResponse DmServer::Impl::Admin(const HttpRequest& request, std::string_view path) {
  const std::optional<AdminCaller> caller = Authenticate(request);
  if (!caller) {
    HttpResponse r = JsonError(401, "unauthorized", "a valid admin bearer token is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"dmserver-admin\"");
    return r;
  }
  std::string op(path);
  json args = json::object();
  if (request.method == "GET") {
    if (op != "report" && op != "tenant.list" && op != "device.report") {
      return JsonError(405, "method_not_allowed", "use POST for " + op);
    }
    // GET /admin/v1/device.report?device=ID
    size_t q = request.target.find('?');
    if (q != std::string::npos) {
      for (const auto& [k, v] : ParseForm(std::string_view(request.target).substr(q + 1))) {
        args[k] = v;
      }
    }
  } else if (request.method == "POST") {
    if (!request.body.empty()) {
      auto parsed = ParseJsonBody(request.body);
      if (!parsed.ok()) {
        return JsonError(parsed.error().code() == Code::kResourceExhausted ? 413 : 400,
                         "invalid_request", parsed.error().message());
      }
      args = std::move(*parsed);
    }
  } else {
    return JsonError(405, "method_not_allowed", "use GET or POST");
  }
  auto result = RunAdmin(*store, op, args, caller->scope);
  spdlog::info("admin {} {} by token '{}': {}", request.method, Printable(op), caller->name,
               result.ok() ? "ok" : CodeName(result.error().code()));
  if (!result.ok()) return StatusError(result.error());
  PublishRevocations();
  return JsonResponse(200, *result);
}

HttpResponse DmServer::Impl::RouteAdmin(const HttpRequest& request) {
  if (!ctx.load()) return JsonError(503, "unavailable", "the server is starting");
  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kAdmin = "/admin/v1/";
  if (path.substr(0, kAdmin.size()) == kAdmin) return Admin(request, path.substr(kAdmin.size()));
  return JsonError(404, "not_found", "the admin listener serves /admin/v1/ only");
}

HttpResponse DmServer::Impl::Route(const HttpRequest& request, const transport::PeerInfo& peer) {
  std::string_view target = request.target;
  size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  ServerContext* context = ctx.load();
  if (!context) return JsonError(503, "unavailable", "the server is starting");

  // The federated IdP answers on its own host name and nothing else does there.
  if (!options.idp_host.empty() && RequestHost(request) == AsciiLower(options.idp_host)) {
    if (path == "/adfs/ls/" || path == "/adfs/ls") {
      if (get || post) return HandleSignIn(*context, request, peer, query, /*federated=*/true);
      return JsonError(405, "method_not_allowed", "use GET or POST");
    }
    return JsonError(404, "not_found", "the IdP host serves /adfs/ls/ only");
  }

  // enterpriseenrollment.<domain>, where Windows looks from a UPN: the enrollment service only.
  if (!options.enrollment_domain.empty() &&
      RequestHost(request) == "enterpriseenrollment." + AsciiLower(options.enrollment_domain) &&
      path != "/EnrollmentServer/Discovery.svc" && path != "/EnrollmentServer/Policy.svc" &&
      path != "/EnrollmentServer/Enrollment.svc") {
    return JsonError(404, "not_found", "the enrollment host serves /EnrollmentServer/*.svc only");
  }

  if (path == "/ManagementServer/MDM.svc") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    if (!peer.has_client_cert) {
      return JsonError(401, "client_certificate_required",
                       "the management endpoint needs the device's client certificate");
    }
    if (peer.client_cert_cn.empty() || peer.client_cert_serial_hex.empty()) {
      return JsonError(403, "forbidden", "unreadable client certificate");
    }
    ManagementReply reply =
        management->Handle(peer.client_cert_cn, peer.client_cert_serial_hex, request.body);
    HttpResponse r;
    r.status = reply.http_status;
    r.headers = {{"Content-Type", kSyncMLContentType}};
    if (reply.retry_after_seconds > 0) {
      r.headers.emplace_back("Retry-After", std::to_string(reply.retry_after_seconds));
    }
    r.body = std::move(reply.body);
    return r;
  }
  if (path == "/EnrollmentServer/Discovery.svc") {
    if (!get && !post) return JsonError(405, "method_not_allowed", "use GET or POST");
    return HandleDiscovery(*context, request);
  }
  if (path == "/EnrollmentServer/Policy.svc") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    return HandlePolicy(*context, request, peer);
  }
  if (path == "/EnrollmentServer/Enrollment.svc") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    HttpResponse r = HandleEnrollment(*context, request, peer);
    PublishRevocations();  // a re-enrollment supersedes the device's certificate
    return r;
  }
  if (path == "/pki/crl.pem") {
    if (!get) return JsonError(405, "method_not_allowed", "use GET");
    HttpResponse r;
    r.status = 200;
    r.headers = {{"Content-Type", "application/x-pem-file"}, {"Cache-Control", "no-cache"}};
    r.body = revocation ? revocation->current_pem() : "";
    return r;
  }
  if (path == "/PinReset/publickey") {
    if (!get && !post) return JsonError(405, "method_not_allowed", "use GET or POST");
    return HandlePinResetPublicKey(*context);
  }
  if (path == "/PinReset/recover") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    return HandlePinResetRecover(*context, request, peer);
  }
  if (path == "/PinReset/authenticate") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    return HandlePinResetAuthenticate(*context, request, peer);
  }
  if (path == "/EnrollmentServer/hello-certificate") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    return HandleHelloCertificate(*context, request, peer);
  }
  if (path == "/oauth2/token") {
    if (!post) return JsonError(405, "method_not_allowed", "use POST");
    return HandleToken(*context, request, peer);
  }
  if (path == "/federation/login") {
    if (!get && !post) return JsonError(405, "method_not_allowed", "use GET or POST");
    return HandleFederationLogin(*context, query);
  }
  if (path == "/login") {
    if (!get && !post) return JsonError(405, "method_not_allowed", "use GET or POST");
    return HandleSignIn(*context, request, peer, query, /*federated=*/false);
  }
  // The admin API is on the admin listener only: here /admin/... is as unknown as any path.
  return JsonError(404, "not_found", "no such endpoint");
}

DmServer::DmServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DmServer::~DmServer() { Stop(); }

Result<std::unique_ptr<DmServer>> DmServer::Start(ServerOptions options) {
  if (options.public_host.empty()) options.public_host = options.listen_address;
  DM_RETURN_IF_ERROR(InitState(options));
  auto impl = std::make_unique<Impl>();
  const StatePaths paths = PathsFor(options.state_dir);
  DM_ASSIGN_OR_RETURN(impl->ca.cert_pem, ReadFile(paths.ca_cert));
  DM_ASSIGN_OR_RETURN(impl->ca.key_pem, ReadSecretFile(paths.ca_key));
  DM_ASSIGN_OR_RETURN(impl->pin_reset_key, ReadSecretFile(paths.pin_reset_key));
  DM_ASSIGN_OR_RETURN(impl->pin_reset_public_key, crypto::PublicKeyPem(impl->pin_reset_key));
  DM_ASSIGN_OR_RETURN(impl->store, OpenStore(options));
  impl->management = std::make_unique<ManagementService>(*impl->store);
  impl->revocation = std::make_unique<RevocationPublisher>(*impl->store, impl->ca);

  // The operator's certificate, or the one the CA issued and the state directory keeps.
  DM_ASSIGN_OR_RETURN(TlsMaterial tls, LoadTlsMaterial(options, impl->ca, options.clock->Now()));

  transport::HttpsServerOptions https;
  https.address = options.listen_address;
  https.port = options.port;
  https.cert_chain_pem = tls.cert_chain_pem;
  https.key_pem = tls.key_pem.Clone();
  https.max_connections = options.max_connections;
  https.max_connections_per_address = options.max_connections_per_address;
  // Enrollment and discovery come before a device has a certificate; the endpoints that need
  // one check it themselves.
  https.client_cert_mode = transport::ClientCertMode::kOptional;
  https.client_ca_pem = impl->ca.cert_pem;
  // Revoked certificates fail the handshake from the first connection on, restarts included.
  DM_ASSIGN_OR_RETURN(https.client_crl_pem, impl->revocation->Build());
  https.threads = options.threads;
  https.server_name = "dmserver/0.1";
  // The admin listener: the same certificate, no client certificates, one thread.
  transport::HttpsServerOptions admin_https;
  admin_https.address = options.admin_listen_address;
  admin_https.port = options.admin_port;
  admin_https.cert_chain_pem = https.cert_chain_pem;
  admin_https.key_pem = std::move(tls.key_pem);
  admin_https.max_connections = options.max_connections;
  admin_https.max_connections_per_address = options.max_connections_per_address;
  admin_https.server_name = https.server_name;
  impl->options = options;
  Impl* raw = impl.get();
  auto server = std::unique_ptr<DmServer>(new DmServer(std::move(impl)));
  DM_ASSIGN_OR_RETURN(raw->https, transport::HttpsServer::Start(
                                      std::move(https), [raw](const HttpRequest& request,
                                                              const transport::PeerInfo& peer) {
                                        return raw->Route(request, peer);
                                      }));
  raw->revocation->SetSink(
      [raw](const std::string& crl_pem) { return raw->https->SetRevocationList(crl_pem); });
  raw->revocation->StartPolling(options.revocation_poll);
  const std::string port = std::to_string(raw->https->port());
  const std::string idp_base_url = "https://" + UrlHost(options.idp_host) + ":" + port;
  {
    DM_ASSIGN_OR_RETURN(SecretBytes idp_key, ReadSecretFile(paths.idp_key));
    DM_ASSIGN_OR_RETURN(UserTokenSigner signer,
                        UserTokenSigner::Create(std::move(idp_key), idp_base_url));
    raw->user_tokens.emplace(std::move(signer));
  }
  raw->ctx_owner = std::make_unique<ServerContext>(
      ServerContext{.store = *raw->store,
                    .management = *raw->management,
                    .ca = raw->ca,
                    .pin_reset_key = raw->pin_reset_key,
                    .pin_reset_public_key = raw->pin_reset_public_key,
                    .base_url = "https://" + UrlHost(options.public_host) + ":" + port,
                    .idp_base_url = idp_base_url,
                    .device_cert_validity = options.device_cert_validity,
                    .user_tokens = *raw->user_tokens});
  raw->management->SetAgentServices(
      AgentServicesAt(raw->ctx_owner->base_url, raw->pin_reset_public_key));
  raw->management->SetUserTokens(&*raw->user_tokens);
  raw->ctx.store(raw->ctx_owner.get());
  if (!options.admin_listen_address.empty()) {
    DM_ASSIGN_OR_RETURN(
        raw->admin_https,
        transport::HttpsServer::Start(
            std::move(admin_https), [raw](const HttpRequest& request, const transport::PeerInfo&) {
              return raw->RouteAdmin(request);
            }));
  }
  spdlog::info("dmserver listening on {}:{} (public {}, IdP {}); admin API {}",
               options.listen_address, port, raw->ctx_owner->base_url, raw->ctx_owner->idp_base_url,
               raw->admin_https ? server->AdminBaseUrl() : "off");
  return server;
}

uint16_t DmServer::port() const { return impl_->https ? impl_->https->port() : 0; }
std::string DmServer::BaseUrl() const { return impl_->ctx_owner->base_url; }
std::string DmServer::IdpBaseUrl() const { return impl_->ctx_owner->idp_base_url; }
uint16_t DmServer::admin_port() const {
  return impl_->admin_https ? impl_->admin_https->port() : 0;
}
std::string DmServer::AdminBaseUrl() const {
  if (!impl_->admin_https) return "";
  return "https://" + UrlHost(ReachableHost(impl_->options.admin_listen_address)) + ":" +
         std::to_string(impl_->admin_https->port());
}
const std::string& DmServer::ca_cert_pem() const { return impl_->ca.cert_pem; }
Store& DmServer::store() { return *impl_->store; }

HttpResponse DmServer::Handle(const HttpRequest& request, const transport::PeerInfo& peer) {
  return impl_->Route(request, peer);
}

HttpResponse DmServer::HandleAdmin(const HttpRequest& request) {
  return impl_->RouteAdmin(request);
}

Status DmServer::ReloadTls() {
  DM_ASSIGN_OR_RETURN(TlsMaterial tls,
                      LoadTlsMaterial(impl_->options, impl_->ca, impl_->options.clock->Now()));
  DM_RETURN_IF_ERROR(impl_->https->SetCertificate(tls.cert_chain_pem, tls.key_pem));
  if (impl_->admin_https) {
    DM_RETURN_IF_ERROR(impl_->admin_https->SetCertificate(tls.cert_chain_pem, tls.key_pem));
  }
  spdlog::info("TLS certificate reloaded{}", tls.issued_now ? " (newly issued)" : "");
  return Status::Ok();
}

size_t DmServer::Drain(std::chrono::milliseconds grace) {
  if (!impl_ || !impl_->management) return 0;
  ManagementService& management = *impl_->management;
  management.BeginDrain();
  // A device silent this long has given up on its session; it does not hold the stop.
  constexpr std::chrono::minutes kIdle{2};
  const auto deadline = std::chrono::steady_clock::now() + grace;
  size_t open = management.OpenSessions(kIdle);
  if (open > 0) spdlog::info("stopping: waiting for {} OMA-DM session(s) to end", open);
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    open = management.OpenSessions(kIdle);
  }
  if (open > 0) spdlog::warn("stopping with {} OMA-DM session(s) still open", open);
  return open;
}

void DmServer::Stop() {
  if (impl_ && impl_->revocation) impl_->revocation->StopPolling();
  if (impl_ && impl_->admin_https) impl_->admin_https->Stop();
  if (impl_ && impl_->https) impl_->https->Stop();
}

}  // namespace dm::server
