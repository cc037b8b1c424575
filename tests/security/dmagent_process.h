// Runs the real `dmagent` binary for the security and crash-consistency tests: arguments as
// given (so the tests see exactly what `ps` would show), standard input from a string, standard
// output and error captured, and optionally a SIGKILL after a delay.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dm::testing {

struct ProcessResult {
  int exit_code = -1;  // valid when !signaled
  bool signaled = false;
  int signal = 0;
  bool killed = false;     // we sent the SIGKILL (the process had not exited yet)
  bool timed_out = false;  // still running at ProcessOptions::timeout: killed, a test failure
  std::string out;
  std::string err;
};

struct ProcessOptions {
  std::string stdin_data;
  // Send SIGKILL this long after the start if the process is still running.
  std::optional<std::chrono::microseconds> kill_after;
  // A process that is not killed and has not exited by then fails the call (never hangs a test).
  std::chrono::seconds timeout{60};
  // Set in the child's environment (over the test's own), e.g. {"DMAGENT_STATE_DIR", "/tmp/x"}.
  std::vector<std::pair<std::string, std::string>> env;
};

// argv[0] is `binary`. Never throws; a spawn failure comes back as exit_code 127 with the
// reason in `err`.
ProcessResult RunProcess(const std::filesystem::path& binary, const std::vector<std::string>& args,
                         const ProcessOptions& options = {});

}  // namespace dm::testing
