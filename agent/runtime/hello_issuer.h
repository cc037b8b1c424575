// Certifies Windows Hello keys with the management server's CA (as WHfB certificate trust
// enrolls through the enterprise CA): the device posts the new public key over mutual TLS
// and gets a client-authentication certificate back. Without an enrollment that offers it,
// the container falls back to a self-signed certificate.
#pragma once

#include <filesystem>
#include <memory>

#include "base/status.h"
#include "container/container.h"
#include "storage/database.h"

namespace dm::agent {

// The DeviceOptions::make_issuer factory: a remote issuer when the enrollment has a
// Hello certificate URL, nullptr (self-signed) otherwise.
Result<std::unique_ptr<container::CertificateIssuer>> MakeHelloIssuer(
    storage::Database& db, const std::filesystem::path& state_dir);

}  // namespace dm::agent
