// DevInfo and DevDetail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "csp/csps_internal.h"
#include "csp/device_facts.h"
#include "csp/test_support.h"
#include "csp/tree.h"

namespace dm::csp {
namespace {

using testing::Chr;

// `s` is `prefix` followed by exactly `n` characters for which `pred` holds. (No std::regex:
// GCC 12 reports false maybe-uninitialized warnings in it under the sanitizer build.)
bool Matches(std::string_view s, std::string_view prefix, size_t n, int (*pred)(int)) {
  if (s.size() != prefix.size() + n || s.substr(0, prefix.size()) != prefix) return false;
  return std::all_of(s.begin() + static_cast<long>(prefix.size()), s.end(),
                     [pred](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
}
int IsLowerHex(int c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); }

HostFacts FakeHost() {
  HostFacts h;
  h.hostname = "build-host";
  h.manufacturer = "Contoso Ltd";
  h.product_name = "Contoso Book 14";
  h.bios_version = "1.2.3";
  h.serial_number = "SN-0042-ABCDEFGHIJ";
  h.kernel_release = "6.1.0-18-amd64";
  h.machine = "x86_64";
  h.os_name = "Debian GNU/Linux 12 (bookworm)";
  h.language = "de-DE";
  h.total_ram_mb = 16000;
  h.total_storage_mb = 500000;
  h.free_storage_mb = 123456;
  return h;
}

class DeviceCspsTest : public testing::DbTest {
 protected:
  void SetUp() override {
    DbTest::SetUp();
    Build();
  }
  void Build() {
    tree_ = std::make_unique<Tree>(db(), clock_);
    HostFactsSource source = [this] { return host_; };
    tree_->Mount("", DevInfoCsp(db(), source));
    tree_->Mount("", DevDetailCsp(db(), clock_, source));
  }
  std::string Get(std::string_view uri) {
    auto g = tree_->Get(ctx_, uri);
    EXPECT_EQ(g.code, 200) << uri << ": " << g.reason;
    return g.value.data;
  }

  HostFacts host_ = FakeHost();
  Context ctx_;
  std::unique_ptr<Tree> tree_;
};

TEST_F(DeviceCspsTest, DevIdIsGeneratedOnceAndPersisted) {
  std::string id = Get("./DevInfo/DevId");
  EXPECT_TRUE(Matches(id, "", 32, IsLowerHex)) << id;
  EXPECT_EQ(Get("./DevInfo/DevId"), id);
  auto direct = DeviceId(db());
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(*direct, id);
  tree_.reset();
  Reopen();
  Build();
  EXPECT_EQ(Get("./DevInfo/DevId"), id);
}

TEST_F(DeviceCspsTest, DevIdsDifferBetweenDevices) {
  std::string a = Get("./DevInfo/DevId");
  ASSERT_TRUE(db().Run("DELETE FROM settings WHERE key = ?", std::string_view(kFactDeviceId)).ok());
  EXPECT_NE(Get("./DevInfo/DevId"), a);
}

TEST_F(DeviceCspsTest, DevInfoValues) {
  EXPECT_EQ(Get("./DevInfo/Man"), "Contoso Ltd");
  EXPECT_EQ(Get("./DevInfo/Mod"), "Contoso Book 14");
  EXPECT_EQ(Get("./DevInfo/DmV"), "1.3");
  EXPECT_EQ(Get("./DevInfo/Lang"), "de-DE");
  // Device facts win over the host.
  ASSERT_TRUE(WriteFact(db(), kFactManufacturer, "Microsoft Corporation").ok());
  ASSERT_TRUE(WriteFact(db(), kFactModel, "Virtual Machine").ok());
  ASSERT_TRUE(WriteFact(db(), kFactLanguage, "en-US").ok());
  EXPECT_EQ(Get("./DevInfo/Man"), "Microsoft Corporation");
  EXPECT_EQ(Get("./DevInfo/Mod"), "Virtual Machine");
  EXPECT_EQ(Get("./DevInfo/Lang"), "en-US");
}

TEST_F(DeviceCspsTest, DevInfoFallbacksWhenTheHostKnowsNothing) {
  host_ = HostFacts{};
  EXPECT_EQ(Get("./DevInfo/Man"), "Unknown");
  EXPECT_EQ(Get("./DevInfo/Mod"), "Unknown");
  EXPECT_EQ(Get("./DevInfo/Lang"), "en-US");
}

TEST_F(DeviceCspsTest, DevInfoIsReadOnlyAndDeviceOnly) {
  EXPECT_EQ(Get("./DevInfo"), "DevId/Man/Mod/DmV/Lang");
  EXPECT_EQ(tree_->Replace(ctx_, "./DevInfo/Man", Chr("x")).code, 405);
  EXPECT_EQ(tree_->Add(ctx_, "./DevInfo/Ext", Chr("")).code, 404);
  EXPECT_EQ(tree_->Delete(ctx_, "./DevInfo/DevId").code, 405);
  Context alice{"alice"};
  EXPECT_EQ(tree_->Get(alice, "./User/DevInfo/DevId").code, 405);
  // ./Device/DevInfo is the same node as ./DevInfo.
  EXPECT_EQ(Get("./Device/DevInfo/DmV"), "1.3");
}

TEST_F(DeviceCspsTest, DevDetailValues) {
  EXPECT_EQ(Get("./DevDetail/DevTyp"), "Contoso Book 14");
  EXPECT_EQ(Get("./DevDetail/OEM"), "Contoso Ltd");
  EXPECT_EQ(Get("./DevDetail/FwV"), "1.2.3");
  EXPECT_EQ(Get("./DevDetail/HwV"), "1.2.3");
  EXPECT_EQ(Get("./DevDetail/SwV"), "6.1.0-18-amd64");
  EXPECT_EQ(Get("./DevDetail/LrgObj"), "true");
  EXPECT_EQ(Get("./DevDetail/URI/MaxDepth"), "32");
  EXPECT_EQ(Get("./DevDetail/URI/MaxTotLen"), "2048");
  EXPECT_EQ(Get("./DevDetail/URI/MaxSegLen"), "255");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/OSPlatform"), "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/ProcessorArchitecture"), "9");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/TotalRAM"), "16000");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/TotalStorage"), "500000");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/FreeStorage"), "123456");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/SMBIOSSerialNumber"), "SN-0042-ABCDEFGHIJ");
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/DeviceName"), "build-host");
  EXPECT_EQ(tree_->Get(ctx_, "./DevDetail/Ext/Microsoft/TotalRAM").value.format, "int");
  ASSERT_TRUE(WriteFact(db(), kFactSoftwareVersion, "10.0.22631.2506").ok());
  EXPECT_EQ(Get("./DevDetail/SwV"), "10.0.22631.2506");
  host_.machine = "aarch64";
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/ProcessorArchitecture"), "12");
}

TEST_F(DeviceCspsTest, LocalTimeComesFromTheClock) {
  clock_.Set(FromUnixSeconds(1'800'000'000));
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/LocalTime"), "2027-01-15T08:00:00Z");
  clock_.Advance(std::chrono::hours(1));
  EXPECT_EQ(Get("./DevDetail/Ext/Microsoft/LocalTime"), "2027-01-15T09:00:00Z");
}

TEST_F(DeviceCspsTest, UnknownHostNumbersAre404) {
  host_.total_ram_mb.reset();
  host_.serial_number.clear();
  host_.machine = "mystery";
  EXPECT_EQ(tree_->Get(ctx_, "./DevDetail/Ext/Microsoft/TotalRAM").code, 404);
  EXPECT_EQ(tree_->Get(ctx_, "./DevDetail/Ext/Microsoft/SMBIOSSerialNumber").code, 404);
  EXPECT_EQ(tree_->Get(ctx_, "./DevDetail/Ext/Microsoft/ProcessorArchitecture").code, 404);
  // And absent nodes are not listed.
  std::string list = Get("./DevDetail/Ext/Microsoft");
  EXPECT_EQ(list.find("TotalRAM"), std::string::npos);
  EXPECT_NE(list.find("TotalStorage"), std::string::npos);
}

TEST_F(DeviceCspsTest, DeviceNameReplace) {
  const std::string uri = "./DevDetail/Ext/Microsoft/DeviceName";
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr("Kiosk-7")).code, 200);
  EXPECT_EQ(Get(uri), "Kiosk-7");
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr("")).code, 400);
  EXPECT_EQ(tree_->Replace(ctx_, uri, testing::Int("7")).code, 415);
  EXPECT_EQ(tree_->Add(ctx_, uri, Chr("x")).code, 405);
  EXPECT_EQ(tree_->Delete(ctx_, uri).code, 405);
  EXPECT_EQ(Get(uri), "Kiosk-7");
}

TEST_F(DeviceCspsTest, DnsComputerNameMacros) {
  const std::string uri = "./DevDetail/Ext/Microsoft/DNSComputerName";
  EXPECT_EQ(Get(uri), "build-host");
  ASSERT_EQ(tree_->Replace(ctx_, uri, Chr("Test%RAND:6%")).code, 200);
  EXPECT_TRUE(Matches(Get(uri), "Test", 6, [](int c) { return std::isdigit(c); })) << Get(uri);
  ASSERT_EQ(tree_->Replace(ctx_, uri, Chr("Dev-%SERIAL%")).code, 200);
  EXPECT_EQ(Get(uri), "Dev-SN-0042-ABCDEFGHIJ");
  // The serial is cut from the front to keep the name within 63 characters.
  std::string prefix(50, 'p');
  ASSERT_EQ(tree_->Replace(ctx_, uri, Chr(prefix + "%SERIAL%")).code, 200);
  EXPECT_EQ(Get(uri), prefix + "42-ABCDEFGHIJ");
  EXPECT_EQ(Get(uri).size(), 63u);
  std::string text(51, 'q');
  ASSERT_EQ(tree_->Replace(ctx_, uri, Chr(text + "%SERIAL%-x")).code, 200);
  EXPECT_EQ(Get(uri), text + "ABCDEFGHIJ-x");
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr(std::string(64, 'a'))).code, 400);
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr("bad_name")).code, 400);
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr("x%RAND:0%")).code, 400);
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr("x%BOGUS%")).code, 400);
  EXPECT_EQ(tree_->Replace(ctx_, uri, Chr("-x")).code, 400);
}

TEST_F(DeviceCspsTest, DevDetailIsDeviceOnly) {
  Context alice{"alice"};
  EXPECT_EQ(tree_->Get(alice, "./User/DevDetail/SwV").code, 405);
  EXPECT_EQ(tree_->Replace(ctx_, "./DevDetail/SwV", Chr("1")).code, 405);
}

TEST_F(DeviceCspsTest, HostFactsFromThisMachine) {
  // Only what every Linux host provides.
  HostFacts h = ReadHostFacts("/");
  EXPECT_FALSE(h.hostname.empty());
  EXPECT_FALSE(h.kernel_release.empty());
  EXPECT_FALSE(h.machine.empty());
  ASSERT_TRUE(h.total_ram_mb.has_value());
  EXPECT_GT(*h.total_ram_mb, 0);
  ASSERT_TRUE(h.total_storage_mb.has_value());
  ASSERT_TRUE(h.free_storage_mb.has_value());
  EXPECT_LE(*h.free_storage_mb, *h.total_storage_mb);
}

}  // namespace
}  // namespace dm::csp
