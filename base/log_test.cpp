#include "base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/log_fields.h"

namespace dm {
namespace {

TEST(PrintableTest, EscapesControlsBackslashAndBrokenUtf8KeepsText) {
  EXPECT_EQ(Printable("alice@fabrikam.test"), "alice@fabrikam.test");
  EXPECT_EQ(Printable("a\nb\tc\\d"), "a\\nb\\tc\\\\d");
  EXPECT_EQ(Printable("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  EXPECT_EQ(Printable(std::string_view("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(Printable("Zoë ✓"), "Zoë ✓");  // printable UTF-8 stays
  EXPECT_EQ(Printable("\xc2\x9b"
                      "2J"),
            "\\xc2\\x9b2J");  // C1 CSI, UTF-8 encoded
  EXPECT_EQ(Printable("\xff\xfe"
                      "a"),
            "\\xff\\xfea");                                 // not UTF-8
  EXPECT_EQ(Printable("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");  // overlong
}

// Red-team finding: device-supplied strings reached the logs raw (a forged second log line, an
// escape sequence for the admin's terminal).
TEST(PrintableTest, LogLinesCannotBeForged) {
  std::string tmpl = ::testing::TempDir() + "log-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::filesystem::path file = std::filesystem::path(tmpl) / "dmagent.log";
  ASSERT_TRUE(InitLogging({.level = "info", .format = LogFormat::kText, .file = file}).ok());
  spdlog::info("device reports user {}",
               "eve\n2026-12-03T00:00:00.000Z info admin logged in\x1b[2J");
  spdlog::default_logger()->flush();
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = text.str();
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_NE(log.find("eve\\n2026-12-03T00:00:00.000Z info admin logged in\\x1b[2J"),
            std::string::npos)
      << log;
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("test"));
  std::filesystem::remove_all(tmpl);
}

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "log-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    file_ = dir_ / "dmserver.log";
  }
  void TearDown() override {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test"));
    std::filesystem::remove_all(dir_);
  }
  static std::string Read(const std::filesystem::path& p) {
    spdlog::default_logger()->flush();
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::filesystem::path dir_, file_;
};

TEST_F(LogFileTest, JsonLinesCarryLevelMessageAndFields) {
  ASSERT_TRUE(InitLogging({.level = "info", .format = LogFormat::kJson, .file = file_}).ok());
  {
    LogField device("device_id", "dev-1");
    LogField session("session_id", "7");
    spdlog::warn("session failed: {}", "a \"quoted\"\nreason");
  }
  spdlog::info("no fields");
  std::istringstream lines(Read(file_));
  std::string first, second;
  ASSERT_TRUE(std::getline(lines, first));
  ASSERT_TRUE(std::getline(lines, second));
  const auto a = nlohmann::json::parse(first);
  EXPECT_EQ(a["level"], "warning");
  EXPECT_EQ(a["message"], "session failed: a \"quoted\"\\nreason");
  EXPECT_EQ(a["device_id"], "dev-1");
  EXPECT_EQ(a["session_id"], "7");
  EXPECT_EQ(a["time"].get<std::string>().back(), 'Z');
  const auto b = nlohmann::json::parse(second);
  EXPECT_EQ(b["message"], "no fields");
  EXPECT_FALSE(b.contains("device_id")) << "a field outlived its scope";
}

TEST_F(LogFileTest, TextLinesEndWithTheFieldsAnInnerFieldHidesAnOuterOne) {
  ASSERT_TRUE(InitLogging({.level = "info", .format = LogFormat::kText, .file = file_}).ok());
  LogField server("server", "https://mdm.example.test");
  LogField outer("device_id", "outer");
  {
    LogField inner("device_id", "inner id");
    spdlog::info("hello");
  }
  const std::string log = Read(file_);
  EXPECT_NE(log.find(" info hello server=https://mdm.example.test device_id=\"inner id\"\n"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("outer"), std::string::npos) << log;
}

TEST_F(LogFileTest, ReopenFollowsLogrotateAndKeepsTheFilePrivate) {
  ASSERT_TRUE(InitLogging({.level = "info", .format = LogFormat::kText, .file = file_}).ok());
  spdlog::info("before rotation");
  std::filesystem::rename(file_, dir_ / "dmserver.log.1");
  spdlog::info("still the old file");
  ASSERT_TRUE(ReopenLogFile().ok());
  spdlog::info("after rotation");
  EXPECT_NE(Read(dir_ / "dmserver.log.1").find("still the old file"), std::string::npos);
  const std::string fresh = Read(file_);
  EXPECT_NE(fresh.find("after rotation"), std::string::npos) << fresh;
  EXPECT_EQ(fresh.find("before rotation"), std::string::npos) << fresh;
  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(LogTest, StderrIsJournalOnlyWhenJournalStreamNamesStderr) {
  struct stat st {};
  ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
  const std::string mine = std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
                           std::to_string(static_cast<unsigned long long>(st.st_ino));
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  // Inherited by a process whose stderr was redirected: not the journal any more.
  ::setenv("JOURNAL_STREAM", (mine + "1").c_str(), 1);
  EXPECT_FALSE(StderrIsJournal());
  ::setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(StderrIsJournal());
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
}

// simulate's live progress line on a terminal: a log record clears it, takes its own line, and
// the progress line is drawn again below it. In a child whose stderr is a pty (the terminal is
// chosen once per process).
TEST(LogTest, LogRecordsNeverBreakTheProgressLine) {
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  termios raw{};
  ASSERT_EQ(::tcgetattr(slave, &raw), 0);
  ::cfmakeraw(&raw);  // no "\n" to "\r\n": the bytes as written
  ASSERT_EQ(::tcsetattr(slave, TCSANOW, &raw), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(slave, STDERR_FILENO);
    if (!InitLogging(
             {.program = "dmagent", .level = "info", .format = LogFormat::kJson, .file = {}})
             .ok())
      _exit(1);
    ShowProgress("10/100 sessions");
    spdlog::warn("a session failed");
    ShowProgress("20/100 sessions");
    EndProgress();
    _exit(0);
  }
  ::close(slave);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::string got;
  char buf[4096];
  for (;;) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) break;
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(master);
  const std::string clear = "\r\033[K";
  const size_t record = got.find("{\"time\"");
  ASSERT_NE(record, std::string::npos) << got;
  EXPECT_EQ(got.substr(0, record), clear + "10/100 sessions" + clear);
  const size_t record_end = got.find('\n', record);
  ASSERT_NE(record_end, std::string::npos) << got;
  EXPECT_NE(got.substr(record, record_end - record).find("a session failed"), std::string::npos);
  EXPECT_EQ(got.substr(record_end + 1), "10/100 sessions" + clear + "20/100 sessions\n");
}

// The journal's native protocol, received where libsystemd sends it: in a child with its own
// mount namespace, a datagram socket at /run/systemd/journal/socket on a private /run stands in
// for journald. Needs root (CI runs as root); skipped elsewhere.
TEST(LogTest, UnderSystemdRecordsReachTheJournalWithPriorityAndFields) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto report = [&](const std::string& text, int code) {
      (void)!::write(pipe_fds[1], text.data(), text.size());
      _exit(code);
    };
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
      report("no mount namespace", 2);
    }
    std::filesystem::create_directories("/run/systemd/journal");
    const int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "/run/systemd/journal/socket");
    if (::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) report("bind", 1);
    // stderr is journald's stream, as systemd sets it up for a service.
    struct stat st {};
    ::fstat(STDERR_FILENO, &st);
    const std::string stream = std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
                               std::to_string(static_cast<unsigned long long>(st.st_ino));
    ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
    if (!InitLogging(
             {.program = "dmserver", .level = "info", .format = LogFormat::kAuto, .file = {}})
             .ok())
      report("init", 1);
    {
      LogField device("device_id", "dev-42");
      spdlog::warn("certificate of {} refused", "dev-42");
    }
    char buf[4096];
    const ssize_t n = ::recv(sock, buf, sizeof buf, MSG_DONTWAIT);
    report(n > 0 ? std::string(buf, static_cast<size_t>(n)) : "no datagram", n > 0 ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) got.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "needs root for a private mount namespace";
  ASSERT_EQ(WEXITSTATUS(status), 0) << got;
  // Native protocol: one FIELD=value per line.
  EXPECT_NE(got.find("MESSAGE=certificate of dev-42 refused\n"), std::string::npos) << got;
  EXPECT_NE(got.find("PRIORITY=4\n"), std::string::npos) << got;
  EXPECT_NE(got.find("SYSLOG_IDENTIFIER=dmserver\n"), std::string::npos) << got;
  EXPECT_NE(got.find("DEVICE_ID=dev-42\n"), std::string::npos) << got;
  EXPECT_EQ(got.find("Z warning"), std::string::npos) << "the journal stamps the time itself";
}

}  // namespace
}  // namespace dm
