// dmserver: the reference Intune-like server on HTTPS (agent/transport's HttpsServer).
//
// State directory (--state-dir, 0700):
//   server.db          the server database (store.h)
//   ca.pem, ca-key.pem the server's own CA (created on first start; key 0600): issues the TLS
//                      server certificate and the devices' client certificates
//   server.pem, server-key.pem  TLS server certificate from the CA, kept across starts and
//                      re-issued when it expires within 30 days or misses a name the server
//                      answers to (tls_material.h); unused with --tls-cert/--tls-key
//   pin-reset-key.pem  the PIN reset service's RSA key (0600)
//   admin-token        the initial global admin token, in clear for the operator (0600); the
//                      database keeps only its SHA-256, as for every admin token
//                      (admin_tokens.h); rotating or revoking "initial" leaves this file stale
//   idp-key.pem        the IdP's EC P-256 key signing user tokens (0600)
//   serve.lock         flock()ed by `serve` while it runs, so `restore` waits (backup.h)
//
// Endpoints (JSON unless noted; errors are {"error": code, "message": text}):
//   GET|POST /EnrollmentServer/Discovery.svc   MS-MDE2 Discovery (SOAP)
//   POST /EnrollmentServer/Policy.svc          MS-XCEP GetPolicies (SOAP)
//   POST /EnrollmentServer/Enrollment.svc      MS-WSTEP RequestSecurityToken (SOAP; mutual TLS
//                                              with the current certificate to re-enroll)
//   POST /ManagementServer/MDM.svc        OMA-DM SyncML; mutual TLS required
//   GET|POST /PinReset/publickey          the PIN reset service's public key
//   POST /PinReset/recover                protector recovery; mutual TLS required
//   POST /PinReset/authenticate           the user's sign-in for a destructive reset; mTLS
//   POST /EnrollmentServer/hello-certificate  certifies a user's Hello key; mTLS
//   GET|POST /federation/login?upn=U      where U signs in (managed or federated IdP)
//   GET|POST /login                       managed sign-in page (HTML form / form POST)
//   Host idp.<...> only: GET|POST /adfs/ls/  the federated IdP's sign-in page (and, with
//                                         appru, the enrollment token page)
//   Host enterpriseenrollment.<domain> only: the three .svc endpoints above
//   GET /pki/crl.pem                      the CRL of revoked device certificates (PEM), which the
//                                         TLS layer checks every client certificate against
//   /admin/... on the device listener: 404
//
// The admin listener (admin_listen_address:admin_port, loopback by default; its own TLS
// listener with the same certificate, no client certificates) serves only the admin API:
//   POST /admin/v1/<op>, GET /admin/v1/report   Authorization: Bearer <an admin token>; the
//                                         token's scope decides what runs (admin.h): 401
//                                         without a token in force, 403 outside its scope
//
// Each listener closes connections over max_connections in all or max_connections_per_address
// from one source right after accept (agent/transport/https_server.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/transport/http_types.h"
#include "agent/transport/https_server.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

// The ports `dmserver serve` listens on unless told otherwise: a service needs a known address
// (firewall rules, the enrollment URLs devices are given).
inline constexpr uint16_t kDefaultPort = 8443;
inline constexpr uint16_t kDefaultAdminPort = 8444;

struct ServerOptions {
  std::filesystem::path state_dir;
  std::string listen_address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (tests); `dmserver serve` defaults to kDefaultPort
  // Host name in the URLs the server hands out (management, PIN reset); default: the listen
  // address. Always in the server certificate, with 127.0.0.1 and localhost.
  std::string public_host;
  // The federated IdP's host name: requests with this Host get only the IdP's pages.
  std::string idp_host = "idp.fabrikam.test";
  std::vector<std::string> extra_names;  // more subjectAltNames for the server certificate
  // The operator's TLS certificate (chain PEM, leaf first) and key, instead of one from
  // dmserver's CA; both or neither. Re-read on SIGHUP (DmServer::ReloadTls).
  std::filesystem::path tls_cert_file, tls_key_file;
  // SIGTERM lets OMA-DM sessions under way finish for this long (DmServer::Drain).
  std::chrono::seconds stop_grace{30};
  // Windows looks for enterpriseenrollment.<domain> from a user's UPN: that host is in the
  // certificate and serves the enrollment endpoints. Empty: no such host.
  std::string enrollment_domain;
  // The admin API's own listener, never the devices' one. Empty address: no admin listener
  // (the CLI still works on the state directory).
  std::string admin_listen_address = "127.0.0.1";
  uint16_t admin_port = 0;  // `dmserver serve` defaults to kDefaultAdminPort
  // Per listener: connections open at once, in all and from one source address (0: no limit).
  size_t max_connections = 1024;
  size_t max_connections_per_address = 64;

  const Clock* clock = &Clock::System();
  crypto::Random* random = &crypto::OsRandom();
  crypto::ScryptParams password_kdf = crypto::ScryptParams::Strong();
  int pin_reset_rsa_bits = 3072;
  std::chrono::seconds device_cert_validity = std::chrono::hours(24 * 365);
  int threads = 2;
  // How often the server looks for certificates revoked from outside (the admin CLI) to put
  // them in the CRL its TLS layer checks; its own admin API and enrollments publish at once.
  std::chrono::milliseconds revocation_poll{2000};
};

struct StatePaths {
  std::filesystem::path database, ca_cert, ca_key, server_cert, server_key, pin_reset_key,
      admin_token, idp_key;
};
StatePaths PathsFor(const std::filesystem::path& state_dir);

// Creates whatever is missing in the state directory (directory, CA, PIN reset key, database,
// the initial admin token) and leaves what exists alone. An admin-token file from before
// scoped tokens is imported once as the global token "initial".
Status InitState(const ServerOptions& options);
// Opens the server database of an initialised state directory (for the admin CLI).
Result<std::unique_ptr<Store>> OpenStore(const ServerOptions& options);

class DmServer {
 public:
  // InitState, then listen.
  static Result<std::unique_ptr<DmServer>> Start(ServerOptions options);
  ~DmServer();

  uint16_t port() const;
  // "https://<public host>:<port>"
  std::string BaseUrl() const;
  std::string IdpBaseUrl() const;
  uint16_t admin_port() const;  // 0 without an admin listener
  // "https://<admin address>:<admin port>" (loopback for a wildcard address); "" without one.
  std::string AdminBaseUrl() const;
  const std::string& ca_cert_pem() const;
  Store& store();

  // The request routers the two listeners call; public so tests can reach routes without
  // sockets or name resolution. Handle: the device listener's (Host-based routes, no admin
  // API); HandleAdmin: the admin listener's (the admin API only).
  transport::HttpResponse Handle(const transport::HttpRequest& request,
                                 const transport::PeerInfo& peer);
  transport::HttpResponse HandleAdmin(const transport::HttpRequest& request);

  // SIGHUP: the TLS certificate again (the operator's files re-read, or the kept one checked
  // and re-issued if it no longer fits), presented from the next handshake on, on both
  // listeners. On any error the current certificate stays.
  Status ReloadTls();

  // SIGTERM, before Stop: refuses new OMA-DM sessions (503, Retry-After) and waits up to
  // `grace` for the sessions under way to end. Returns how many were still open (cut short:
  // their unanswered commands are sent again at the device's next session).
  size_t Drain(std::chrono::milliseconds grace);

  void Stop();

 private:
  class Impl;
  explicit DmServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::server
