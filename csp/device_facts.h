// Device identity facts kept in the agent's `settings` table (key -> value). `dmagent` (or a
// simulator profile) may write them to present a particular device; DevInfo and DevDetail
// read them first and fall back to what the host reports, then to documented constants.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace dm::storage {
class Database;
}

namespace dm::csp {

inline constexpr char kFactDeviceId[] = "device.id";                       // DevInfo/DevId
inline constexpr char kFactManufacturer[] = "device.manufacturer";         // DevInfo/Man
inline constexpr char kFactModel[] = "device.model";                       // DevInfo/Mod
inline constexpr char kFactLanguage[] = "device.language";                 // DevInfo/Lang
inline constexpr char kFactDeviceType[] = "device.type";                   // DevDetail/DevTyp
inline constexpr char kFactOem[] = "device.oem";                           // DevDetail/OEM
inline constexpr char kFactFirmwareVersion[] = "device.firmware_version";  // DevDetail/FwV
inline constexpr char kFactSoftwareVersion[] = "device.software_version";  // DevDetail/SwV
inline constexpr char kFactHardwareVersion[] = "device.hardware_version";  // DevDetail/HwV
inline constexpr char kFactOsPlatform[] = "device.os_platform";            // .../OSPlatform
inline constexpr char kFactSerialNumber[] = "device.serial_number";        // .../SMBIOSSerialNumber
inline constexpr char kFactDeviceName[] = "device.name";                   // .../DeviceName
inline constexpr char kFactDnsComputerName[] = "device.dns_computer_name";  // .../DNSComputerName

Result<std::optional<std::string>> ReadFact(storage::Database& db, std::string_view key);
Status WriteFact(storage::Database& db, std::string_view key, std::string_view value);

// ./DevInfo/DevId: 32 lower-case hex characters (a GUID's digits, as Windows desktop uses an
// app-specific GUID), generated from the OS CSPRNG on first use and persisted, so it is the
// same in every session and the SyncHdr Source of every message.
Result<std::string> DeviceId(storage::Database& db);

}  // namespace dm::csp
