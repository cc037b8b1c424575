// Crash consistency against a real management server (label `long`): real `dmagent` processes
// are SIGKILLed at random points while they run `dmagent sync` (an OMA-DM session over mutual
// TLS with dmserver, in this process on a loopback port) and `dmagent pin reset`, destructive
// and non-destructive (the latter through dmserver's PIN reset service: password + TOTP). Each
// sync iteration first changes the device's profile on the server, so every session carries a
// new command and every other one a changed report. After every kill:
//  - the database passes PRAGMA integrity_check;
//  - the container unlocks with the old or the new PIN, never neither, and the user can still
//    reset (the protector is there: CanReset DestructiveAndNonDestructive); the keys are whole:
//    a non-destructive reset never changes them, a destructive one leaves either all the old
//    keys (old PIN) or the new container with its reset record (new PIN), and the unlocked
//    private key signs for the public key on record;
//  - no accepted command is lost: once dmserver recorded a 200 for a command, the device has
//    that command's value (or a newer command's);
//  - no undelivered report is lost: the device's outbox still holds its last report, or dmserver
//    has exactly that report;
//  - the next run converges: a killed reset, run again, succeeds; then uninterrupted syncs
//    leave nothing to send on either side and dmserver sees the device compliant.
// Seeded (DMAGENT_CRASH_SEED); DMAGENT_CRASH_SERVER_ITERATIONS sets the number of runs (default
// 240). Kill delays are uniform in [0, 1.2 x the operation's uninterrupted time] (at least
// 5 ms, at most 300 ms; DMAGENT_CRASH_MAX_DELAY_US overrides), so most runs die somewhere in
// start-up, the TLS exchange or the final commit; the test prints what it used. On a slow
// machine it stops after DMAGENT_CRASH_BUDGET_SECONDS (default 100) but needs 100 iterations.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "agent/runtime/device.h"
#include "agent/runtime/outbox.h"
#include "agent/runtime/sync.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "samples/server/admin.h"
#include "samples/server/report.h"
#include "samples/server/server.h"
#include "tests/security/crash_support.h"
#include "tests/security/dmagent_process.h"

namespace dm::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kTenant[] = "72f988bf-86f1-41af-91ab-2d7cd011db47";
constexpr char kUser[] = "alice@fabrikam.test";
constexpr char kPassword[] = "Correct-Horse-Battery-9";
constexpr char kTotpBase32[] = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
constexpr char kWebSignIn[] =
    "./Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls";
constexpr char kRecovery[] =
    "./Device/Vendor/MSFT/PassportForWork/72f988bf-86f1-41af-91ab-2d7cd011db47/Policies/"
    "EnablePinRecovery";

std::string Sha256Hex(std::string_view s) {
  auto d = crypto::Sha256(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  return d.ok() ? crypto::HexEncode(*d) : "";
}

// The server's time, read by its threads while the test moves it: each PIN reset needs a fresh
// 30-second TOTP step (dmserver accepts a step once), so the test steps this clock instead of
// waiting. It runs behind the real clock, so certificates dmserver issues are already valid
// for the real-time TLS checks of the agent.
class SteppedClock final : public Clock {
 public:
  explicit SteppedClock(TimePoint start) : seconds_(ToUnixSeconds(start)) {}
  TimePoint Now() const override { return FromUnixSeconds(seconds_.load()); }
  void Advance(std::chrono::seconds d) { seconds_ += d.count(); }

 private:
  std::atomic<int64_t> seconds_;
};

enum class Op { kSync, kResetNonDestructive, kResetDestructive };
constexpr int kOps = 3;
const char* OpName(Op op) {
  switch (op) {
    case Op::kSync:
      return "sync";
    case Op::kResetNonDestructive:
      return "reset";
    case Op::kResetDestructive:
      return "reset -d";
  }
  return "?";
}

// What dmserver has recorded for the device.
struct ServerView {
  // Values of the web sign-in commands from the newest one acknowledged with 200 on (the device
  // must hold one of them); empty when none was acknowledged yet.
  std::vector<std::string> values_since_acked;
  std::string latest_value;  // of the newest command
  int64_t session_seq = 0;
  int64_t last_totp_step = -1;
  std::string report_sha256;  // of the newest report, "" when none
};

std::string CommandValue(const std::string& xml) {
  const size_t b = xml.find("<Data>");
  const size_t e = xml.find("</Data>");
  return b == std::string::npos || e == std::string::npos ? "" : xml.substr(b + 6, e - b - 6);
}

class CrashConsistencyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dm-crash-server-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    work_ = tmpl;
    state_ = work_ / "device";
  }
  void TearDown() override {
    server_.reset();
    if (!HasFailure()) fs::remove_all(work_);  // kept for a look when something failed
  }

  void StartServer(TimePoint start) {
    clock_ = std::make_unique<SteppedClock>(start);
    server::ServerOptions so;
    so.state_dir = work_ / "server";
    so.clock = clock_.get();
    so.password_kdf = crypto::ScryptParams::ForTests();
    so.pin_reset_rsa_bits = 2048;
    auto s = server::DmServer::Start(so);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    server_ = std::move(*s);
  }

  json Admin(const std::string& op, const json& args) {
    auto r = server::RunAdmin(server_->store(), op, args);
    EXPECT_TRUE(r.ok()) << op << ": " << r.error().ToString();
    return r.ok() ? *r : json();
  }

  ProcessResult Agent(const std::vector<std::string>& args, const std::string& in = "",
                      std::optional<std::chrono::microseconds> kill_after = std::nullopt) {
    std::vector<std::string> full = {"--state-dir", state_.string(), "--pin-kdf-cost", "10"};
    full.insert(full.end(), args.begin(), args.end());
    ProcessOptions options;
    options.stdin_data = in;
    options.kill_after = kill_after;
    return RunProcess(DMAGENT_BIN, full, options);
  }
  // Runs uninterrupted and must succeed; returns how long it took.
  std::chrono::microseconds AgentOk(const std::vector<std::string>& args,
                                    const std::string& in = "", std::string* out = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    ProcessResult r = Agent(args, in);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << (args.size() > 1 ? args[1] : "") << ": " << r.out
                              << r.err;
    if (out != nullptr) *out = r.out;
    return took;
  }

  // Password, a TOTP code for a step dmserver has not seen yet, the new PIN.
  std::string ResetInput(const std::string& new_pin) {
    clock_->Advance(std::chrono::seconds(30));
    auto secret = crypto::Base32Decode(kTotpBase32);
    EXPECT_TRUE(secret.ok());
    auto code = crypto::Totp(*secret, clock_->Now());
    EXPECT_TRUE(code.ok());
    return std::string(kPassword) + "\n" + code.value_or("") + "\n" + new_pin + "\n";
  }
  std::vector<std::string> ResetArgs(bool destructive) {
    std::vector<std::string> a = {"pin", "reset", "--user", kUser};
    if (destructive) a.push_back("--destructive");
    return a;
  }

  void SetWebSignIn(const std::string& value) {
    Admin("profile.add", {{"name", "web-signin"},
                          {"replace", true},
                          {"settings", json::array({{{"uri", kWebSignIn}, {"value", value}}})}});
  }

  ServerView Server() {
    ServerView v;
    auto lock = server_->store().Lock();
    storage::Database& db = server_->store().db();
    auto st = db.Prepare(
        "SELECT state, status_code, xml FROM commands WHERE dev_id = ? AND loc_uri LIKE "
        "'%ConfigureWebSignInAllowedUrls' ORDER BY rowid");
    EXPECT_TRUE(st.ok());
    if (!st.ok()) return v;
    st->Bind(1, dev_id_);
    std::vector<std::string> values;
    std::optional<size_t> acked;
    while (st->Step().value_or(false)) {
      values.push_back(CommandValue(st->Text(2)));
      if (st->Text(0) == "acked" && !st->IsNull(1) && st->Int(1) == 200) acked = values.size() - 1;
    }
    if (!values.empty()) v.latest_value = values.back();
    if (acked) v.values_since_acked.assign(values.begin() + *acked, values.end());
    auto seq = db.Prepare("SELECT session_seq FROM devices WHERE dev_id = ?");
    EXPECT_TRUE(seq.ok());
    seq->Bind(1, dev_id_);
    if (seq->Step().value_or(false)) v.session_seq = seq->Int(0);
    auto report = db.Prepare("SELECT data FROM device_reports WHERE dev_id = ? AND type = ?");
    EXPECT_TRUE(report.ok());
    report->BindAll(dev_id_, agent::kReportAlertType);
    if (report->Step().value_or(false)) v.report_sha256 = Sha256Hex(report->Text(0));
    auto user = server_->store().FindUser(kUser);
    EXPECT_TRUE(user.ok());
    if (user.ok()) v.last_totp_step = user->last_totp_step;
    return v;
  }

  // The admin's report for this device: the status of the two settings ("none" when absent)
  // and the user's CanReset.
  struct AdminView {
    std::string web_signin = "none", recovery = "none", can_reset = "none";
  };
  AdminView AdminReport() {
    AdminView v;
    const json report = Admin("report", json::object());
    for (const json& row : report.at("rows")) {
      if (row.value("device", "") != dev_id_) continue;
      const std::string setting = row.value("setting", "");
      if (setting.find("ConfigureWebSignInAllowedUrls") != std::string::npos) {
        v.web_signin = row.value("status", "");
      } else if (setting.find("EnablePinRecovery") != std::string::npos) {
        v.recovery = row.value("status", "");
      }
      if (row.value("user", "") == kUser && row.contains("can_reset") &&
          row["can_reset"].is_string()) {
        v.can_reset = row["can_reset"].get<std::string>();
      }
    }
    return v;
  }

  fs::path Database() const { return state_ / "dmagent.db"; }

  Result<std::unique_ptr<agent::Device>> OpenDevice() {
    agent::DeviceOptions o;
    o.state_dir = state_;
    o.pin_kdf = crypto::ScryptParams::ForTests();
    return agent::Device::Open(std::move(o));
  }

  // Unlocks with `pin` and checks the unlocked private key signs for the public key on record.
  void ExpectKeyWorks(agent::Device& d, const std::string& pin, const std::string& public_key) {
    const std::string data = "crash-consistency";
    auto sig = d.containers().Sign(
        kUser, SecretBytes(pin),
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    ASSERT_TRUE(sig.ok()) << "the private key does not open: " << sig.status().ToString();
    EXPECT_TRUE(crypto::EcdsaVerify(public_key,
                                    std::span<const uint8_t>(
                                        reinterpret_cast<const uint8_t*>(data.data()), data.size()),
                                    *sig)
                    .ok())
        << "the unlocked private key does not belong to the public key on record";
  }

  std::string WebSignInOnDevice(agent::Device& d) {
    csp::GetResult g = d.tree().Get({.user = kUser}, std::string("./Device") + (kWebSignIn + 1));
    return g.code == 200 ? g.value.data : "";
  }

  // No accepted command lost, no undelivered report lost.
  void ExpectNothingLost(agent::Device& d, const ServerView& s) {
    if (!s.values_since_acked.empty()) {
      const std::string have = WebSignInOnDevice(d);
      EXPECT_NE(std::find(s.values_since_acked.begin(), s.values_since_acked.end(), have),
                s.values_since_acked.end())
          << "dmserver recorded a 200 for '" << s.values_since_acked.front()
          << "' but the device has '" << have << "'";
    }
    agent::Outbox outbox(d.db(), d.clock());
    auto pending = outbox.Pending();
    ASSERT_TRUE(pending.ok());
    auto last = d.Setting(agent::kLastReportHashKey);
    ASSERT_TRUE(last.ok());
    ASSERT_TRUE(last->has_value()) << "the device never queued a report";
    if (pending->empty()) {
      EXPECT_EQ(s.report_sha256, **last)
          << "the outbox is empty but dmserver does not have the device's last report";
    } else {
      ASSERT_EQ(pending->size(), 1u) << "only the newest report waits";
      EXPECT_EQ(Sha256Hex((*pending)[0].alert.data), **last);
    }
  }

  // Uninterrupted syncs until neither side has anything left to send: the server sent no
  // command, the outbox is empty and the device's report is the one it last queued (so the next
  // sync would have nothing to report; the end of the test checks that with a real sync). Then
  // dmserver sees the device compliant and holds its last report.
  void ExpectSyncConverges(const std::string& pin) {
    std::string out;
    bool quiet = false;
    for (int i = 0; i < 3 && !quiet; ++i) {
      AgentOk({"sync"}, "", &out);
      if (out.find(": 0 command(s), 0 failed,") == std::string::npos) continue;
      auto device = OpenDevice();
      ASSERT_TRUE(device.ok()) << device.error().ToString();
      auto pending = agent::Outbox((*device)->db(), (*device)->clock()).Pending();
      auto xml = (*device)->policy().ReportXml();
      auto last = (*device)->Setting(agent::kLastReportHashKey);
      ASSERT_TRUE(pending.ok() && xml.ok() && last.ok());
      quiet = pending->empty() && Sha256Hex(*xml) == last->value_or("");
    }
    ASSERT_TRUE(quiet) << "three syncs and still something to send: " << out;
    const ServerView s = Server();
    auto device = OpenDevice();
    ASSERT_TRUE(device.ok()) << device.error().ToString();
    EXPECT_EQ(WebSignInOnDevice(**device), s.latest_value);
    ASSERT_FALSE(s.values_since_acked.empty());
    EXPECT_EQ(s.values_since_acked.back(), s.latest_value) << "the newest command is acknowledged";
    ASSERT_NO_FATAL_FAILURE(ExpectNothingLost(**device, s));
    EXPECT_TRUE((*device)->containers().Unlock(kUser, SecretBytes(pin)).ok());
    const AdminView admin = AdminReport();
    EXPECT_EQ(admin.web_signin, "Succeeded");
    EXPECT_EQ(admin.recovery, "Succeeded");
    EXPECT_EQ(admin.can_reset, "DestructiveAndNonDestructive");
  }

  fs::path work_, state_;
  std::unique_ptr<SteppedClock> clock_;
  std::unique_ptr<server::DmServer> server_;
  std::string dev_id_;
};

TEST_F(CrashConsistencyServerTest, KillsDuringSyncAndPinResetNeverLoseOrStrand) {
  const uint64_t seed = EnvOr("DMAGENT_CRASH_SEED", 20261122);
  const uint64_t iterations = EnvOr("DMAGENT_CRASH_SERVER_ITERATIONS", 240);
  const auto budget = std::chrono::seconds(EnvOr("DMAGENT_CRASH_BUDGET_SECONDS", 100));
  SCOPED_TRACE("DMAGENT_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  // At most two resets (one TOTP step each) per iteration, plus the set-up's.
  StartServer(Clock::System().Now() - std::chrono::hours(1) -
              std::chrono::seconds(60) * static_cast<int64_t>(iterations + 10));
  ASSERT_NE(server_, nullptr);

  // The tenant as in samples/demo: a user with password + authenticator in a group that gets
  // PIN recovery, consent for both PIN reset apps; the device enrolls and joins a device group
  // that gets the web sign-in profile.
  const json tenant = Admin("tenant.add", {{"name", "Fabrikam"}, {"id", kTenant}});
  WriteAll(work_ / "token", tenant.value("enrollment_token", ""));
  WriteAll(work_ / "ca.pem", server_->ca_cert_pem());
  Admin("user.add", {{"upn", kUser}, {"password", kPassword}, {"totp_secret", kTotpBase32}});
  Admin("group.add", {{"name", "pin-recovery-users"}, {"kind", "user"}});
  Admin("group.member", {{"group", "pin-recovery-users"}, {"member", kUser}});
  Admin("consent", {{"app", "service"}});
  Admin("consent", {{"app", "client"}});
  Admin("profile.add",
        {{"name", "pin-recovery"},
         {"settings", json::array({{{"uri", kRecovery}, {"value", "true"}, {"format", "bool"}}})}});
  Admin("assign", {{"profile", "pin-recovery"}, {"group", "pin-recovery-users"}});
  AgentOk({"enroll", "--email", kUser, "--discovery-url",
           server_->BaseUrl() + "/EnrollmentServer/Discovery.svc", "--token-file",
           (work_ / "token").string(), "--ca", (work_ / "ca.pem").string()});
  {
    auto lock = server_->store().Lock();
    auto devices = server_->store().Devices();
    ASSERT_TRUE(devices.ok());
    ASSERT_EQ(devices->size(), 1u);
    dev_id_ = devices->front().dev_id;
  }
  Admin("group.add", {{"name", "all-devices"}, {"kind", "device"}});
  Admin("group.member", {{"group", "all-devices"}, {"member", dev_id_}});
  SetWebSignIn("setup.example");
  Admin("assign", {{"profile", "web-signin"}, {"group", "all-devices"}});

  const std::string pins[] = {"204817", "396521"};
  int current = 0;  // index into pins
  AgentOk({"signin", "--user", kUser}, pins[current] + "\n");
  AgentOk({"sync"});
  AgentOk({"reboot"});                                         // EnablePinRecovery takes effect...
  AgentOk({"signin", "--user", kUser}, pins[current] + "\n");  // ...and the protector appears
  ASSERT_NO_FATAL_FAILURE(ExpectSyncConverges(pins[current]));
  ASSERT_FALSE(HasFailure());

  // Uninterrupted timings (after the first runs paid for key generation), for the delays: the
  // slower of two runs each, so one lucky run does not keep the kills out of the final commit.
  std::chrono::microseconds took[kOps] = {};
  for (int round = 0; round < 2; ++round) {
    SetWebSignIn("timing" + std::to_string(round) + ".example");
    took[0] = std::max(took[0], AgentOk({"sync"}));
    took[1] = std::max(took[1], AgentOk(ResetArgs(false), ResetInput(pins[1 - current])));
    current = 1 - current;
    took[2] = std::max(took[2], AgentOk(ResetArgs(true), ResetInput(pins[1 - current])));
    current = 1 - current;
    ASSERT_NO_FATAL_FAILURE(ExpectSyncConverges(pins[current]));
    ASSERT_FALSE(HasFailure());
  }
  uint64_t max_delay_us[kOps];
  for (int op = 0; op < kOps; ++op) {
    max_delay_us[op] =
        EnvOr("DMAGENT_CRASH_MAX_DELAY_US",
              std::clamp<uint64_t>(static_cast<uint64_t>(took[op].count()) * 6 / 5, 5000, 300000));
  }
  std::printf(
      "crash consistency with dmserver: seed %llu; uninterrupted sync %lld us, reset %lld us, "
      "reset -d %lld us; kill delays in [0, %llu], [0, %llu], [0, %llu] us\n",
      static_cast<unsigned long long>(seed), static_cast<long long>(took[0].count()),
      static_cast<long long>(took[1].count()), static_cast<long long>(took[2].count()),
      static_cast<unsigned long long>(max_delay_us[0]),
      static_cast<unsigned long long>(max_delay_us[1]),
      static_cast<unsigned long long>(max_delay_us[2]));

  struct Stats {
    int runs = 0, killed = 0, completed = 0;
    int killed_after_server = 0;  // the server had seen the session / authenticated the user
    int killed_after_effect = 0;  // the server recorded the 200 / the new PIN was in force
  } stats[kOps];
  const auto started = std::chrono::steady_clock::now();
  uint64_t done = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    if (std::chrono::steady_clock::now() - started > budget) break;
    const uint64_t pick = rng() % 4;  // half syncs, a quarter each kind of reset
    const Op op = pick < 2    ? Op::kSync
                  : pick == 2 ? Op::kResetNonDestructive
                              : Op::kResetDestructive;
    const auto delay = std::chrono::microseconds(rng() % (max_delay_us[static_cast<int>(op)] + 1));
    SCOPED_TRACE("iteration " + std::to_string(i) + ": " + OpName(op) + " killed after " +
                 std::to_string(delay.count()) + " us");
    Stats& s = stats[static_cast<int>(op)];
    ++s.runs;
    const int next = 1 - current;
    const std::string value = "host" + std::to_string(i) + ".example";

    // Before: the keys on record and what the server has seen.
    container::ContainerInfo before;
    {
      auto device = OpenDevice();
      ASSERT_TRUE(device.ok()) << device.error().ToString();
      auto info = (*device)->containers().Info(kUser);
      ASSERT_TRUE(info.ok());
      before = *info;
    }
    const ServerView server_before = Server();

    ProcessResult r;
    if (op == Op::kSync) {
      SetWebSignIn(value);
      r = Agent({"sync"}, "", delay);
    } else {
      r = Agent(ResetArgs(op == Op::kResetDestructive), ResetInput(pins[next]), delay);
    }
    ASSERT_FALSE(r.timed_out) << "dmagent hung";
    if (r.killed) {
      ++s.killed;
    } else {
      ++s.completed;
      ASSERT_EQ(r.exit_code, 0) << "an uninterrupted run failed: " << r.out << r.err;
    }
    const ServerView server_after = Server();
    if (r.killed && (server_after.session_seq != server_before.session_seq ||
                     server_after.last_totp_step != server_before.last_totp_step)) {
      ++s.killed_after_server;
    }

    // 1. The file is sound.
    ASSERT_EQ(IntegrityCheck(Database()), "ok");

    {
      auto device = OpenDevice();
      ASSERT_TRUE(device.ok()) << device.error().ToString();
      container::ContainerStore& store = (*device)->containers();

      // 2. The old or the new PIN, never neither; the keys whole; a reset still possible.
      const bool said_done =
          r.out.find("reset done for " + std::string(kUser)) != std::string::npos;
      auto old_pin = store.Unlock(kUser, SecretBytes(pins[current]));
      bool new_in_force = false;
      if (!old_pin.ok()) {
        ASSERT_NE(op, Op::kSync) << "a sync changed the PIN: " << old_pin.status().ToString();
        ASSERT_EQ(old_pin.status().code(), Code::kUnauthenticated) << old_pin.status().ToString();
        auto new_pin = store.Unlock(kUser, SecretBytes(pins[next]));
        ASSERT_TRUE(new_pin.ok()) << "neither the old nor the new PIN unlocks: "
                                  << new_pin.status().ToString();
        new_in_force = true;
      }
      ASSERT_FALSE(said_done && !new_in_force)
          << "the reset reported success but the new PIN does not unlock";
      auto info = store.Info(kUser);
      ASSERT_TRUE(info.ok());
      if (op != Op::kResetDestructive || !new_in_force) {
        EXPECT_EQ(info->ngc_key_id, before.ngc_key_id) << "the keys changed";
        EXPECT_EQ(info->thumbprint, before.thumbprint);
        EXPECT_EQ(info->public_key_pem, before.public_key_pem);
      } else {
        EXPECT_NE(info->ngc_key_id, before.ngc_key_id) << "a new PIN but the old key";
        EXPECT_NE(info->thumbprint, before.thumbprint);
        EXPECT_FALSE(info->self_signed) << "dmserver's CA certifies the new key";
        ASSERT_TRUE(info->last_reset.has_value()) << "a destructive reset without its record";
        EXPECT_EQ(info->last_reset->kind, container::ResetKind::kDestructive);
        EXPECT_EQ(info->last_reset->old_thumbprint, before.thumbprint);
        EXPECT_EQ(info->last_reset->new_thumbprint, info->thumbprint);
      }
      ASSERT_NO_FATAL_FAILURE(
          ExpectKeyWorks(**device, pins[new_in_force ? next : current], info->public_key_pem));
      EXPECT_TRUE(info->protector_present) << "the user could no longer reset without losing keys";
      EXPECT_EQ(info->can_reset, container::CanReset::kDestructiveAndNonDestructive)
          << info->can_reset_reason;
      if (new_in_force) {
        current = next;
        if (r.killed) ++s.killed_after_effect;
      }

      // 3. Nothing the server accepted, nothing the device has not delivered, is lost.
      ASSERT_NO_FATAL_FAILURE(ExpectNothingLost(**device, server_after));
      if (op == Op::kSync && r.killed && !server_after.values_since_acked.empty() &&
          server_after.values_since_acked.front() == value) {
        ++s.killed_after_effect;
      }
    }

    // 4. The next run converges.
    if (r.killed) {
      if (op != Op::kSync) {
        const int other = 1 - current;
        std::string out;
        AgentOk(ResetArgs(op == Op::kResetDestructive), ResetInput(pins[other]), &out);
        ASSERT_NE(out.find("reset done for"), std::string::npos) << out;
        current = other;
      }
      ASSERT_NO_FATAL_FAILURE(ExpectSyncConverges(pins[current]));
      ASSERT_EQ(IntegrityCheck(Database()), "ok");
    }
    ASSERT_FALSE(HasFailure());
    ++done;
  }

  // Converged really means quiet: after converging (the last run may not have been killed),
  // one more session has nothing to do on either side.
  {
    ASSERT_NO_FATAL_FAILURE(ExpectSyncConverges(pins[current]));
    std::string out;
    AgentOk({"sync"}, "", &out);
    EXPECT_NE(out.find(": 0 command(s), 0 failed, 0 report(s) delivered"), std::string::npos)
        << out;
  }

  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  std::printf("crash consistency with dmserver, seed %llu: %llu iterations in %lld s\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(done),
              static_cast<long long>(seconds));
  int killed_total = 0, after_server = 0;
  for (int op = 0; op < kOps; ++op) {
    const Stats& s = stats[op];
    killed_total += s.killed;
    after_server += s.killed_after_server;
    std::printf(
        "  %-9s runs %3d  killed %3d (after the server took part: %3d, after the effect: %3d)  "
        "completed %3d\n",
        OpName(static_cast<Op>(op)), s.runs, s.killed, s.killed_after_server, s.killed_after_effect,
        s.completed);
  }
  EXPECT_GE(done, std::min<uint64_t>(iterations, 100)) << "too few iterations ran in the budget";
  EXPECT_GT(killed_total, static_cast<int>(done / 4)) << "too few runs were actually killed";
  EXPECT_GT(after_server, static_cast<int>(done / 10))
      << "too few kills landed after the server took part: the delays miss the network part";
}

}  // namespace
}  // namespace dm::testing
