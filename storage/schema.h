// The agent database's schema: every module's tables, as ordered migrations.
#pragma once

#include <span>

#include "storage/database.h"

namespace dm::storage {

std::span<const Migration> AgentSchema();

}  // namespace dm::storage
