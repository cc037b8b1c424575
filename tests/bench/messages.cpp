#include "tests/bench/messages.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <string_view>

namespace dm::bench {
namespace {

// Writes XML the way the captured messages are laid out: two spaces per level, one element per
// line. Values in these messages never need escaping (checked by the codec tests' round trips
// of the same shapes), so text is written as is.
class Pretty {
 public:
  Pretty() {
    out_ = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    Open("SyncML", " xmlns=\"SYNCML:SYNCML1.2\"");
  }

  void Open(std::string_view name, std::string_view attrs = {}) {
    Indent();
    out_ += '<';
    out_ += name;
    out_ += attrs;
    out_ += ">\n";
    ++depth_;
  }
  void Close(std::string_view name) {
    --depth_;
    Indent();
    out_ += "</";
    out_ += name;
    out_ += ">\n";
  }
  void Leaf(std::string_view name, std::string_view text, std::string_view attrs = {}) {
    Indent();
    out_ += '<';
    out_ += name;
    out_ += attrs;
    out_ += '>';
    out_ += text;
    out_ += "</";
    out_ += name;
    out_ += ">\n";
  }
  void Empty(std::string_view name) {
    Indent();
    out_ += '<';
    out_ += name;
    out_ += "/>\n";
  }

  void Header(std::string_view session_id, std::string_view msg_id) {
    Open("SyncHdr");
    Leaf("VerDTD", "1.2");
    Leaf("VerProto", "DM/1.2");
    Leaf("SessionID", session_id);
    Leaf("MsgID", msg_id);
    Location("Target", kDeviceId);
    Location("Source", kServerUrl);
    Close("SyncHdr");
    Open("SyncBody");
  }
  void Location(std::string_view element, std::string_view uri) {
    Open(element);
    Leaf("LocURI", uri);
    Close(element);
  }
  void Status(int cmd_id, std::string_view cmd_ref, std::string_view cmd, int code) {
    Open("Status");
    Leaf("CmdID", std::to_string(cmd_id));
    Leaf("MsgRef", "1");
    Leaf("CmdRef", cmd_ref);
    Leaf("Cmd", cmd);
    Leaf("Data", std::to_string(code));
    Close("Status");
  }
  // <Verb><CmdID/><Item><Target/><Meta>Format[, Type]</Meta><Data/></Item></Verb>; no Meta
  // when format is empty, no Data when data is null.
  void Command(std::string_view verb, int cmd_id, std::string_view uri, std::string_view format,
               const char* data, std::string_view data_text = {}) {
    Open(verb);
    Leaf("CmdID", std::to_string(cmd_id));
    Item(uri, format, data, data_text);
    Close(verb);
  }
  void Item(std::string_view uri, std::string_view format, const char* data,
            std::string_view data_text = {}) {
    Open("Item");
    Location("Target", uri);
    if (!format.empty()) {
      Open("Meta");
      Leaf("Format", format, kMetInf);
      if (format != "node") Leaf("Type", "text/plain", kMetInf);
      Close("Meta");
    }
    if (data != nullptr) Leaf("Data", data_text.empty() ? std::string_view(data) : data_text);
    Close("Item");
  }

  std::string Finish() {
    Empty("Final");
    Close("SyncBody");
    Close("SyncML");
    return std::move(out_);
  }

  static constexpr std::string_view kMetInf = " xmlns=\"syncml:metinf\"";

 private:
  void Indent() { out_.append(static_cast<size_t>(depth_) * 2, ' '); }

  std::string out_;
  int depth_ = 0;
};

std::string TenantRoot(std::string_view tenant) {
  return std::string("./Device/Vendor/MSFT/PassportForWork/") + std::string(tenant);
}

// The writable leaves below {TenantId}/Policies (csp/passportforwork.cpp), with two valid
// values each.
struct TenantLeaf {
  const char* path;
  const char* format;
  const char* a;
  const char* b;
};
constexpr std::array<TenantLeaf, 18> kTenantLeaves = {{
    {"Policies/UsePassportForWork", "bool", "true", "false"},
    {"Policies/RequireSecurityDevice", "bool", "false", "true"},
    {"Policies/EnablePinRecovery", "bool", "true", "false"},
    {"Policies/DisablePostLogonProvisioning", "bool", "false", "true"},
    {"Policies/UseCloudTrustForOnPremAuth", "bool", "true", "false"},
    {"Policies/UseCertificateForOnPremAuth", "bool", "false", "true"},
    {"Policies/UseHelloCertificatesAsSmartCardCertificates", "bool", "false", "true"},
    {"Policies/EnableWindowsHelloProvisioningForSecurityKeys", "bool", "true", "false"},
    {"Policies/PINComplexity/MinimumPINLength", "int", "6", "8"},
    {"Policies/PINComplexity/MaximumPINLength", "int", "127", "64"},
    {"Policies/PINComplexity/Digits", "int", "0", "1"},
    {"Policies/PINComplexity/LowercaseLetters", "int", "0", "1"},
    {"Policies/PINComplexity/UppercaseLetters", "int", "0", "1"},
    {"Policies/PINComplexity/SpecialCharacters", "int", "0", "1"},
    {"Policies/PINComplexity/Expiration", "int", "0", "90"},
    {"Policies/PINComplexity/History", "int", "0", "5"},
    {"Policies/ExcludeSecurityDevices/TPM12", "bool", "false", "true"},
    {"Policies/Remote/UseRemotePassport", "bool", "false", "true"},
}};

// A GUID per index, lower case as the tree stores {TenantId}.
std::string TenantGuid(size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08zx-86f1-41af-91ab-%012zx", (i + 1) & 0xffffffffu,
                (i * 7919 + 1) & 0xffffffffffffu);
  return buf;
}

// Deterministic bytes (xorshift) in base64: the shape of a DER certificate.
std::string Base64Blob(size_t length, uint64_t seed) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(length);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < length; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out += kAlphabet[x % 64];
  }
  return out;
}

std::string Thumbprint(size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08zX%016zX%016zX", i, i * 2654435761u, i * 40503u + 17);
  return buf;
}

std::string BuildLargePackage(size_t cert_length) {
  const std::vector<Setting> profile = HelloProfile20();
  static constexpr const char* kInventory[] = {
      "./DevDetail/SwV",
      "./DevDetail/Ext/Microsoft/OSPlatform",
      "./DevDetail/Ext/Microsoft/DeviceName",
      "./DevInfo/Mod",
      "./DevInfo/Man",
      "./Vendor/MSFT/DMClient/Provider/MS%20DM%20Server/EntDMID",
      "./Vendor/MSFT/DMAgent/Report",
  };
  Pretty w;
  w.Header("1", "2");
  w.Status(1, "0", "SyncHdr", 200);
  int id = 2;
  size_t replaces = 0, gets = 0, certs = 0;
  for (size_t n = 1; n < kLargePackageCommands; ++n) {
    const size_t slot = n % 10;
    if (n % 100 == 50) {
      // The shape of enable-pin-recovery.xml: an Atomic adding the tenant and a policy.
      w.Open("Atomic");
      w.Leaf("CmdID", std::to_string(id++));
      w.Command("Add", id++, TenantRoot(kTenant), "node", nullptr);
      w.Command("Replace", id++, TenantRoot(kTenant) + "/Policies/EnablePinRecovery", "bool",
                "true");
      w.Close("Atomic");
    } else if (slot < 4) {
      const Setting& s = profile[replaces++ % profile.size()];
      w.Command("Replace", id++, s.uri, s.format, s.value_a.c_str());
    } else if (slot < 7) {
      w.Command("Get", id++, kInventory[gets++ % std::size(kInventory)], "", nullptr);
    } else if (slot < 9) {
      const std::string blob = Base64Blob(cert_length, certs);
      w.Command("Add", id++,
                "./Device/Vendor/MSFT/RootCATrustedCertificates/Root/" + Thumbprint(certs++) +
                    "/EncodedCertificate",
                "b64", "", blob);
    } else {
      w.Command("Delete", id++,
                "./Device/Vendor/MSFT/RootCATrustedCertificates/CA/" + Thumbprint(n), "", nullptr);
    }
  }
  return w.Finish();
}

std::string SettingsPackage(size_t count, bool alternate, bool policy) {
  Pretty w;
  w.Header("1", "1");
  for (size_t i = 0; i < count; ++i) {
    const int id = static_cast<int>(i) + 1;
    if (policy) {
      const TenantLeaf& leaf = kTenantLeaves[i % kTenantLeaves.size()];
      const std::string uri = TenantRoot(TenantGuid(i / kTenantLeaves.size())) + "/" + leaf.path;
      w.Command("Replace", id, uri, leaf.format, alternate ? leaf.b : leaf.a);
    } else {
      static constexpr std::array<TenantLeaf, 9> kProviderLeaves = {{
          {"EntDMID", "chr", "device-a", "device-b"},
          {"Poll/IntervalForFirstSetOfRetries", "int", "15", "3"},
          {"Poll/NumberOfFirstRetries", "int", "10", "5"},
          {"Poll/IntervalForSecondSetOfRetries", "int", "0", "15"},
          {"Poll/NumberOfSecondRetries", "int", "0", "8"},
          {"Poll/IntervalForRemainingScheduledRetries", "int", "480", "1440"},
          {"Poll/NumberOfRemainingScheduledRetries", "int", "0", "1"},
          {"Poll/PollOnLogin", "bool", "true", "false"},
          {"Poll/AllUsersPollOnFirstLogin", "bool", "false", "true"},
      }};
      const TenantLeaf& leaf = kProviderLeaves[i % kProviderLeaves.size()];
      const std::string uri = "./Device/Vendor/MSFT/DMClient/Provider/Provider" +
                              std::to_string(i / kProviderLeaves.size()) + "/" + leaf.path;
      w.Command("Replace", id, uri, leaf.format, alternate ? leaf.b : leaf.a);
    }
  }
  return w.Finish();
}

}  // namespace

std::vector<Setting> HelloProfile20() {
  std::vector<Setting> out;
  // 17 of the tenant's policies (all but EnableWindowsHelloProvisioningForSecurityKeys)...
  for (const TenantLeaf& leaf : kTenantLeaves) {
    if (std::string_view(leaf.path).ends_with("ForSecurityKeys")) continue;
    out.push_back({TenantRoot(kTenant) + "/" + leaf.path, leaf.format, leaf.a, leaf.b});
  }
  // ...the device's biometrics group and web sign-in.
  out.push_back(
      {"./Device/Vendor/MSFT/PassportForWork/Biometrics/UseBiometrics", "bool", "true", "false"});
  out.push_back(
      {"./Device/Vendor/MSFT/PassportForWork/Biometrics/FacialFeaturesUseEnhancedAntiSpoofing",
       "bool", "true", "false"});
  out.push_back(
      {"./Device/Vendor/MSFT/Policy/Config/Authentication/EnableWebSignIn", "int", "1", "0"});
  return out;
}

std::string ProfileMessage(const std::vector<Setting>& profile, bool alternate) {
  Pretty w;
  w.Header("1", "1");
  // Answers to the client's package 1 (session1-server-pkg2.xml).
  w.Status(1, "0", "SyncHdr", 200);
  w.Status(2, "2", "Alert", 200);
  w.Status(3, "3", "Alert", 200);
  w.Status(4, "4", "Replace", 200);
  int id = 5;
  w.Command("Add", id++, TenantRoot(kTenant), "node", nullptr);
  for (const Setting& s : profile) {
    w.Command("Replace", id++, s.uri, s.format, (alternate ? s.value_b : s.value_a).c_str());
  }
  w.Command("Get", id++, "./Vendor/MSFT/DMAgent/Report", "", nullptr);
  return w.Finish();
}

std::string LargePackage() {
  // size(L) = base + (certificate Adds) * L: solve for L from a build without payload.
  constexpr size_t kTarget = 520000;
  const std::string empty = BuildLargePackage(0);
  size_t certs = 0;
  for (size_t n = 1; n < kLargePackageCommands; ++n) {
    if (n % 100 != 50 && n % 10 >= 7 && n % 10 < 9) ++certs;
  }
  const size_t length = empty.size() < kTarget ? (kTarget - empty.size()) / certs / 4 * 4 : 0;
  return BuildLargePackage(length);
}

std::string PolicyPackage(size_t count, bool alternate) {
  return SettingsPackage(count, alternate, /*policy=*/true);
}

std::string ProviderPackage(size_t count, bool alternate) {
  return SettingsPackage(count, alternate, /*policy=*/false);
}

}  // namespace dm::bench
