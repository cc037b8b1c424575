#include "storage/schema.h"

namespace dm::storage {
namespace {

// Version 1: the first release's tables, one section per owning module. Later changes are new
// Migration entries appended below; never edit a released version.
constexpr char kVersion1[] = R"sql(
-- ---- storage: agent-wide key/value settings (device identity, counters) ----
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- ---- container ----

-- ---- policy ----

-- ---- csp ----

-- ---- agent ----

)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kVersion1},
};

}  // namespace

std::span<const Migration> AgentSchema() { return kMigrations; }

}  // namespace dm::storage
