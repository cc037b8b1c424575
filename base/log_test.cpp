#include "base/log.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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
  ASSERT_TRUE(InitLogging("info", file).ok());
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

}  // namespace
}  // namespace dm
