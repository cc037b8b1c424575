#include "csp/device_facts.h"

#include <openssl/rand.h>

#include <array>

#include "storage/database.h"

namespace dm::csp {

Result<std::optional<std::string>> ReadFact(storage::Database& db, std::string_view key) {
  DM_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT value FROM settings WHERE key = ?"));
  st.Bind(1, key);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Status WriteFact(storage::Database& db, std::string_view key, std::string_view value) {
  return db.Run(
      "INSERT INTO settings (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key, value);
}

Result<std::string> DeviceId(storage::Database& db) {
  DM_ASSIGN_OR_RETURN(auto existing, ReadFact(db, kFactDeviceId));
  if (existing && !existing->empty()) return *existing;
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Internal("cannot generate a device id: the OpenSSL CSPRNG failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 0xF];
  }
  // Insert unless a non-empty id appeared meanwhile (another connection won the race: its id
  // is the one), then re-read.
  DM_RETURN_IF_ERROR(
      db.Run("INSERT INTO settings (key, value) VALUES (?, ?) "
             "ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE settings.value = ''",
             std::string_view(kFactDeviceId), std::string_view(id)));
  DM_ASSIGN_OR_RETURN(auto stored, ReadFact(db, kFactDeviceId));
  if (!stored) return Internal("device id vanished after being written");
  return *stored;
}

}  // namespace dm::csp
