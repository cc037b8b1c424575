// Test support: the ServerOptions every in-process dmserver of a test starts from (cheap
// password hashing and a 2048-bit PIN reset key, so tests stay fast; port 0).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "agent/transport/https_client.h"
#include "samples/server/server.h"

namespace dm::server::testing {

ServerOptions TestServerOptions(const std::filesystem::path& state_dir);

// An HTTPS client trusting the server's CA, one attempt per request, with the device identity
// `cert_pem`/`key_pem` when given; `url` defaults to the server's base URL.
Result<std::unique_ptr<transport::HttpsClient>> TestClient(const DmServer& server,
                                                           std::string cert_pem = "",
                                                           SecretBytes key_pem = {},
                                                           std::string url = "");

// A user token for `upn` signed as the server's IdP signs them (idp-key.pem of `state_dir`),
// for tests that play a device whose user signed in. NotFound for an unknown user.
Result<std::string> UserTokenFor(DmServer& server, const std::filesystem::path& state_dir,
                                 std::string_view upn);

// The global admin token `init` wrote to `state_dir` ("initial"); empty when there is none.
std::string InitialAdminToken(const std::filesystem::path& state_dir);

}  // namespace dm::server::testing
