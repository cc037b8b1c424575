#include "agent/cli/secret_input.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace dm::agent::cli {
namespace {

// Restores the terminal's echo on every path out.
class EchoOff {
 public:
  EchoOff() {
    if (tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
  }
  ~EchoOff() {
    if (active_) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

Result<SecretBytes> ReadLine() {
  SecretBytes line;
  std::string buf;  // grown in place, wiped below
  for (;;) {
    int c = std::fgetc(stdin);
    if (c == EOF) {
      if (buf.empty()) return NotFound("no more input on standard input");
      break;
    }
    if (c == '\n') break;
    buf.push_back(static_cast<char>(c));
  }
  if (!buf.empty() && buf.back() == '\r') buf.pop_back();
  line = SecretBytes(std::string_view(buf));
  std::fill(buf.begin(), buf.end(), '\0');
  return line;
}

}  // namespace

Result<SecretBytes> ReadSecretLine(std::string_view prompt) {
  if (!isatty(STDIN_FILENO)) return ReadLine();
  std::fprintf(stderr, "%.*s: ", static_cast<int>(prompt.size()), prompt.data());
  std::fflush(stderr);
  Result<SecretBytes> r = [] {
    EchoOff off;
    return ReadLine();
  }();
  std::fputc('\n', stderr);
  return r;
}

Result<SecretBytes> ReadNewSecret(std::string_view prompt) {
  DM_ASSIGN_OR_RETURN(SecretBytes first, ReadSecretLine(prompt));
  if (!isatty(STDIN_FILENO)) return first;
  DM_ASSIGN_OR_RETURN(SecretBytes again,
                      ReadSecretLine(std::string("Confirm ") + std::string(prompt)));
  if (!(first == again)) return InvalidArgument("the two entries do not match");
  return first;
}

}  // namespace dm::agent::cli
