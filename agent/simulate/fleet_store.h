// The simulator's fleet file: one SQLite file holding every virtual device's agent database as
// an image (storage::Database::Serialize), so a fleet of thousands needs one file and, while
// idle, no memory. Images written by sessions are collected and committed in batches by one
// writer thread: the workers never wait for a disk sync, and the file stays consistent
// (each image is a device's committed state after a whole session).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "base/secret.h"
#include "base/status.h"

namespace dm::agent {

class FleetStore {
 public:
  // Opens (creating, 0600) the fleet file.
  static Result<std::unique_ptr<FleetStore>> Open(const std::filesystem::path& path);
  ~FleetStore();  // commits what is pending
  FleetStore(const FleetStore&) = delete;
  FleetStore& operator=(const FleetStore&) = delete;

  // Devices 1..Count() exist (ids are dense; the simulator creates them in order).
  Result<int> Count();
  // The device's latest image: a pending one if a session saved it since the last commit.
  // Thread-safe; nullopt for an unknown device.
  Result<std::optional<Bytes>> Load(int device);
  // Queues the image for the next batch commit. Thread-safe.
  void Save(int device, Bytes image);
  // Commits everything queued so far; returns the first write error since the last Flush.
  Status Flush();
  // Bytes of all images (for the summary).
  Result<int64_t> TotalImageBytes();

 private:
  class Impl;
  explicit FleetStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dm::agent
