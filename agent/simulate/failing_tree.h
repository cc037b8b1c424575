// A DM tree decorator that fails a fixed share of one device's settings (Add, Replace, Exec
// answer 500 "simulated failure"), so a simulated fleet shows servers the error paths a real
// one does. Which settings fail is a hash of (device seed, URI): the same device fails the same
// settings in every session, like a device that cannot apply them, and different devices fail
// different ones. Reads and deletes pass through, and so does ./Vendor/MSFT/DMAgent (the
// server's configuration of the agent, not a setting).
#pragma once

#include <cstdint>
#include <memory>

#include "csp/dm_tree.h"

namespace dm::agent {

std::unique_ptr<csp::DmTree> MakeFailingTree(std::unique_ptr<csp::DmTree> inner, double share,
                                             uint64_t device_seed);

// Whether the decorator fails `uri` for this device (exposed for tests).
bool SimulatedFailure(double share, uint64_t device_seed, std::string_view uri);

}  // namespace dm::agent
