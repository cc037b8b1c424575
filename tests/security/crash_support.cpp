#include "tests/security/crash_support.h"

#include <sqlite3.h>

#include <cstdlib>
#include <fstream>

namespace dm::testing {

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

void WriteAll(const std::filesystem::path& p, std::string_view s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

std::string IntegrityCheck(const std::filesystem::path& database) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    result = std::string("open: ") + sqlite3_errmsg(db);
  } else {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) != SQLITE_OK) {
      result = std::string("prepare: ") + sqlite3_errmsg(db);
    } else {
      while (sqlite3_step(st) == SQLITE_ROW) {
        result += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      }
      sqlite3_finalize(st);
    }
  }
  sqlite3_close(db);
  return result;
}

}  // namespace dm::testing
