#include "samples/server/revocation.h"

#include <spdlog/spdlog.h>

namespace dm::server {

Result<std::string> RevocationPublisher::Build() {
  auto store_lock = store_.Lock();
  std::lock_guard<std::mutex> lock(mu_);
  return BuildLocked();
}

Result<std::string> RevocationPublisher::BuildLocked() {
  DM_ASSIGN_OR_RETURN(RevokedCertificates revoked, store_.RevokedSerials());
  // Dated an hour back like the server's certificates, for clients' clock skew. The CRL number
  // grows with time and with each build of this process.
  const TimePoint now = store_.clock().Now();
  const uint64_t number = (static_cast<uint64_t>(ToUnixSeconds(now)) << 16) | (++builds_ & 0xFFFF);
  DM_ASSIGN_OR_RETURN(
      std::string pem,
      pki::CreateCrl(ca_, revoked.serials_hex, now - std::chrono::hours(1), kValidity, number));
  pem_ = pem;
  generation_ = revoked.generation;
  built_at_ = ToUnixSeconds(now);
  return pem;
}

void RevocationPublisher::SetSink(Sink sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sink_ = std::move(sink);
}

Status RevocationPublisher::Refresh() {
  auto store_lock = store_.Lock();
  std::lock_guard<std::mutex> lock(mu_);
  if (!sink_) return FailedPrecondition("no server to publish the CRL to");
  DM_ASSIGN_OR_RETURN(int64_t generation, store_.RevocationGeneration());
  const bool due = store_.Now() - built_at_ >=
                   std::chrono::duration_cast<std::chrono::seconds>(kRenewAfter).count();
  if (generation == generation_ && !due) return Status::Ok();
  DM_ASSIGN_OR_RETURN(std::string pem, BuildLocked());
  DM_RETURN_IF_ERROR(sink_(pem));
  spdlog::info("published a new CRL of revoked device certificates (generation {})", generation);
  return Status::Ok();
}

void RevocationPublisher::StartPolling(std::chrono::milliseconds interval) {
  poller_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(poll_mu_);
    while (!poll_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      if (Status s = Refresh(); !s.ok()) {
        spdlog::error("cannot publish the CRL of revoked certificates: {}", s.ToString());
      }
      lock.lock();
    }
  });
}

void RevocationPublisher::StopPolling() {
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    stopping_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

std::string RevocationPublisher::current_pem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pem_;
}

}  // namespace dm::server
