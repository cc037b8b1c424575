#include "agent/simulate/fleet_store.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "storage/database.h"

namespace dm::agent {
namespace {

constexpr storage::Migration kFleetSchema[] = {
    {1, "fleet devices", "CREATE TABLE devices (id INTEGER PRIMARY KEY, image BLOB NOT NULL);"},
};

// How long a saved image may wait for its batch: long enough to batch hundreds of sessions
// into one commit (one sync), short enough that a stop loses little.
constexpr auto kBatchWindow = std::chrono::milliseconds(50);

}  // namespace

class FleetStore::Impl {
 public:
  Impl(std::unique_ptr<storage::Database> reader, std::unique_ptr<storage::Database> writer)
      : reader_(std::move(reader)), writer_(std::move(writer)), thread_([this] { Run(); }) {}

  ~Impl() {
    (void)Flush();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  Result<int> Count() {
    std::lock_guard lock(read_mu_);
    DM_ASSIGN_OR_RETURN(auto st, reader_->Prepare("SELECT coalesce(max(id), 0) FROM devices"));
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? static_cast<int>(st.Int(0)) : 0;
  }

  Result<std::optional<Bytes>> Load(int device) {
    {
      std::lock_guard lock(mu_);
      // A device's newest image is in pending_, then writing_, then the file: writing_ is
      // cleared only after its commit, so one of the three always has it.
      if (auto it = pending_.find(device); it != pending_.end()) return std::optional(it->second);
      if (auto it = writing_.find(device); it != writing_.end()) return std::optional(it->second);
    }
    std::lock_guard lock(read_mu_);
    DM_ASSIGN_OR_RETURN(auto st, reader_->Prepare("SELECT image FROM devices WHERE id = ?"));
    st.Bind(1, static_cast<int64_t>(device));
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::optional<Bytes>();
    return std::optional(st.Blob(0));
  }

  void Save(int device, Bytes image) {
    std::lock_guard lock(mu_);
    pending_[device] = std::move(image);
  }

  Status Flush() {
    std::unique_lock lock(mu_);
    flush_requested_ = true;
    cv_.notify_all();
    done_cv_.wait(lock, [this] { return pending_.empty() && writing_.empty(); });
    Status s = first_error_;
    first_error_ = Status::Ok();
    return s;
  }

  Result<int64_t> TotalImageBytes() {
    std::lock_guard lock(read_mu_);
    DM_ASSIGN_OR_RETURN(auto st,
                        reader_->Prepare("SELECT coalesce(sum(length(image)), 0) FROM devices"));
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? st.Int(0) : 0;
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait_for(lock, kBatchWindow, [this] { return stop_ || flush_requested_; });
      flush_requested_ = false;
      if (pending_.empty()) {
        done_cv_.notify_all();
        if (stop_) return;
        continue;
      }
      writing_.swap(pending_);
      lock.unlock();
      Status s = WriteBatch();
      lock.lock();
      if (!s.ok() && first_error_.ok()) first_error_ = s;
      writing_.clear();
      done_cv_.notify_all();
    }
  }

  // writing_ is only changed by this thread, so reading it unlocked here is safe.
  Status WriteBatch() {
    DM_ASSIGN_OR_RETURN(auto tx, writer_->Begin());
    DM_ASSIGN_OR_RETURN(auto st,
                        writer_->Prepare("INSERT INTO devices (id, image) VALUES (?, ?) "
                                         "ON CONFLICT (id) DO UPDATE SET image = excluded.image"));
    for (const auto& [id, image] : writing_) {
      DM_RETURN_IF_ERROR(st.Reset());
      st.Bind(1, static_cast<int64_t>(id));
      st.BindBlob(2, image);
      DM_RETURN_IF_ERROR(st.Run());
    }
    return tx.Commit();
  }

  std::mutex read_mu_;
  std::unique_ptr<storage::Database> reader_;
  std::unique_ptr<storage::Database> writer_;

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::unordered_map<int, Bytes> pending_, writing_;
  Status first_error_;
  bool flush_requested_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

Result<std::unique_ptr<FleetStore>> FleetStore::Open(const std::filesystem::path& path) {
  // A simulated fleet is scratch state: a crash must leave it consistent, power loss may cost
  // the last batch.
  const storage::OpenOptions open{.migrations = kFleetSchema, .durable_commits = false};
  DM_ASSIGN_OR_RETURN(auto writer, storage::Database::Open(path, open));
  DM_ASSIGN_OR_RETURN(auto reader, storage::Database::Open(path, open));
  return std::unique_ptr<FleetStore>(
      new FleetStore(std::make_unique<Impl>(std::move(reader), std::move(writer))));
}

FleetStore::FleetStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FleetStore::~FleetStore() = default;
Result<int> FleetStore::Count() { return impl_->Count(); }
Result<std::optional<Bytes>> FleetStore::Load(int device) { return impl_->Load(device); }
void FleetStore::Save(int device, Bytes image) { impl_->Save(device, std::move(image)); }
Status FleetStore::Flush() { return impl_->Flush(); }
Result<int64_t> FleetStore::TotalImageBytes() { return impl_->TotalImageBytes(); }

}  // namespace dm::agent
