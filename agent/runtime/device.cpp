#include "agent/runtime/device.h"

#include "agent/runtime/machine_key.h"
#include "csp/device_facts.h"
#include "csp/device_tree.h"
#include "storage/schema.h"
#include "storage/state_dir.h"

namespace dm::agent {

Status ValidatePinKdfCost(int log2_n, bool allow_weak) {
  const int floor = allow_weak ? 10 : 15;
  if (log2_n < floor || log2_n > 20) {
    return InvalidArgument("--pin-kdf-cost must be between " + std::to_string(floor) + " and 20" +
                           (allow_weak ? "" : " (lower costs exist in test builds only)"));
  }
  return Status::Ok();
}

namespace {

// Asks the factory again at every use, so a device that enrolls (or re-enrolls) while open
// gets its Hello certificates from the new CA without reopening.
class ResolvingIssuer final : public container::CertificateIssuer {
 public:
  ResolvingIssuer(DeviceOptions::IssuerFactory factory, storage::Database& db,
                  std::filesystem::path state_dir)
      : factory_(std::move(factory)), db_(db), state_dir_(std::move(state_dir)) {}

  bool Available() override {
    auto inner = factory_(db_, state_dir_);
    return inner.ok() && *inner != nullptr;
  }
  Result<std::string> Issue(std::string_view public_key_pem, std::string_view common_name,
                            TimePoint now) override {
    DM_ASSIGN_OR_RETURN(auto inner, factory_(db_, state_dir_));
    if (inner == nullptr) return FailedPrecondition("the device has no CA for Hello keys");
    return inner->Issue(public_key_pem, common_name, now);
  }

 private:
  DeviceOptions::IssuerFactory factory_;
  storage::Database& db_;
  std::filesystem::path state_dir_;
};

}  // namespace

Result<std::unique_ptr<Device>> Device::Open(DeviceOptions options) {
  std::unique_ptr<Device> device(new Device(std::move(options)));
  DM_RETURN_IF_ERROR(device->Init());
  return device;
}

Device::~Device() = default;

Status Device::Init() {
  if (options_.existing_only && !options_.open_database) {
    std::error_code ec;
    const std::filesystem::path db = options_.state_dir / storage::kDatabaseFile;
    if (!std::filesystem::is_directory(options_.state_dir, ec)) {
      return NotFound("no agent state directory " + options_.state_dir.string() +
                      ": this device was never set up here (--state-dir, $DMAGENT_STATE_DIR)");
    }
    if (!std::filesystem::exists(db, ec)) {
      return NotFound("no agent database in " + options_.state_dir.string() +
                      ": this device was never set up here");
    }
  }
  DM_RETURN_IF_ERROR(storage::PrepareStateDir(options_.state_dir));
  if (options_.open_database) {
    DM_ASSIGN_OR_RETURN(db_, options_.open_database());
  } else {
    DM_ASSIGN_OR_RETURN(db_, storage::Database::Open(options_.state_dir / storage::kDatabaseFile,
                                                     {.migrations = storage::AgentSchema()}));
  }
  if (options_.make_issuer) {
    issuer_ = std::make_unique<ResolvingIssuer>(options_.make_issuer, *db_, options_.state_dir);
  }
  container::StoreOptions store;
  store.clock = options_.clock;
  store.random = options_.random;
  store.kdf = options_.pin_kdf;
  store.issuer = issuer_.get();
  // The containers' PIN wraps and retry counters are bound to machine.key, so a copy of the
  // database alone is no PIN oracle (SECURITY.md).
  DM_ASSIGN_OR_RETURN(MachineKey machine_key, MachineKey::LoadOrCreate(options_.state_dir));
  DM_ASSIGN_OR_RETURN(SecretBytes sealer_root, machine_key.DeriveKey("container-key-sealer/v1"));
  sealer_ = std::make_unique<container::SoftwareKeySealer>(sealer_root, *options_.random);
  containers_ = std::make_unique<container::ContainerStore>(*db_, *sealer_, store);
  DM_RETURN_IF_ERROR(containers_->SealLegacyContainers().status());
  policy_ =
      std::make_unique<policy::PolicyEngine>(*db_, *containers_, *options_.clock, options_.engine);
  tree_ = csp::MakeDeviceTree(*db_, *policy_, *containers_, *options_.clock);
  if (options_.decorate_tree) tree_ = options_.decorate_tree(std::move(tree_));
  // The device id exists from the first start, so the read-only commands that show it write
  // nothing.
  if (!options_.existing_only) DM_RETURN_IF_ERROR(csp::DeviceId(*db_).status());
  return Status::Ok();
}

Result<std::optional<std::string>> Device::Setting(std::string_view key) {
  DM_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT value FROM settings WHERE key = ?"));
  st.Bind(1, key);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.Text(0));
}

Status Device::SetSetting(std::string_view key, std::string_view value) {
  return db_->Run(
      "INSERT INTO settings (key, value) VALUES (?, ?) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      key, value);
}

Status Device::ClearSetting(std::string_view key) {
  return db_->Run("DELETE FROM settings WHERE key = ?", key);
}

container::SecurityKeyStore Device::SecurityKeys() {
  return container::SecurityKeyStore(
      *db_, {.sealer = sealer_.get(),
             .device_key_file = options_.state_dir / container::kSecurityKeyDeviceKeyFile});
}

Result<std::string> Device::SignedInUser() {
  DM_ASSIGN_OR_RETURN(auto v, Setting(kSignedInUserKey));
  return v.value_or("");
}

Status Device::SetSignedInUser(std::string_view user) {
  if (user.empty()) return ClearSetting(kSignedInUserKey);
  return SetSetting(kSignedInUserKey, user);
}

}  // namespace dm::agent
