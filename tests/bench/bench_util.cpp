#include "tests/bench/bench_util.h"

#include <stdlib.h>

#include <cstdlib>
#include <optional>
#include <system_error>
#include <vector>

#include "agent/session/session.h"
#include "base/crypto.h"

namespace dm::bench {
namespace {

std::vector<std::function<void()>>& Teardowns() {
  static std::vector<std::function<void()>> fns;
  return fns;
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" +
                     std::string(prefix) + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<std::unique_ptr<agent::Device>> OpenDevice(const std::filesystem::path& state_dir) {
  agent::DeviceOptions o;
  o.state_dir = state_dir;
  o.pin_kdf = crypto::ScryptParams::ForTests();
  return agent::Device::Open(std::move(o));
}

Status ApplyMessage(agent::Device& device, std::string_view message, std::string_view user,
                    size_t* commands) {
  agent::Session session(device.tree(), device.db(), {});
  session.SetUser(std::string(user));
  DM_ASSIGN_OR_RETURN(std::optional<std::string> response, session.Process(message));
  if (!response) return Internal("the session answered nothing");
  for (const agent::CommandOutcome& o : session.last_outcomes()) {
    const bool ok = (o.code >= 200 && o.code < 300) || (o.cmd == "Add" && o.code == 418);
    if (!ok) {
      return Internal(o.cmd + " " + o.cmd_id + " " + o.uri + " -> " + std::to_string(o.code) + " " +
                      o.reason);
    }
  }
  if (commands != nullptr) *commands = session.last_outcomes().size();
  return Status::Ok();
}

void AtTeardown(std::function<void()> f) { Teardowns().push_back(std::move(f)); }

void RunTeardown() {
  auto& fns = Teardowns();
  for (auto it = fns.rbegin(); it != fns.rend(); ++it) (*it)();
  fns.clear();
}

}  // namespace dm::bench
