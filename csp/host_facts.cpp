#include "csp/host_facts.h"

#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dm::csp {
namespace {

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::string ReadFirstLine(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  return Trimmed(line);
}

std::string OsPrettyName() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("PRETTY_NAME=", 0) != 0) continue;
    std::string v = line.substr(12);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    return v;
  }
  return {};
}

std::optional<int64_t> MemTotalMb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") return kb / 1024;
  }
  return std::nullopt;
}

// "en_US.UTF-8" -> "en-US"; "C"/"POSIX"/empty -> "".
std::string LanguageTag(const char* lang) {
  if (lang == nullptr) return {};
  std::string v(lang);
  v = v.substr(0, v.find_first_of(".@"));
  if (v.empty() || v == "C" || v == "POSIX") return {};
  for (char& c : v) {
    if (c == '_') c = '-';
  }
  return v;
}

}  // namespace

HostFacts ReadHostFacts(const std::filesystem::path& storage_path) {
  HostFacts f;
  struct utsname u {};
  if (::uname(&u) == 0) {
    f.hostname = u.nodename;
    f.kernel_release = u.release;
    f.machine = u.machine;
  }
  const std::filesystem::path dmi = "/sys/class/dmi/id";
  f.manufacturer = ReadFirstLine(dmi / "sys_vendor");
  f.product_name = ReadFirstLine(dmi / "product_name");
  f.bios_version = ReadFirstLine(dmi / "bios_version");
  f.serial_number = ReadFirstLine(dmi / "product_serial");
  f.os_name = OsPrettyName();
  f.language = LanguageTag(std::getenv("LANG"));
  f.total_ram_mb = MemTotalMb();
  struct statvfs vfs {};
  if (::statvfs(storage_path.c_str(), &vfs) == 0) {
    auto mb = [&](unsigned long blocks) {
      return static_cast<int64_t>((static_cast<uint64_t>(blocks) * vfs.f_frsize) >> 20);
    };
    f.total_storage_mb = mb(vfs.f_blocks);
    f.free_storage_mb = mb(vfs.f_bavail);
  }
  return f;
}

}  // namespace dm::csp
