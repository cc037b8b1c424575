// What the Linux host says about itself, read cheaply (uname, /sys/class/dmi/id, /proc/meminfo,
// statvfs, /etc/os-release). Empty strings and nullopt mean "could not be read"; the CSPs then
// fall back to the device facts in the settings table or to documented constants. Injected
// into the device tree so tests do not depend on the machine they run on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace dm::csp {

struct HostFacts {
  std::string hostname;        // uname nodename
  std::string manufacturer;    // DMI sys_vendor
  std::string product_name;    // DMI product_name
  std::string bios_version;    // DMI bios_version
  std::string serial_number;   // DMI product_serial (often readable by root only)
  std::string kernel_release;  // uname release
  std::string machine;         // uname machine: x86_64, aarch64, ...
  std::string os_name;         // os-release PRETTY_NAME
  std::string language;        // RFC 1766 tag from $LANG: en_US.UTF-8 -> en-US
  std::optional<int64_t> total_ram_mb;
  std::optional<int64_t> total_storage_mb;  // of the file system holding storage_path
  std::optional<int64_t> free_storage_mb;
};

HostFacts ReadHostFacts(const std::filesystem::path& storage_path = "/");

using HostFactsSource = std::function<HostFacts()>;

}  // namespace dm::csp
