// The device as the agent runs it: the state directory, its database, the credential
// containers, the policy engine and the DM tree, wired together once. Every dmagent command,
// the daemon and each simulated device is one Device.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/status.h"
#include "container/container.h"
#include "container/security_key.h"
#include "csp/dm_tree.h"
#include "policy/policy.h"
#include "storage/database.h"

namespace dm::agent {

// The PIN KDF cost (scrypt log2 N) a command line may ask for: 15 (the strong default) to 20,
// or down to 10 where `allow_weak` (test builds only: a cheap KDF makes offline PIN guessing
// cheap).
Status ValidatePinKdfCost(int log2_n, bool allow_weak);

struct DeviceOptions {
  std::filesystem::path state_dir;
  // true: the state directory and its database must exist already (NotFound otherwise), for
  // commands that only report; nothing is created.
  bool existing_only = false;
  Clock* clock = &Clock::System();
  crypto::Random* random = &crypto::OsRandom();
  // scrypt cost for new PIN wraps; every wrap records its own cost, so a change only affects
  // PINs set afterwards.
  crypto::ScryptParams pin_kdf = crypto::ScryptParams::Strong();
  policy::EngineOptions engine;
  // Who certifies new Hello keys (an enrolled device asks its management server's CA); asked
  // at each provisioning, so an enrollment made while the device is open counts. Returning
  // nullptr, or no factory, means self-signed.
  using IssuerFactory = std::function<Result<std::unique_ptr<container::CertificateIssuer>>(
      storage::Database&, const std::filesystem::path& state_dir)>;
  IssuerFactory make_issuer;
  // The simulator's seams. open_database: where the agent database comes from (default: the
  // file in state_dir; the simulator loads a device's image into memory). decorate_tree: wraps
  // the DM tree (the simulator fails a share of settings through it).
  std::function<Result<std::unique_ptr<storage::Database>>()> open_database;
  std::function<std::unique_ptr<csp::DmTree>(std::unique_ptr<csp::DmTree>)> decorate_tree;
};

// Settings-table keys the agent itself owns.
inline constexpr char kSignedInUserKey[] = "agent.signed_in_user";

class Device {
 public:
  static Result<std::unique_ptr<Device>> Open(DeviceOptions options);
  ~Device();

  storage::Database& db() { return *db_; }
  // The user's software FIDO2 keys, bound to this device (its key file and key sealer).
  container::SecurityKeyStore SecurityKeys();
  container::ContainerStore& containers() { return *containers_; }
  policy::PolicyEngine& policy() { return *policy_; }
  csp::DmTree& tree() { return *tree_; }
  const Clock& clock() const { return *options_.clock; }
  const std::filesystem::path& state_dir() const { return options_.state_dir; }

  // The user signed in on the console: the next session reports LoginStatus "user" and
  // ./User/... addresses this user. Empty when nobody is signed in.
  Result<std::string> SignedInUser();
  Status SetSignedInUser(std::string_view user);

  // A settings-table value, for the agent's own keys.
  Result<std::optional<std::string>> Setting(std::string_view key);
  Status SetSetting(std::string_view key, std::string_view value);
  Status ClearSetting(std::string_view key);

 private:
  explicit Device(DeviceOptions options) : options_(std::move(options)) {}
  Status Init();

  DeviceOptions options_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<container::CertificateIssuer> issuer_;
  // Binds the containers to machine.key; declared before containers_, which uses it.
  std::unique_ptr<container::KeySealer> sealer_;
  std::unique_ptr<container::ContainerStore> containers_;
  std::unique_ptr<policy::PolicyEngine> policy_;
  std::unique_ptr<csp::DmTree> tree_;
};

}  // namespace dm::agent
