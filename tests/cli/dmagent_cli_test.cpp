// The dmagent binary end to end, without a server: what `dmagent exec` answers to the MS-MDM
// example exchange, and the PIN-recovery flow a local administrator drives by hand.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/syncml/codec.h"
#include "base/json_output.h"

namespace dm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) s.append(buf, static_cast<size_t>(n));
  return s;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class DmagentCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs dmagent with `args`, feeding `input` on stdin.
  RunResult Agent(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {DMAGENT_BIN, "--state-dir", (dir_ / "state").string(),
                                     "--pin-kdf-cost", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    int in[2], out[2], err[2];
    EXPECT_EQ(pipe(in), 0);
    EXPECT_EQ(pipe(out), 0);
    EXPECT_EQ(pipe(err), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    (void)!write(in[1], input.data(), input.size());
    close(in[1]);
    RunResult r;
    r.out = ReadAll(out[0]);  // small outputs: reading one pipe then the other cannot block
    r.err = ReadAll(err[0]);
    close(out[0]);
    close(err[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }

  json Json(std::vector<std::string> args) {
    RunResult r = Agent(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    // Every --json output: one object, schema_version first, snake_case names.
    EXPECT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(r.out.find("{\n  \"schema_version\": 1,"), 0u) << r.out;
    EXPECT_EQ(KeyOutsideConvention(j), std::nullopt) << r.out;
    return j;
  }

  fs::path Fixture(const std::string& rel) { return fs::path(DMAGENT_SOURCE_DIR) / rel; }

  fs::path dir_;
};

// MS-MDM section 4: the server's package 2 (SyncHdr status + two Gets) through `dmagent exec`
// gives package 3: SyncHdr Status first, a 200 per Get in order, then Results with the values.
TEST_F(DmagentCliTest, GoldenMsMdmExchangeThroughExec) {
  RunResult r = Agent({"exec", Fixture("tests/fixtures/msmdm-examples/server-pkg2.xml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto msg = syncml::Decode(r.out);
  ASSERT_TRUE(msg.ok()) << msg.error().ToString() << "\n" << r.out;
  auto golden = syncml::Decode(Slurp(Fixture("tests/fixtures/msmdm-examples/client-pkg3.xml")));
  ASSERT_TRUE(golden.ok());
  EXPECT_EQ(msg->header.msg_id, "1");
  ASSERT_EQ(msg->commands.size(), golden->commands.size());
  for (size_t i = 0; i < golden->commands.size(); ++i) {
    const auto& got = msg->commands[i];
    const auto& want = golden->commands[i];
    EXPECT_EQ(got.type, want.type) << i;
    EXPECT_EQ(got.cmd_ref, want.cmd_ref) << i;
    EXPECT_EQ(got.cmd, want.cmd) << i;
    if (want.type == syncml::CommandType::kStatus) {
      EXPECT_EQ(got.data, want.data) << i;
    }
    if (want.type == syncml::CommandType::kResults) {
      ASSERT_EQ(got.items.size(), 1u);
      EXPECT_EQ(got.items[0].source->loc_uri, want.items[0].source->loc_uri);
      ASSERT_TRUE(got.items[0].data.has_value());
      EXPECT_FALSE(got.items[0].data->text.empty()) << "a real value, not the placeholder";
    }
  }
  EXPECT_TRUE(msg->final);
}

// The captured Windows session ends with a server message of Statuses only: the client sends
// nothing back.
TEST_F(DmagentCliTest, StatusOnlyServerMessageEndsTheSession) {
  RunResult r = Agent(
      {"exec", Fixture("tests/fixtures/windows10-capture/session1-server-pkg2.xml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(DmagentCliTest, PinRecoveryThroughExecRebootAndSignIn) {
  // The PIN reset service's key pair, made by openssl: the device gets the public half.
  const fs::path key = dir_ / "service.pem", pub = dir_ / "service.pub.pem";
  ASSERT_EQ(std::system(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " +
                         key.string() + " 2>/dev/null && openssl pkey -in " + key.string() +
                         " -pubout -out " + pub.string())
                            .c_str()),
            0);
  ASSERT_EQ(Agent({"device", "set", "--pin-reset-key", pub.string()}).exit_code, 0);
  RunResult signin = Agent({"signin", "--user", "alice"}, "246810\n");
  ASSERT_EQ(signin.exit_code, 0) << signin.err;
  EXPECT_EQ(Json({"container", "show", "--user", "alice", "--json"})["can_reset"],
            "DestructiveOnly");

  RunResult exec = Agent({"exec", Fixture("samples/profiles/enable-pin-recovery.xml").string()});
  ASSERT_EQ(exec.exit_code, 0) << exec.err;
  auto response = syncml::Decode(exec.out);
  ASSERT_TRUE(response.ok());
  for (const auto& c : response->commands) {
    if (c.type == syncml::CommandType::kStatus) {
      EXPECT_EQ(c.data, "200") << c.cmd << " " << c.cmd_ref;
    }
  }
  json status = Json({"status", "--user", "alice", "--json"});
  ASSERT_FALSE(status["policy"]["pending_reboot"].empty());
  EXPECT_EQ(status["policy"]["pending_reboot"][0]["setting"], "PassportForWork/EnablePinRecovery");
  EXPECT_EQ(status["user_state"][0]["can_reset"], "DestructiveOnly");
  EXPECT_NE(status["user_state"][0]["can_reset_reason"].get<std::string>().find("reboot"),
            std::string::npos);

  ASSERT_EQ(Agent({"reboot"}).exit_code, 0);
  EXPECT_EQ(Json({"container", "show", "--user", "alice", "--json"})["protector_present"], false)
      << "the protector needs the master key: it waits for the PIN";
  ASSERT_EQ(Agent({"signin", "--user", "alice"}, "246810\n").exit_code, 0);
  json shown = Json({"container", "show", "--user", "alice", "--json"});
  EXPECT_EQ(shown["protector_present"], true);
  EXPECT_EQ(shown["can_reset"], "DestructiveAndNonDestructive");

  // Independent check: the stored protector is RSA-OAEP(SHA-256) to the service key, labelled
  // with its user ("dmagent-pin-reset-protector-v1:alice", hex).
  const std::string kAliceLabelHex =
      "646d6167656e742d70696e2d72657365742d70726f746563746f722d76313a616c696365";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "state" / "dmagent.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT encrypted_protector FROM container", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  std::string blob(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                   static_cast<size_t>(sqlite3_column_bytes(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::ofstream(dir_ / "protector.bin", std::ios::binary) << blob;
  const std::string decrypt = "openssl pkeyutl -decrypt -inkey " + key.string() +
                              " -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 "
                              "-pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_oaep_label:" +
                              kAliceLabelHex + " -in " + (dir_ / "protector.bin").string() +
                              " -out " + (dir_ / "protector.raw").string();
  ASSERT_EQ(std::system(decrypt.c_str()), 0);
  EXPECT_EQ(fs::file_size(dir_ / "protector.raw"), 32u) << "a 256-bit AES key";
}

// Red-team finding: a failed PIN sign-in used to mark the user signed in, so the next session
// told the server that user was at the device.
TEST_F(DmagentCliTest, AWrongPinSignsNobodyIn) {
  ASSERT_EQ(Agent({"signin", "--user", "alice"}, "246810\n").exit_code, 0);
  ASSERT_EQ(Agent({"signin", "--user", "bob"}, "135790\n").exit_code, 0);
  auto signed_in = [&]() {
    std::string who;
    const json status = Json({"status", "--json"});  // not a temporary's member in the loop
    for (const json& u : status["user_state"]) {
      if (u["signed_in"].get<bool>()) who = u["user"].get<std::string>();
    }
    return who;
  };
  EXPECT_EQ(signed_in(), "bob");
  RunResult wrong = Agent({"signin", "--user", "alice"}, "000000\n");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_EQ(signed_in(), "bob");
  ASSERT_EQ(Agent({"signin", "--user", "alice"}, "246810\n").exit_code, 0);
  EXPECT_EQ(signed_in(), "alice");
}

TEST_F(DmagentCliTest, SecurityKeyAsksForAPinUnderPreferredAndSignsVerifiably) {
  RunResult created = Agent({"key", "create", "--user", "bob", "--label", "YubiKey"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const fs::path out = dir_ / "assertion";
  fs::create_directories(out);
  // No PIN on the key and "preferred": the key asks for one to be set (KB5073129).
  RunResult signed_in = Agent({"key", "sign-in", "--user", "bob", "--rp", "login.contoso.com",
                               "--uv", "preferred", "--out", out.string()},
                              "4821\n");
  ASSERT_EQ(signed_in.exit_code, 0) << signed_in.err;
  EXPECT_NE(signed_in.out.find("needs a PIN"), std::string::npos) << signed_in.out;
  EXPECT_NE(signed_in.out.find("user verified: yes"), std::string::npos) << signed_in.out;
  const std::string verify = "openssl dgst -sha256 -verify " + (out / "pub.pem").string() +
                             " -signature " + (out / "sig.der").string() + " " +
                             (out / "data.bin").string() + " >/dev/null";
  EXPECT_EQ(std::system(verify.c_str()), 0);
  json keys = Json({"key", "list", "--user", "bob", "--json"})["keys"];
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0]["pin_set"], true);
  EXPECT_EQ(keys[0]["credentials"], 1);

  // Reset wipes every credential, and only when confirmed.
  EXPECT_NE(Agent({"key", "reset", "--user", "bob"}).exit_code, 0);
  RunResult reset = Agent({"key", "reset", "--user", "bob", "--yes"});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(Json({"key", "list", "--user", "bob", "--json"})["keys"][0]["credentials"], 0);
}

}  // namespace
}  // namespace dm
