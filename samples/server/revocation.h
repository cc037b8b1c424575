// dmserver's certificate revocation: a CRL of every device certificate the store revoked
// (retired by the admin, superseded by a re-enrollment), signed by the server's CA, kept current
// on the HTTPS server so a revoked certificate fails the TLS handshake. Rebuilt from the store
// at start, at once after the server's own admin operations and enrollments, and by a poll for
// changes the admin CLI made from another process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/pki.h"
#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

class RevocationPublisher {
 public:
  // Where a new CRL goes (the HTTPS server's SetRevocationList).
  using Sink = std::function<Status(const std::string& crl_pem)>;
  static constexpr std::chrono::hours kValidity{24 * 7};  // nextUpdate
  static constexpr std::chrono::hours kRenewAfter{24};

  RevocationPublisher(Store& store, const pki::CertificateAuthority& ca) : store_(store), ca_(ca) {}
  ~RevocationPublisher() { StopPolling(); }
  RevocationPublisher(const RevocationPublisher&) = delete;
  RevocationPublisher& operator=(const RevocationPublisher&) = delete;

  // The CRL of the store's revoked certificates now; the first one, for the server's start.
  Result<std::string> Build();
  // From then on new CRLs go to `sink`.
  void SetSink(Sink sink);
  // A new CRL when the store's list changed since the last one or that one is due for renewal.
  // Takes the store lock.
  Status Refresh();
  // Refresh every `interval` on a thread of its own, until StopPolling (idempotent).
  void StartPolling(std::chrono::milliseconds interval);
  void StopPolling();

  std::string current_pem() const;

 private:
  Result<std::string> BuildLocked();  // store lock and mu_ held

  Store& store_;
  const pki::CertificateAuthority& ca_;
  mutable std::mutex mu_;
  Sink sink_;
  std::string pem_;
  int64_t generation_ = -1;
  int64_t built_at_ = 0;
  uint64_t builds_ = 0;
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stopping_ = false;
  std::thread poller_;
};

}  // namespace dm::server
