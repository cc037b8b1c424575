// Crash consistency (label `long`): real `dmagent` processes are SIGKILLed at random points
// while they exec a profile, run the reboot step, change the PIN or sign in. After every kill:
//  - the database passes PRAGMA integrity_check (opened with the sqlite3 API);
//  - the container unlocks with the old or the new PIN, never neither;
//  - what was acknowledged is there: once exec printed a 200 for a Replace, the value is set;
//    once "PIN changed" was printed, the new PIN works; once the reboot step reported boot N,
//    the boot count is N;
//  - the next run converges: the same operation, not killed, succeeds and `status --json` is
//    consistent with the state.
// Seeded (DMAGENT_CRASH_SEED, default below) so a failing sequence of operations and delays
// can be replayed; DMAGENT_CRASH_ITERATIONS changes the number of runs (default 300). Delays are
// uniform in [0, max]: max is DMAGENT_CRASH_MAX_DELAY_US, by default 30 ms or, on a slower
// machine, 1.2 x the slower of an uninterrupted reboot and sign-in (so kills also land in the write
// at the end of an operation, not only in start-up); the test prints the value it used.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
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
#include "agent/runtime/enrollment.h"
#include "agent/syncml/codec.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "csp/dm_tree.h"
#include "tests/security/crash_support.h"
#include "tests/security/dmagent_process.h"

namespace dm::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kUser[] = "carol@contoso.test";
constexpr char kWebSignIn[] =
    "./Device/Vendor/MSFT/Policy/Config/Authentication/ConfigureWebSignInAllowedUrls";

std::string ReplaceMessage(int n) {
  return "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2"
         "</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>local</LocURI>"
         "</Target><Source><LocURI>https://mdm.example/ManagementServer/MDM.svc</LocURI>"
         "</Source></SyncHdr><SyncBody><Replace><CmdID>2</CmdID><Item><Target><LocURI>" +
         std::string(kWebSignIn) + "</LocURI></Target><Data>" + "host" + std::to_string(n) +
         ".example</Data></Item></Replace><Final/></SyncBody></SyncML>";
}

// The code exec printed for CmdRef 2, if its answer made it out before the kill.
std::optional<std::string> PrintedStatus(const std::string& out) {
  const size_t end = out.find("</SyncML>");
  if (end == std::string::npos) return std::nullopt;
  auto m = syncml::Decode(std::string_view(out).substr(0, end + 9));
  if (!m.ok()) return std::nullopt;
  for (const syncml::Command& c : m->commands) {
    if (c.type == syncml::CommandType::kStatus && c.cmd_ref == "2") return c.data;
  }
  return std::nullopt;
}

enum class Op { kExec, kReboot, kPinChange, kSignIn };
const char* OpName(Op op) {
  switch (op) {
    case Op::kExec:
      return "exec";
    case Op::kReboot:
      return "reboot";
    case Op::kPinChange:
      return "pin change";
    case Op::kSignIn:
      return "signin";
  }
  return "?";
}

class CrashConsistencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dm-crash-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    work_ = tmpl;
    state_ = work_ / "state";
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(work_);  // kept for a look when something failed
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
  void AgentOk(const std::vector<std::string>& args, const std::string& in = "") {
    const auto start = std::chrono::steady_clock::now();
    ProcessResult r = Agent(args, in);
    slowest_ = std::max(slowest_, std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now() - start));
    ASSERT_EQ(r.exit_code, 0) << args[0] << ": " << r.out << r.err;
  }

  fs::path Database() const { return state_ / "dmagent.db"; }

  Result<std::unique_ptr<agent::Device>> OpenDevice() {
    agent::DeviceOptions o;
    o.state_dir = state_;
    o.pin_kdf = crypto::ScryptParams::ForTests();
    return agent::Device::Open(std::move(o));
  }

  fs::path work_, state_;
  std::chrono::microseconds slowest_{0};  // slowest uninterrupted AgentOk run
};

TEST_F(CrashConsistencyTest, RandomKillsNeverCorruptOrLoseAcknowledgedState) {
  const uint64_t seed = EnvOr("DMAGENT_CRASH_SEED", 20261122);
  const uint64_t iterations = EnvOr("DMAGENT_CRASH_ITERATIONS", 300);
  const auto budget = std::chrono::seconds(EnvOr("DMAGENT_CRASH_BUDGET_SECONDS", 240));
  SCOPED_TRACE("DMAGENT_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);

  // A device with the full credential set-up: a Hello container, an enrollment (sealed TLS
  // key, PIN reset service key), PIN recovery on, so PIN changes also rotate the protector.
  auto ca = pki::CreateCa("Crash CA", Clock::System().Now() - std::chrono::hours(1),
                          std::chrono::hours(48));
  ASSERT_TRUE(ca.ok());
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  pki::IssueOptions io;
  io.common_name = "CRASH-DEVICE";
  io.not_before = Clock::System().Now() - std::chrono::hours(1);
  io.client_auth = true;
  auto cert = pki::IssueForPublicKey(*ca, key->public_pem, io);
  ASSERT_TRUE(cert.ok());
  auto rsa = crypto::GenerateRsaPrivateKey(2048);
  ASSERT_TRUE(rsa.ok());
  auto rsa_pub = crypto::PublicKeyPem(*rsa);
  ASSERT_TRUE(rsa_pub.ok());
  WriteAll(work_ / "ca.pem", ca->cert_pem);
  WriteAll(work_ / "dev.pem", *cert);
  WriteAll(work_ / "dev.key", key->private_pem.view());
  WriteAll(work_ / "reset.pub", *rsa_pub);

  const std::string pins[] = {"204817", "396521"};
  int current = 0;  // index into pins
  ASSERT_NO_FATAL_FAILURE(AgentOk({"signin", "--user", kUser}, pins[current] + "\n"));
  ASSERT_NO_FATAL_FAILURE(AgentOk(
      {"enroll", "--management-url", "https://127.0.0.1:9/ManagementServer/MDM.svc", "--ca",
       (work_ / "ca.pem").string(), "--cert", (work_ / "dev.pem").string(), "--key",
       (work_ / "dev.key").string(), "--pin-reset-url", "https://127.0.0.1:9/PinReset/recover",
       "--pin-reset-key", (work_ / "reset.pub").string()}));
  ASSERT_NO_FATAL_FAILURE(AgentOk(
      {"exec", std::string(DMAGENT_SOURCE_DIR) + "/samples/profiles/enable-pin-recovery.xml"}));
  ASSERT_NO_FATAL_FAILURE(AgentOk({"reboot"}));
  ASSERT_NO_FATAL_FAILURE(AgentOk({"signin", "--user", kUser}, pins[current] + "\n"));

  // Once more each, for the timing: the first runs paid for key generation and migrations.
  slowest_ = std::chrono::microseconds(0);
  ASSERT_NO_FATAL_FAILURE(AgentOk({"reboot"}));
  ASSERT_NO_FATAL_FAILURE(AgentOk({"signin", "--user", kUser}, pins[current] + "\n"));
  const uint64_t max_delay_us =
      EnvOr("DMAGENT_CRASH_MAX_DELAY_US",
            std::clamp<uint64_t>(static_cast<uint64_t>(slowest_.count()) * 6 / 5, 30000, 150000));
  std::printf(
      "crash consistency: seed %llu, kill delays in [0, %llu] us "
      "(DMAGENT_CRASH_SEED / DMAGENT_CRASH_MAX_DELAY_US to repeat)\n",
      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(max_delay_us));

  std::optional<std::string> web_value;  // last value known to be committed
  int64_t boots = 2;
  struct Stats {
    int runs = 0, killed = 0, completed = 0, killed_after_effect = 0;
  } stats[4];
  const auto started = std::chrono::steady_clock::now();
  uint64_t done = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    if (std::chrono::steady_clock::now() - started > budget) break;
    const Op op = static_cast<Op>(rng() % 4);
    const auto delay = std::chrono::microseconds(rng() % (max_delay_us + 1));
    SCOPED_TRACE("iteration " + std::to_string(i) + ": " + OpName(op) + " killed after " +
                 std::to_string(delay.count()) + " us");
    Stats& s = stats[static_cast<int>(op)];
    ++s.runs;
    const int next = 1 - current;
    const std::string value = "host" + std::to_string(i) + ".example";
    fs::path message = work_ / "msg.xml";
    ProcessResult r;
    switch (op) {
      case Op::kExec:
        WriteAll(message, ReplaceMessage(static_cast<int>(i)));
        r = Agent({"exec", message.string()}, "", delay);
        break;
      case Op::kReboot:
        r = Agent({"reboot"}, "", delay);
        break;
      case Op::kPinChange:
        r = Agent({"pin", "change", "--user", kUser}, pins[current] + "\n" + pins[next] + "\n",
                  delay);
        break;
      case Op::kSignIn:
        r = Agent({"signin", "--user", kUser}, pins[current] + "\n", delay);
        break;
    }
    ASSERT_FALSE(r.timed_out) << "dmagent hung";
    if (r.killed) {
      ++s.killed;
    } else {
      ++s.completed;
      ASSERT_EQ(r.exit_code, 0) << "an uninterrupted run failed: " << r.out << r.err;
    }

    // 1. The file is sound.
    ASSERT_EQ(IntegrityCheck(Database()), "ok");

    // 2. What the run acknowledged, and which PIN is in force.
    {
      auto device = OpenDevice();
      ASSERT_TRUE(device.ok()) << device.error().ToString();
      container::ContainerStore& store = (*device)->containers();
      if (op == Op::kPinChange && r.out.find("PIN changed for") != std::string::npos) {
        auto u = store.Unlock(kUser, SecretBytes(std::string_view(pins[next])));
        ASSERT_TRUE(u.ok()) << "\"PIN changed\" was printed but the new PIN does not unlock: "
                            << u.status().ToString();
        current = next;
        if (r.killed) ++s.killed_after_effect;
      } else {
        // The PIN in force is the old one or, for an interrupted change, maybe the new one.
        auto u = store.Unlock(kUser, SecretBytes(std::string_view(pins[current])));
        if (!u.ok() && op == Op::kPinChange) {
          ASSERT_EQ(u.status().code(), Code::kUnauthenticated) << u.status().ToString();
          auto v = store.Unlock(kUser, SecretBytes(std::string_view(pins[next])));
          ASSERT_TRUE(v.ok()) << "neither the old nor the new PIN unlocks: "
                              << v.status().ToString();
          current = next;
          ++s.killed_after_effect;
        } else {
          ASSERT_TRUE(u.ok()) << "the PIN in force no longer unlocks: " << u.status().ToString();
        }
      }

      if (op == Op::kExec) {
        csp::GetResult g = (*device)->tree().Get({.user = kUser}, kWebSignIn);
        const std::optional<std::string> now =
            g.code == 200 ? std::optional(g.value.data) : std::nullopt;
        const std::optional<std::string> printed = PrintedStatus(r.out);
        if (printed == "200") {
          ASSERT_EQ(now, value) << "exec answered 200 for the Replace but the value is not set";
          if (r.killed) ++s.killed_after_effect;
        } else {
          ASSERT_TRUE(now == web_value || now == value)
              << "the value is neither the old nor the new one: " << now.value_or("(none)");
          if (now == value && r.killed) ++s.killed_after_effect;
        }
        web_value = now;
      }
      if (op == Op::kReboot) {
        auto boot = (*device)->policy().LastBoot();
        ASSERT_TRUE(boot.ok());
        const std::string done_line = "reboot step done (boot " + std::to_string(boots + 1) + ")";
        if (r.out.find(done_line) != std::string::npos) {
          ASSERT_EQ(boot->count, boots + 1)
              << "the reboot step reported a boot that is not recorded";
        } else {
          ASSERT_TRUE(boot->count == boots || boot->count == boots + 1) << boot->count;
        }
        if (boot->count == boots + 1 && r.killed) ++s.killed_after_effect;
        boots = boot->count;
      }
    }

    // 3. The next run converges: the same operation, uninterrupted, succeeds.
    if (r.killed) {
      switch (op) {
        case Op::kExec: {
          ProcessResult again = Agent({"exec", message.string()});
          ASSERT_EQ(again.exit_code, 0) << again.err;
          ASSERT_EQ(PrintedStatus(again.out), "200") << again.out;
          web_value = value;
          break;
        }
        case Op::kReboot: {
          ProcessResult again = Agent({"reboot"});
          ASSERT_EQ(again.exit_code, 0) << again.err;
          ++boots;
          break;
        }
        case Op::kPinChange: {
          const int other = 1 - current;
          ProcessResult again =
              Agent({"pin", "change", "--user", kUser}, pins[current] + "\n" + pins[other] + "\n");
          ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
          current = other;
          break;
        }
        case Op::kSignIn: {
          ProcessResult again = Agent({"signin", "--user", kUser}, pins[current] + "\n");
          ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
          break;
        }
      }
      ProcessResult status = Agent({"status", "--json"});
      ASSERT_EQ(status.exit_code, 0) << status.err;
      const auto j = nlohmann::json::parse(status.out, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << status.out;
      const std::string dump = j.dump();
      EXPECT_NE(dump.find(kUser), std::string::npos) << dump;
      EXPECT_NE(dump.find("\"BootCount\":" + std::to_string(boots)), std::string::npos)
          << "status disagrees with the recorded boot count " << boots << ": " << dump;
      ASSERT_EQ(IntegrityCheck(Database()), "ok");
    }
    ++done;
  }

  std::printf("crash consistency, seed %llu: %llu iterations\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(done));
  int killed_total = 0;
  for (int op = 0; op < 4; ++op) {
    const Stats& s = stats[op];
    killed_total += s.killed;
    std::printf("  %-10s runs %3d  killed %3d (after its effect: %3d)  completed %3d\n",
                OpName(static_cast<Op>(op)), s.runs, s.killed, s.killed_after_effect, s.completed);
  }
  EXPECT_GE(done, std::min<uint64_t>(iterations, 100)) << "too few iterations ran in the budget";
  EXPECT_GT(killed_total, static_cast<int>(done / 8)) << "too few runs were actually killed";
}

// The first enrollment creates machine.key and seals the device's TLS key under it in the
// database. Killed anywhere, the next enrollment must succeed and the sealed key must open.
TEST_F(CrashConsistencyTest, KilledFirstEnrollmentConverges) {
  const uint64_t seed = EnvOr("DMAGENT_CRASH_SEED", 20261122);
  const uint64_t iterations = EnvOr("DMAGENT_CRASH_ENROLL_ITERATIONS", 60);
  SCOPED_TRACE("DMAGENT_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto ca = pki::CreateCa("Crash CA", Clock::System().Now() - std::chrono::hours(1),
                          std::chrono::hours(48));
  ASSERT_TRUE(ca.ok());
  auto key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(key.ok());
  pki::IssueOptions io;
  io.common_name = "CRASH-DEVICE";
  io.not_before = Clock::System().Now() - std::chrono::hours(1);
  io.client_auth = true;
  auto cert = pki::IssueForPublicKey(*ca, key->public_pem, io);
  ASSERT_TRUE(cert.ok());
  WriteAll(work_ / "ca.pem", ca->cert_pem);
  WriteAll(work_ / "dev.pem", *cert);
  WriteAll(work_ / "dev.key", key->private_pem.view());
  const std::vector<std::string> enroll = {"enroll",
                                           "--management-url",
                                           "https://127.0.0.1:9/ManagementServer/MDM.svc",
                                           "--ca",
                                           (work_ / "ca.pem").string(),
                                           "--cert",
                                           (work_ / "dev.pem").string(),
                                           "--key",
                                           (work_ / "dev.key").string()};

  // How long an uninterrupted first enrollment takes, for the delay range.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(AgentOk(enroll));
  const auto took =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  const uint64_t max_delay_us =
      EnvOr("DMAGENT_CRASH_MAX_DELAY_US",
            std::clamp<uint64_t>(static_cast<uint64_t>(took.count()) * 6 / 5, 30000, 150000));
  int killed = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    fs::remove_all(state_);
    const auto delay = std::chrono::microseconds(rng() % (max_delay_us + 1));
    SCOPED_TRACE("iteration " + std::to_string(i) + ": enroll killed after " +
                 std::to_string(delay.count()) + " us");
    ProcessResult r = Agent(enroll, "", delay);
    ASSERT_FALSE(r.timed_out);
    if (r.killed) ++killed;
    if (fs::exists(state_ / "dmagent.db")) {
      ASSERT_EQ(IntegrityCheck(Database()), "ok");
    }
    ProcessResult again = Agent(enroll);
    ASSERT_EQ(again.exit_code, 0) << "enrollment does not converge: " << again.err;
    auto device = OpenDevice();
    ASSERT_TRUE(device.ok()) << device.error().ToString();
    auto sealed = agent::LoadDeviceKey(**device);
    ASSERT_TRUE(sealed.ok()) << "the device key no longer opens: " << sealed.status().ToString();
    EXPECT_TRUE(*sealed == key->private_pem);
  }
  std::printf("first enrollment: %d of %llu runs killed (delays in [0, %llu] us)\n", killed,
              static_cast<unsigned long long>(iterations),
              static_cast<unsigned long long>(max_delay_us));
  EXPECT_GT(killed, static_cast<int>(iterations / 4));
}

}  // namespace
}  // namespace dm::testing
