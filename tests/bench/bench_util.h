// Shared pieces of dm_bench: temporary state directories, a device on one, applying a message
// the way `dmagent exec` does, and the teardown that runs after every benchmark.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "agent/runtime/device.h"
#include "base/status.h"

namespace dm::bench {

using SteadyClock = std::chrono::steady_clock;

inline double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// A fresh directory under $TMPDIR (mkdtemp), removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A device on `state_dir` with the test PIN KDF cost (only containers pay it; no benchmark
// times a PIN operation).
Result<std::unique_ptr<agent::Device>> OpenDevice(const std::filesystem::path& state_dir);

// What `dmagent exec` does with a message once the device is open: a Session with default
// options, Process(), the response. Fails when the message does not decode or a command was
// answered with a code outside `accepted` (2xx, and 418 for an Add of an existing node): the
// benchmarks must measure the successful path, not error handling.
Status ApplyMessage(agent::Device& device, std::string_view message, std::string_view user = {},
                    size_t* commands = nullptr);

// Runs after the last benchmark (main calls RunTeardown): shared worlds (servers, devices)
// register their destruction here so it happens before static destruction.
void AtTeardown(std::function<void()> f);
void RunTeardown();

}  // namespace dm::bench
