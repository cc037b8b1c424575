// What `dmagent status` and `dmagent container show` print: a dsregcmd /status-like text
// view for people and the same facts as JSON for scripts.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agent/runtime/device.h"
#include "agent/simulate/simulator.h"
#include "base/status.h"

namespace dm::agent::cli {

// Device State, Tenant/enrollment, User State (NgcSet, NgcKeyId, CanReset) for one user or
// every known user, and the Policy section (settings pending a reboot, compliance).
Result<nlohmann::ordered_json> StatusJson(Device& device, const std::optional<std::string>& user);
std::string StatusText(const nlohmann::ordered_json& status);

// Key id, certificate thumbprint and dates, protector present, last reset.
Result<nlohmann::ordered_json> ContainerJson(Device& device, const std::string& user);
std::string ContainerText(const nlohmann::ordered_json& container);

// `dmagent simulate`'s summary: enrollment, sessions and rate, latency quantiles, commands,
// memory per device, and the errors by message.
nlohmann::ordered_json SimulationJson(const SimulationReport& report);
std::string SimulationTable(const SimulationReport& report);

}  // namespace dm::agent::cli
