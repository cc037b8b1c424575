// What dmagent and dmserver share as command-line programs: --version with the git revision,
// one table of exit statuses (base/exit_code.h), a suggestion for a mistyped command, values
// checked when the command line is parsed, and read-only commands that never create state.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/exit_code.h"
#include "base/version.h"
#include "tests/security/dmagent_process.h"

namespace dm {
namespace {

namespace fs = std::filesystem;
using testing::ProcessResult;
using testing::RunProcess;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CliConventionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "cli-conventions-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  ProcessResult Agent(std::vector<std::string> args, const std::string& state = "agent") {
    args.insert(args.begin(), {"--state-dir", (dir_ / state).string(), "--pin-kdf-cost", "10"});
    return RunProcess(DMAGENT_BIN, args);
  }
  ProcessResult Server(std::vector<std::string> args, const std::string& state = "server") {
    args.insert(args.begin(),
                {"--log-level", "warn", "--test-kdf", "--state-dir", (dir_ / state).string()});
    return RunProcess(DMSERVER_BIN, args);
  }

  fs::path dir_;
};

TEST_F(CliConventionsTest, BothBinariesPrintTheirVersionAndGitRevision) {
  for (const auto& [binary, name] :
       {std::pair{DMAGENT_BIN, "dmagent"}, std::pair{DMSERVER_BIN, "dmserver"}}) {
    ProcessResult r = RunProcess(binary, {"--version"});
    EXPECT_EQ(r.exit_code, kExitOk) << r.err;
    EXPECT_EQ(r.out, VersionLine(name) + "\n");
    EXPECT_NE(GitRevision(), "unknown") << "built from a git checkout";
  }
}

TEST_F(CliConventionsTest, AMistypedCommandGetsTheNearestOneAndTheUsageStatus) {
  ProcessResult r = Agent({"stauts"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("unknown command 'stauts'; did you mean 'status'?"), std::string::npos)
      << r.err;
  r = Server({"tenant", "lsit"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("dmserver tenant: unknown command 'lsit'; did you mean 'list'?"),
            std::string::npos)
      << r.err;
  // Nothing close: no guess, but the list of commands.
  r = Agent({"frobnicate"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_EQ(r.err.find("did you mean"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("commands: exec, signin"), std::string::npos) << r.err;
  // No command at all: which ones there are, not CLI11's "A subcommand is required".
  r = Agent({"key"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("dmagent key: a command is required: list, create"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "agent")) << "a usage error set up a state directory";
}

TEST_F(CliConventionsTest, AnInvalidValueIsRefusedWithTheAcceptedOnes) {
  ProcessResult r = Agent({"device", "set", "--tpm", "maybe"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("--tpm: maybe not in {yes,no}"), std::string::npos) << r.err;
  r = Agent({"device", "set", "--join-type", "azureadjoined"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("AzureAdJoined"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "agent"));
  EXPECT_EQ(Agent({"device", "set", "--tpm", "yes"}).exit_code, kExitOk);
}

TEST_F(CliConventionsTest, HelpShowsDefaults) {
  ProcessResult r = RunProcess(DMAGENT_BIN, {"run", "--help"});
  EXPECT_EQ(r.exit_code, kExitOk);
  EXPECT_NE(r.out.find("--max-sessions INT=0"), std::string::npos) << r.out;
  r = RunProcess(DMAGENT_BIN, {"--help"});
  EXPECT_NE(r.out.find("--log-level TEXT:{trace,debug,info,warn,error,off}=warn"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--log-format TEXT:{auto,text,json,journal}=auto"), std::string::npos)
      << r.out;
  // A service listens where its operator expects it, not on a random port.
  r = RunProcess(DMSERVER_BIN, {"serve", "--help"});
  EXPECT_NE(r.out.find("--port UINT=8443"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--admin-port UINT=8444"), std::string::npos) << r.out;
}

TEST_F(CliConventionsTest, ReadOnlyCommandsOnAMissingStateDirectoryCreateNothing) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"status"},
                                               {"status", "--json"},
                                               {"container", "show", "--user", "alice"},
                                               {"key", "list", "--user", "alice"}}) {
    ProcessResult r = Agent(args);
    EXPECT_EQ(r.exit_code, kExitNotFound) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("never set up here"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "agent")) << args[0] << " created the state directory";
  }
  for (const std::vector<std::string>& args : {std::vector<std::string>{"report"},
                                               {"report", "--json"},
                                               {"device-report", "X"},
                                               {"tenant", "list"},
                                               {"admin-token", "list"}}) {
    ProcessResult r = Server(args);
    EXPECT_EQ(r.exit_code, kExitNotFound) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("run `dmserver init` first"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "server")) << args[0] << " created the state directory";
  }
}

// The dsregcmd-style view of a device that never enrolled: no join claimed, and reading it
// changes nothing in the database.
TEST_F(CliConventionsTest, StatusOfAnUnenrolledDeviceClaimsNoJoinAndChangesNothing) {
  ASSERT_EQ(Agent({"device", "set", "--join-type", "AzureAdJoined"}).exit_code, kExitOk);
  const std::string before = Slurp(dir_ / "agent" / "dmagent.db");
  ProcessResult r = Agent({"status", "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["device_state"]["azure_ad_joined"].get<bool>());
  EXPECT_FALSE(j["tenant_details"]["enrolled"].get<bool>());
  r = Agent({"status"});
  EXPECT_NE(r.out.find("AzureAdJoined : NO"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Enrolled : NO"), std::string::npos) << r.out;
  EXPECT_TRUE(Slurp(dir_ / "agent" / "dmagent.db") == before) << "status wrote to the database";
}

// Flags, then environment, then configuration file, then defaults, for both binaries.
TEST_F(CliConventionsTest, ConfigurationPrecedenceIsFlagsThenEnvironmentThenFile) {
  const fs::path conf = dir_ / "dmagent.conf";
  std::ofstream(conf) << "# a comment\nstate-dir = \"" << (dir_ / "from-file").string()
                      << "\"\npin-kdf-cost = 10\n[status]\njson = true\n";
  const std::pair<std::string, std::string> env = {"DMAGENT_STATE_DIR",
                                                   (dir_ / "from-env").string()};
  auto agent = [&](std::vector<std::string> args, bool with_env) {
    args.insert(args.begin(), {"--config", conf.string()});
    testing::ProcessOptions o;
    if (with_env) o.env = {env};
    return RunProcess(DMAGENT_BIN, args, o);
  };
  ASSERT_EQ(agent({"device", "set", "--tpm", "yes"}, false).exit_code, kExitOk);
  EXPECT_TRUE(fs::exists(dir_ / "from-file" / "dmagent.db"));
  ASSERT_EQ(agent({"device", "set", "--tpm", "yes"}, true).exit_code, kExitOk);
  EXPECT_TRUE(fs::exists(dir_ / "from-env" / "dmagent.db"));
  ASSERT_EQ(
      agent({"--state-dir", (dir_ / "from-flag").string(), "device", "set", "--tpm", "yes"}, true)
          .exit_code,
      kExitOk);
  EXPECT_TRUE(fs::exists(dir_ / "from-flag" / "dmagent.db"));
  // A command's section applies to that command only.
  ProcessResult r = agent({"status"}, false);
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out, nullptr, false).is_object()) << r.out;
  EXPECT_EQ(agent({"key", "list", "--user", "bob"}, false).exit_code, kExitOk);
  // A configuration file named but missing is a usage error, not silently the defaults.
  r = RunProcess(DMAGENT_BIN, {"--config", (dir_ / "missing.conf").string(), "status"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("missing.conf"), std::string::npos) << r.err;

  // dmserver: the same order.
  const fs::path server_conf = dir_ / "dmserver.conf";
  std::ofstream(server_conf) << "state-dir = \"" << (dir_ / "server-file").string() << "\"\n";
  testing::ProcessOptions with_env;
  with_env.env = {{"DMSERVER_STATE_DIR", (dir_ / "server-env").string()}};
  ASSERT_EQ(
      RunProcess(DMSERVER_BIN, {"--config", server_conf.string(), "--test-kdf", "init"}).exit_code,
      kExitOk);
  EXPECT_TRUE(fs::exists(dir_ / "server-file" / "server.db"));
  ASSERT_EQ(
      RunProcess(DMSERVER_BIN, {"--config", server_conf.string(), "--test-kdf", "init"}, with_env)
          .exit_code,
      kExitOk);
  EXPECT_TRUE(fs::exists(dir_ / "server-env" / "server.db"));
}

TEST_F(CliConventionsTest, ExitStatusesMeanTheSameInBothBinaries) {
  // Usage: an option neither binary has.
  EXPECT_EQ(Agent({"--no-such-option", "status"}).exit_code, kExitUsage);
  EXPECT_EQ(Server({"--no-such-option", "report"}).exit_code, kExitUsage);
  // Not found: a state directory that is not there (above) and a named thing that is not.
  ASSERT_EQ(Server({"init"}).exit_code, kExitOk);
  EXPECT_EQ(Server({"device-report", "NO-SUCH-DEVICE"}).exit_code, kExitNotFound);
  ASSERT_EQ(Agent({"device", "set", "--tpm", "no"}).exit_code, kExitOk);
  EXPECT_EQ(Agent({"exec", (dir_ / "no-such-message.xml").string()}).exit_code, kExitNotFound);
  // Exists.
  ASSERT_EQ(Server({"tenant", "add", "Fabrikam"}).exit_code, kExitOk);
  EXPECT_EQ(Server({"tenant", "add", "Fabrikam"}).exit_code, kExitExists);
  // Precondition: the state does not allow it.
  EXPECT_EQ(Agent({"unenroll"}).exit_code, kExitPrecondition);
  // Not enrolled: what the systemd unit's RestartPreventExitStatus names.
  ProcessResult r = Agent({"sync"});
  EXPECT_EQ(r.exit_code, kExitNotEnrolled) << r.err;
  r = Agent({"run", "--max-sessions", "1"});
  EXPECT_EQ(r.exit_code, kExitNotEnrolled) << r.err;
  const std::string unit =
      Slurp(fs::path(DMAGENT_SOURCE_DIR) / "samples/systemd/dmagent.service.in");
  EXPECT_NE(unit.find("RestartPreventExitStatus=" + std::to_string(kExitNotEnrolled)),
            std::string::npos);
}

}  // namespace
}  // namespace dm
