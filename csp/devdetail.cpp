// ./DevDetail (csp-and-container.md 6.4): device details a server queries with Get. Values
// come from the device facts in the settings table, else from the Linux host, else from the
// constants noted per node. Device scope only.
#include <openssl/rand.h>

#include <cctype>
#include <optional>
#include <string>

#include "csp/csps_internal.h"
#include "csp/device_facts.h"
#include "storage/database.h"

namespace dm::csp {
namespace {

using GetHook = std::function<Result<std::optional<std::string>>(const NodeAddress&)>;

Result<std::optional<std::string>> Value(std::string v) {
  return std::optional<std::string>(std::move(v));
}

GetHook Constant(std::string v) {
  return [v = std::move(v)](const NodeAddress&) { return Value(v); };
}

// A size from the host in MB; absent (404) when the host could not tell.
GetHook HostNumber(HostFactsSource host, std::optional<int64_t> HostFacts::*field) {
  return [host = std::move(host), field](const NodeAddress&) -> Result<std::optional<std::string>> {
    if (!host) return std::optional<std::string>();
    std::optional<int64_t> v = host().*field;
    if (!v) return std::optional<std::string>();
    return Value(std::to_string(*v));
  };
}

// SYSTEM_INFO wProcessorArchitecture, the number Windows reports (x64 = 9, ARM64 = 12).
std::optional<std::string> ProcessorArchitecture(const std::string& machine) {
  if (machine == "x86_64" || machine == "amd64") return "9";
  if (machine == "aarch64" || machine == "arm64") return "12";
  if (machine.rfind("arm", 0) == 0) return "5";
  if (machine.size() == 4 && machine[0] == 'i' && machine.substr(2) == "86") return "0";
  return std::nullopt;
}

// DNSComputerName (DevDetail DDF): a DNS label of up to 63 characters after expanding
// %RAND:n% (n random digits) and %SERIAL% (the serial number, cut from the front when the
// name would exceed 63 characters). The macros do not count against the limit themselves.
constexpr size_t kMaxDnsName = 63;

struct DnsTemplate {
  std::string before_serial;  // with %RAND:n% already expanded
  std::string after_serial;
  bool has_serial = false;
};

Result<std::string> RandomDigits(int n) {
  std::string out;
  unsigned char b = 0;
  while (static_cast<int>(out.size()) < n) {
    if (RAND_bytes(&b, 1) != 1) return Internal("the OpenSSL CSPRNG failed");
    if (b < 250) out += static_cast<char>('0' + b % 10);  // reject 250..255: no bias
  }
  return out;
}

Result<DnsTemplate> ParseDnsTemplate(std::string_view v, bool expand_random) {
  DnsTemplate t;
  std::string* cur = &t.before_serial;
  for (size_t i = 0; i < v.size();) {
    if (v[i] == '%') {
      size_t end = v.find('%', i + 1);
      if (end == std::string_view::npos) return InvalidArgument("unterminated % macro");
      std::string_view macro = v.substr(i + 1, end - i - 1);
      if (macro == "SERIAL") {
        if (t.has_serial) return InvalidArgument("%SERIAL% may appear once");
        t.has_serial = true;
        cur = &t.after_serial;
      } else if (macro.rfind("RAND:", 0) == 0) {
        std::string_view digits = macro.substr(5);
        bool numeric = !digits.empty() && digits.size() <= 2;
        int n = 0;
        for (char c : digits) {
          numeric = numeric && std::isdigit(static_cast<unsigned char>(c));
          if (numeric) n = n * 10 + (c - '0');
        }
        if (!numeric || n < 1 || n >= static_cast<int>(kMaxDnsName)) {
          return InvalidArgument("%RAND:x% needs 1 <= x < 63");
        }
        if (expand_random) {
          DM_ASSIGN_OR_RETURN(std::string r, RandomDigits(n));
          *cur += r;
        } else {
          *cur += std::string(static_cast<size_t>(n), '0');
        }
      } else {
        return InvalidArgument("unknown macro %" + std::string(macro) + "%");
      }
      i = end + 1;
      continue;
    }
    char c = v[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return InvalidArgument("DNSComputerName may contain letters, digits and '-' only");
    }
    *cur += c;
    ++i;
  }
  return t;
}

Status CheckDnsName(std::string_view name) {
  if (name.empty()) return InvalidArgument("DNSComputerName is empty");
  if (name.size() > kMaxDnsName) {
    return InvalidArgument("DNSComputerName is longer than 63 characters");
  }
  if (name.front() == '-' || name.back() == '-') {
    return InvalidArgument("DNSComputerName must not start or end with '-'");
  }
  return Status::Ok();
}

// Serial characters that can go into a DNS label.
std::string DnsSafe(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') out += c;
  }
  return out;
}

Result<std::string> ExpandDnsName(std::string_view v, const std::string& serial) {
  DM_ASSIGN_OR_RETURN(DnsTemplate t, ParseDnsTemplate(v, /*expand_random=*/true));
  std::string name = t.before_serial;
  if (t.has_serial) {
    std::string s = DnsSafe(serial);
    size_t room =
        kMaxDnsName - std::min(kMaxDnsName, t.before_serial.size() + t.after_serial.size());
    if (s.size() > room) s = s.substr(s.size() - room);
    name += s + t.after_serial;
  }
  DM_RETURN_IF_ERROR(CheckDnsName(name));
  return name;
}

}  // namespace

NodeDef DevDetailCsp(storage::Database& db, const Clock& clock, HostFactsSource host) {
  auto unknown = std::string("Unknown");
  std::vector<NodeDef> top;
  // Windows reports SystemProductName for DevTyp, like DevInfo/Mod.
  top.push_back(ComputedLeaf("DevTyp", Format::kChr,
                             FactOr(db, kFactDeviceType, host, &HostFacts::product_name, unknown)));
  top.push_back(ComputedLeaf("OEM", Format::kChr,
                             FactOr(db, kFactOem, host, &HostFacts::manufacturer, unknown)));
  // Desktop Windows reports the BIOS version for both FwV and HwV.
  top.push_back(
      ComputedLeaf("FwV", Format::kChr,
                   FactOr(db, kFactFirmwareVersion, host, &HostFacts::bios_version, unknown)));
  top.push_back(
      ComputedLeaf("SwV", Format::kChr,
                   FactOr(db, kFactSoftwareVersion, host, &HostFacts::kernel_release, unknown)));
  top.push_back(
      ComputedLeaf("HwV", Format::kChr,
                   FactOr(db, kFactHardwareVersion, host, &HostFacts::bios_version, unknown)));
  // The session engine supports large objects (MoreData), so LrgObj is true.
  top.push_back(ComputedLeaf("LrgObj", Format::kBool, Constant("true")));
  top.push_back(Interior(
      "URI", access::kGet, Storage::kPermanent,
      {ComputedLeaf("MaxDepth", Format::kChr, Constant(std::to_string(kMaxDepth))),
       ComputedLeaf("MaxTotLen", Format::kChr, Constant(std::to_string(kMaxUriBytes))),
       ComputedLeaf("MaxSegLen", Format::kChr, Constant(std::to_string(kMaxSegmentBytes)))}));

  std::vector<NodeDef> ms;
  {
    NodeDef name = ComputedLeaf("DeviceName", Format::kChr,
                                FactOr(db, kFactDeviceName, host, &HostFacts::hostname, unknown));
    name.access = access::kGet | access::kReplace;
    name.validate = [](const NodeAddress&, std::string_view v) -> Status {
      if (v.empty() || v.size() > 255) return InvalidArgument("DeviceName must be 1-255 bytes");
      return Status::Ok();
    };
    name.set = [&db](const NodeAddress&, std::string_view v) {
      return WriteFact(db, kFactDeviceName, v);
    };
    ms.push_back(std::move(name));
  }
  {
    NodeDef dns =
        ComputedLeaf("DNSComputerName", Format::kChr,
                     FactOr(db, kFactDnsComputerName, host, &HostFacts::hostname, unknown));
    dns.access = access::kGet | access::kReplace;
    dns.validate = [](const NodeAddress&, std::string_view v) -> Status {
      // Checked with %RAND% at its full length and a one-character stand-in for the serial,
      // which is cut to fit when the value is stored.
      DM_ASSIGN_OR_RETURN(DnsTemplate t, ParseDnsTemplate(v, /*expand_random=*/false));
      if (t.before_serial.size() + t.after_serial.size() > kMaxDnsName) {
        return InvalidArgument("DNSComputerName is longer than 63 characters");
      }
      return CheckDnsName(t.before_serial + (t.has_serial ? "0" : "") + t.after_serial);
    };
    dns.set = [&db, host](const NodeAddress&, std::string_view v) -> Status {
      DM_ASSIGN_OR_RETURN(auto serial, ReadFact(db, kFactSerialNumber));
      std::string s = serial.value_or(host ? host().serial_number : std::string());
      DM_ASSIGN_OR_RETURN(std::string name, ExpandDnsName(v, s));
      return WriteFact(db, kFactDnsComputerName, name);
    };
    ms.push_back(std::move(dns));
  }
  ms.push_back(ComputedLeaf("LocalTime", Format::kChr, [&clock](const NodeAddress&) {
    return Value(FormatUtc(clock.Now()));
  }));
  ms.push_back(ComputedLeaf("OSPlatform", Format::kChr,
                            FactOr(db, kFactOsPlatform, host, &HostFacts::os_name, "Linux")));
  ms.push_back(ComputedLeaf("ProcessorArchitecture", Format::kInt,
                            [host](const NodeAddress&) -> Result<std::optional<std::string>> {
                              if (!host) return std::optional<std::string>();
                              return ProcessorArchitecture(host().machine);
                            }));
  ms.push_back(ComputedLeaf("TotalRAM", Format::kInt, HostNumber(host, &HostFacts::total_ram_mb)));
  ms.push_back(
      ComputedLeaf("TotalStorage", Format::kInt, HostNumber(host, &HostFacts::total_storage_mb)));
  ms.push_back(
      ComputedLeaf("FreeStorage", Format::kInt, HostNumber(host, &HostFacts::free_storage_mb)));
  // No serial known -> 404, as Windows answers for nodes it has no value for.
  ms.push_back(ComputedLeaf("SMBIOSSerialNumber", Format::kChr,
                            FactOr(db, kFactSerialNumber, host, &HostFacts::serial_number, "")));
  ms.back().get = [get =
                       ms.back().get](const NodeAddress& a) -> Result<std::optional<std::string>> {
    DM_ASSIGN_OR_RETURN(auto v, get(a));
    if (v && v->empty()) return std::optional<std::string>();
    return v;
  };

  top.push_back(
      Interior("Ext", access::kGet, Storage::kPermanent,
               {Interior("Microsoft", access::kGet, Storage::kPermanent, std::move(ms))}));
  return std::move(Interior("DevDetail", access::kGet, Storage::kPermanent, std::move(top)))
      .DeviceOnly();
}

}  // namespace dm::csp
