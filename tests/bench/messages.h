// Realistic server messages for the benchmarks, written the way the captured Windows 10
// exchange (tests/fixtures/windows10-capture) and samples/profiles/enable-pin-recovery.xml are:
// an XML declaration, two-space indentation, one element per line, metinf namespaces on Meta
// children. Deterministic: the same arguments give the same bytes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace dm::bench {

// The tenant every message addresses (the one in the fixtures).
inline constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
inline constexpr char kDeviceId[] = "B5B954E81FBCB94EB79BD08BE625F4EE";
inline constexpr char kServerUrl[] = "https://dmserver.example/ManagementServer/MDM.svc";

// One setting of a profile: a LocURI ({TenantId} already substituted), its Meta Format and two
// valid values that differ, so alternating between them makes every delivery a real change.
struct Setting {
  std::string uri;
  std::string format;  // bool, int, chr
  std::string value_a;
  std::string value_b;
};

// A Windows Hello for Business profile of 20 settings, as an admin builds it in Intune:
// PassportForWork policies of the tenant (feature, PIN complexity, recovery, trust), the
// device-wide biometrics group and the web sign-in policies of the Policy CSP. Every URI is one
// the agent's DM tree accepts (device scope).
std::vector<Setting> HelloProfile20();

// Package 2 of a session that delivers `profile`: the SyncHdr Status and Statuses for the
// client's package 1 (as in session1-server-pkg2.xml), an Add of the tenant node, one Replace
// per setting (value_a, or value_b when `alternate`), a Get of the agent's report, Final.
std::string ProfileMessage(const std::vector<Setting>& profile, bool alternate = false);

// A 1,000-command server message whose size is just under Intune's MaxMsgSize (524,288 bytes):
// what an initial sync looks like. A repeating mix of policy Replaces (PassportForWork and
// Policy/Config), inventory Gets (DevDetail, DevInfo, DMClient), Adds of trusted root
// certificates (base64 DER, the bulk of the bytes), Deletes and an Atomic. The certificate
// payload length is chosen so the whole message lands between 500,000 and 524,288 bytes.
std::string LargePackage();
inline constexpr size_t kLargePackageCommands = 1000;
inline constexpr size_t kIntuneMaxMsgSize = 524288;

// `count` distinct PassportForWork policy settings in one message, one Replace each: the 18
// writable leaves under ./Device/Vendor/MSFT/PassportForWork/{TenantId}/Policies for as many
// tenants (GUIDs derived from the index) as it takes. `alternate` selects the second value set.
// For `dmagent exec`-style local processing (Session::Process without Start).
std::string PolicyPackage(size_t count, bool alternate);

// `count` distinct DMClient settings in one message: EntDMID and the 8 Poll leaves of
// ./Vendor/MSFT/DMClient/Provider/{ProviderID} for as many providers as it takes. Values live
// in the tree's own node store (no policy engine), so this isolates the tree and SQLite.
std::string ProviderPackage(size_t count, bool alternate);

}  // namespace dm::bench
