// Secrets at rest and in output, through the real `dmagent` binary: a user provisions Windows
// Hello, the device is enrolled (its TLS key goes into the database sealed under machine.key,
// the PIN reset service key makes a protector possible), PIN recovery comes by a SyncML message
// (samples/profiles/enable-pin-recovery.xml), the reboot step applies it, the user signs in
// again (the protector is created) and changes the PIN; all with --log-level debug. Then every
// file of the state directory (the database with its -wal and -shm, held open by this test so
// they exist, and machine.key) and everything the runs printed are searched for the PINs,
// private-key PEM markers and key bytes, and the file modes are checked.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/pki.h"
#include "tests/security/dmagent_process.h"

namespace dm::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kUser[] = "alice@contoso.test";
// Long, distinctive digit strings: a chance match in binary data or a timestamp is negligible.
constexpr char kPin1[] = "482916375028";
constexpr char kPin2[] = "731904628155";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const fs::path& p, std::string_view s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
}

std::string Utf16Le(std::string_view s) {
  std::string out;
  for (char c : s) {
    out.push_back(c);
    out.push_back('\0');
  }
  return out;
}

// The base64 body of a PEM (the lines between the markers, joined).
std::string PemBody(std::string_view pem) {
  std::string body;
  std::istringstream in{std::string(pem)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("-----", 0) == 0) continue;
    body += line;
  }
  return body;
}

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "dm-secrets-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    work_ = tmpl;
    state_ = work_ / "state";
  }
  void TearDown() override {
    if (db_ != nullptr) sqlite3_close(db_);
    fs::remove_all(work_);
  }

  // Runs dmagent on the state directory at debug level; keeps what it printed.
  ProcessResult Agent(std::vector<std::string> args, const std::string& stdin_data = "") {
    std::vector<std::string> full = {"--state-dir", state_.string(),  "--log-level",
                                     "debug",       "--pin-kdf-cost", "10"};
    full.insert(full.end(), args.begin(), args.end());
    argv_seen_.push_back(full);
    ProcessOptions options;
    options.stdin_data = stdin_data;
    ProcessResult r = RunProcess(DMAGENT_BIN, full, options);
    outputs_.push_back(r.out);
    outputs_.push_back(r.err);
    return r;
  }
  void AgentOk(std::vector<std::string> args, const std::string& stdin_data = "") {
    ProcessResult r = Agent(args, stdin_data);
    ASSERT_EQ(r.exit_code, 0) << args[0] << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
  }

  // Keeps a connection open so SQLite leaves the -wal and -shm files in place for the scan
  // (the last connection to close would checkpoint and delete the WAL).
  void HoldDatabaseOpen() {
    ASSERT_EQ(
        sqlite3_open_v2((state_ / "dmagent.db").c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr),
        SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr),
              SQLITE_OK);
  }

  fs::path work_, state_;
  sqlite3* db_ = nullptr;
  std::vector<std::string> outputs_;
  std::vector<std::vector<std::string>> argv_seen_;
};

TEST_F(SecretsTest, NoSecretInStateFilesOrOutputAndStateIsPrivate) {
  // Out-of-band enrollment material: a CA, the device's TLS certificate and key, and the PIN
  // reset service's RSA public key.
  auto ca = pki::CreateCa("Secrets Test CA", Clock::System().Now() - std::chrono::hours(1),
                          std::chrono::hours(48));
  ASSERT_TRUE(ca.ok()) << ca.error().ToString();
  auto device_key = pki::GenerateKeyPair(pki::KeyType::kEcP256);
  ASSERT_TRUE(device_key.ok());
  pki::IssueOptions io;
  io.common_name = "SECRETS-DEVICE";
  io.not_before = Clock::System().Now() - std::chrono::hours(1);
  io.client_auth = true;
  auto device_cert = pki::IssueForPublicKey(*ca, device_key->public_pem, io);
  ASSERT_TRUE(device_cert.ok());
  auto reset_key = crypto::GenerateRsaPrivateKey(2048);
  ASSERT_TRUE(reset_key.ok());
  auto reset_pub = crypto::PublicKeyPem(*reset_key);
  ASSERT_TRUE(reset_pub.ok());
  const fs::path inputs = work_ / "inputs";  // outside the state directory
  fs::create_directories(inputs);
  WriteAll(inputs / "ca.pem", ca->cert_pem);
  WriteAll(inputs / "device.pem", *device_cert);
  WriteAll(inputs / "device-key.pem", device_key->private_pem.view());
  WriteAll(inputs / "reset.pub", *reset_pub);

  const std::string pin1 = std::string(kPin1) + "\n";
  AgentOk({"signin", "--user", kUser}, pin1);  // provisions the container with PIN 1
  ASSERT_TRUE(fs::exists(state_ / "dmagent.db"));
  HoldDatabaseOpen();
  AgentOk({"enroll", "--management-url", "https://127.0.0.1:9/ManagementServer/MDM.svc", "--ca",
           (inputs / "ca.pem").string(), "--cert", (inputs / "device.pem").string(), "--key",
           (inputs / "device-key.pem").string(), "--pin-reset-url",
           "https://127.0.0.1:9/PinReset/recover", "--pin-reset-key",
           (inputs / "reset.pub").string()});
  AgentOk({"exec", std::string(DMAGENT_SOURCE_DIR) + "/samples/profiles/enable-pin-recovery.xml"});
  AgentOk({"device", "set", "--join-type", "AzureAdJoined", "--tpm", "no"});
  AgentOk({"reboot"});
  AgentOk({"signin", "--user", kUser}, pin1);  // unlock: creates the PIN reset protector
  AgentOk({"pin", "change", "--user", kUser}, pin1 + kPin2 + "\n");
  AgentOk({"signin", "--user", kUser}, std::string(kPin2) + "\n");
  ProcessResult wrong = Agent({"signin", "--user", kUser}, pin1);  // the old PIN is refused
  EXPECT_NE(wrong.exit_code, 0);
  AgentOk({"signin", "--user", kUser}, std::string(kPin2) + "\n");  // resets the failure count
  ProcessResult show = Agent({"container", "show", "--user", kUser, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(nlohmann::json::parse(show.out).at("protector_present").get<bool>())
      << "the flow did not reach a PIN reset protector: " << show.out;
  AgentOk({"status", "--json"});

  // ---- the state directory ----
  struct stat st {};
  ASSERT_EQ(::stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "state directory mode";
  std::map<std::string, std::string> files;  // name -> content
  for (const auto& e : fs::recursive_directory_iterator(state_)) {
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    const std::string rel = fs::relative(e.path(), state_).string();
    if (e.is_directory()) {
      EXPECT_EQ(st.st_mode & 07777, 0700u) << rel;
      continue;
    }
    EXPECT_TRUE(S_ISREG(st.st_mode)) << rel << " is not a regular file";
    EXPECT_EQ(st.st_mode & 07777, 0600u) << rel;
    files[rel] = ReadAll(e.path());
  }
  for (const char* expected : {"dmagent.db", "dmagent.db-wal", "dmagent.db-shm", "machine.key"}) {
    EXPECT_EQ(files.count(expected), 1u) << expected << " missing: the scan would not cover it";
  }

  // Everything that must never be readable from the disk or the output.
  const std::string device_key_body = PemBody(device_key->private_pem.view());
  auto device_key_der = crypto::Base64Decode(device_key_body);
  ASSERT_TRUE(device_key_der.ok());
  const std::string device_key_raw(device_key_der->begin(), device_key_der->end());
  std::map<std::string, std::string> never = {
      {"PIN 1", kPin1},
      {"PIN 2", kPin2},
      {"PIN 1 (UTF-16)", Utf16Le(kPin1)},
      {"PIN 2 (UTF-16)", Utf16Le(kPin2)},
      {"private key PEM marker", "PRIVATE KEY-----"},
      {"device TLS key (PEM base64)", device_key_body.substr(0, 48)},
      {"device TLS key (DER)", device_key_raw},
  };
  const std::string machine_key = files["machine.key"];
  ASSERT_EQ(machine_key.size(), 32u);
  never["machine key (raw)"] = machine_key;
  never["machine key (hex)"] = crypto::HexEncode(crypto::AsBytes(machine_key));
  never["machine key (base64)"] = crypto::Base64Encode(crypto::AsBytes(machine_key));

  for (const auto& [name, content] : files) {
    for (const auto& [what, needle] : never) {
      // machine.key is the root of the software key store: its own 32 bytes are the one thing
      // it must contain, so it is exempt from the machine-key checks only (and is still
      // checked for PINs, PEM markers and the device key).
      if (name == "machine.key" && what.rfind("machine key", 0) == 0) continue;
      EXPECT_EQ(content.find(needle), std::string::npos) << what << " found in " << name;
    }
  }
  for (size_t i = 0; i < outputs_.size(); ++i) {
    for (const auto& [what, needle] : never) {
      EXPECT_EQ(outputs_[i].find(needle), std::string::npos)
          << what << " found in the " << (i % 2 == 0 ? "stdout" : "stderr") << " of run " << i / 2
          << " (" << argv_seen_[i / 2][6] << ")";
    }
  }
  // The debug log was really on (otherwise the output check proves little).
  bool saw_debug = false;
  for (const std::string& o : outputs_) saw_debug |= o.find(" debug ") != std::string::npos;
  EXPECT_TRUE(saw_debug) << "no debug-level line in any output";

  // ---- argv: what `ps` shows for every run carried no secret ----
  for (const auto& argv : argv_seen_) {
    for (const std::string& a : argv) {
      EXPECT_EQ(a.find(kPin1), std::string::npos);
      EXPECT_EQ(a.find(kPin2), std::string::npos);
    }
  }
}

// PINs come only from standard input: a PIN given as an option is refused before anything
// happens, and no subcommand offers an option for a PIN, password or one-time code.
TEST_F(SecretsTest, CliRefusesSecretsInArguments) {
  const std::vector<std::vector<std::string>> attempts = {
      {"signin", "--user", "mallory@contoso.test", "--pin", "135792468"},
      {"signin", "--user", "mallory@contoso.test", "--pin=135792468"},
      {"pin", "change", "--user", "mallory@contoso.test", "--pin", "135792468", "--new-pin",
       "246813579"},
      {"pin", "reset", "--user", "mallory@contoso.test", "--password", "hunter2", "--otp",
       "123456"},
      {"key", "set-pin", "--user", "mallory@contoso.test", "--pin", "135792468"},
      {"signin", "--user", "mallory@contoso.test", "135792468"},  // a positional PIN
  };
  for (const auto& args : attempts) {
    // A PIN on stdin too: were the flag ignored rather than refused, this would provision.
    ProcessResult r = Agent(args, "135792468\n");
    EXPECT_NE(r.exit_code, 0) << args[0] << " accepted a secret argument:\n" << r.out;
  }
  if (fs::exists(state_ / "dmagent.db")) {
    ProcessResult show = Agent({"container", "show", "--user", "mallory@contoso.test", "--json"});
    EXPECT_EQ(show.out.find("\"NgcSet\": true"), std::string::npos) << show.out;
  }

  // Every subcommand's options, from its --help.
  const std::vector<std::vector<std::string>> commands = {{"exec"},
                                                          {"signin"},
                                                          {"signout"},
                                                          {"pin", "change"},
                                                          {"pin", "reset"},
                                                          {"container", "show"},
                                                          {"status"},
                                                          {"reboot"},
                                                          {"enroll"},
                                                          {"sync"},
                                                          {"run"},
                                                          {"local", "set"},
                                                          {"local", "clear"},
                                                          {"device", "set"},
                                                          {"web-signin"},
                                                          {"key", "list"},
                                                          {"key", "create"},
                                                          {"key", "set-pin"},
                                                          {"key", "change-pin"},
                                                          {"key", "reset"},
                                                          {"key", "power-cycle"},
                                                          {"key", "sign-in"}};
  // Options whose value is a secret. (--pin-reset-url/--pin-reset-key name the PIN reset
  // service and its public key; --pin-kdf-cost is a cost factor.)
  const std::set<std::string> secret_options = {
      "--pin", "--new-pin", "--old-pin", "--current-pin", "--password", "--passwd",
      "--otp", "--code",    "--totp",    "--secret",      "--protector"};
  for (const auto& cmd : commands) {
    std::vector<std::string> args = cmd;
    args.push_back("--help");
    ProcessResult r = RunProcess(DMAGENT_BIN, args);
    ASSERT_EQ(r.exit_code, 0) << cmd[0] << " --help failed: " << r.err;
    std::string text = r.out;
    std::replace(text.begin(), text.end(), ',', ' ');  // "-h,--help"
    std::istringstream words(text);
    std::string word;
    int options_seen = 0;
    while (words >> word) {
      if (word.rfind("--", 0) != 0) continue;
      ++options_seen;
      word = word.substr(0, word.find_first_of("=,:[]"));
      EXPECT_EQ(secret_options.count(word), 0u)
          << cmd[0] << (cmd.size() > 1 ? " " + cmd[1] : "") << " offers " << word;
    }
    EXPECT_GT(options_seen, 0) << "no options parsed from the help of " << cmd[0];
  }
}

}  // namespace
}  // namespace dm::testing
