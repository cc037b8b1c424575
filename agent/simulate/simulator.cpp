#include "agent/simulate/simulator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>

#include "agent/runtime/device.h"
#include "agent/runtime/enrollment.h"
#include "agent/runtime/sync.h"
#include "agent/simulate/failing_tree.h"
#include "agent/simulate/fleet_store.h"
#include "agent/transport/https_client.h"
#include "base/crypto.h"
#include "csp/device_facts.h"
#include "storage/schema.h"
#include "storage/state_dir.h"

namespace dm::agent {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Latencies in a log-linear histogram (16 buckets per power of two of microseconds, about 4%
// resolution): constant memory however long the run.
class LatencyHistogram {
 public:
  void Record(std::chrono::nanoseconds d) {
    const double us = std::max(1.0, std::chrono::duration<double, std::micro>(d).count());
    const size_t b = std::min(kBuckets - 1, static_cast<size_t>(std::log2(us) * kPerOctave));
    std::lock_guard lock(mu_);
    ++counts_[b];
    ++total_;
    max_us_ = std::max(max_us_, us);
  }
  // The upper edge of the bucket holding quantile q, in ms.
  double QuantileMs(double q) const {
    std::lock_guard lock(mu_);
    if (total_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= rank && counts_[b] > 0) {
        return std::min(max_us_, std::exp2(static_cast<double>(b + 1) / kPerOctave)) / 1000.0;
      }
    }
    return max_us_ / 1000.0;
  }
  double MaxMs() const {
    std::lock_guard lock(mu_);
    return max_us_ / 1000.0;
  }

 private:
  static constexpr size_t kPerOctave = 16;
  static constexpr size_t kBuckets = 40 * kPerOctave;  // up to 2^40 us
  mutable std::mutex mu_;
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  double max_us_ = 0;
};

int64_t ProcStatusBytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
      return std::strtoll(line.c_str() + n + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

std::string DeviceName(int id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sim-%06d", id);
  return buf;
}

// Keeps error messages groupable: the first line, without the session-specific tail.
std::string ErrorKey(const Status& s) {
  std::string m = s.ToString();
  if (m.size() > 120) m.resize(120);
  return m;
}

class Simulation {
 public:
  explicit Simulation(const SimulateOptions& o) : o_(o) {}

  Result<SimulationReport> Run() {
    if (o_.devices < 1) return InvalidArgument("--devices must be at least 1");
    if (o_.concurrency < 1) return InvalidArgument("--concurrency must be at least 1");
    if (o_.interval.count() <= 0) return InvalidArgument("--interval must be positive");
    if (o_.fail_share < 0 || o_.fail_share > 1) {
      return InvalidArgument("--fail-share must be between 0 and 1");
    }
    DM_RETURN_IF_ERROR(storage::PrepareStateDir(o_.state_dir));
    report_.rss_before_bytes = ProcStatusBytes("VmRSS");
    ResetPeakRss();
    const auto fleet_path = o_.fleet_file.empty() ? o_.state_dir / "fleet.db" : o_.fleet_file;
    DM_ASSIGN_OR_RETURN(store_, FleetStore::Open(fleet_path));
    report_.devices = o_.devices;
    if (o_.resume_tls) resumption_.resize(static_cast<size_t>(o_.devices) + 1);

    DM_RETURN_IF_ERROR(EnrollMissing());
    RunSessions();
    DM_RETURN_IF_ERROR(store_->Flush());

    report_.rss_peak_bytes = ProcStatusBytes("VmHWM");
    report_.agent_bytes_per_device = static_cast<double>(std::max<int64_t>(
                                         0, report_.rss_peak_bytes - report_.rss_before_bytes)) /
                                     o_.devices;
    DM_ASSIGN_OR_RETURN(report_.fleet_file_bytes, store_->TotalImageBytes());
    report_.sessions = sessions_ok_;
    report_.session_errors = session_errors_;
    report_.commands = commands_;
    report_.commands_failed = commands_failed_;
    report_.reports_delivered = reports_;
    report_.tls_resumed = resumed_;
    report_.sessions_per_second =
        report_.run_seconds > 0 ? static_cast<double>(sessions_ok_) / report_.run_seconds : 0;
    report_.offered_per_second = o_.devices / std::chrono::duration<double>(o_.interval).count();
    report_.latency = {.p50_ms = latency_.QuantileMs(0.50),
                       .p90_ms = latency_.QuantileMs(0.90),
                       .p99_ms = latency_.QuantileMs(0.99),
                       .max_ms = latency_.MaxMs()};
    for (auto& [k, v] : errors_) report_.errors.emplace_back(k, v);
    std::sort(report_.errors.begin(), report_.errors.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    return report_;
  }

 private:
  static void ResetPeakRss() {
    // "5" resets VmHWM to the current RSS (Linux 4.0+), so the peak is this run's.
    std::ofstream("/proc/self/clear_refs") << "5";
  }

  DeviceOptions OptionsFor(int id, const Bytes* image) const {
    DeviceOptions d;
    d.state_dir = o_.state_dir;
    const std::string name = DeviceName(id);
    d.open_database = [image, name]() {
      return storage::Database::OpenImage(
          image != nullptr ? std::span<const uint8_t>(*image) : std::span<const uint8_t>(), name,
          {.migrations = storage::AgentSchema()});
    };
    if (o_.fail_share > 0) {
      const double share = o_.fail_share;
      const uint64_t seed = o_.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(id);
      d.decorate_tree = [share, seed](std::unique_ptr<csp::DmTree> t) {
        return MakeFailingTree(std::move(t), share, seed);
      };
    }
    return d;
  }

  void NoteError(const Status& s) {
    std::lock_guard lock(errors_mu_);
    ++errors_[ErrorKey(s)];
  }

  Status EnrollOne(int id) {
    DM_ASSIGN_OR_RETURN(auto device, Device::Open(OptionsFor(id, nullptr)));
    DM_RETURN_IF_ERROR(csp::WriteFact(device->db(), csp::kFactDeviceName, DeviceName(id)));
    MsMde2EnrollRequest r;
    r.discovery_url = o_.discovery_url;
    r.ca_bundle_pem = o_.ca_pem;
    r.auth = o_.auth;
    if (o_.auth == "token") {
      r.email = o_.token_email;
      r.token = o_.credentials.token.Clone();
    } else {
      const SimulatedUser& u = o_.credentials.users[(id - 1) % o_.credentials.users.size()];
      r.email = u.upn;
      r.password = u.password.Clone();
      if (o_.auth == "federated") {
        DM_ASSIGN_OR_RETURN(std::string code, crypto::Totp(u.totp_secret, Clock::System().Now()));
        r.otp = SecretBytes(std::string_view(code));
      }
    }
    DM_RETURN_IF_ERROR(EnrollMsMde2(*device, r));
    DM_ASSIGN_OR_RETURN(Bytes image, device->db().Serialize());
    store_->Save(id, std::move(image));
    return Status::Ok();
  }

  // Devices the fleet file does not hold yet are created and enrolled, in id order: a run
  // stopped half-way resumes where it stopped.
  Status EnrollMissing() {
    DM_ASSIGN_OR_RETURN(int have, store_->Count());
    if (have >= o_.devices) return Status::Ok();
    const auto start = SteadyClock::now();
    std::atomic<int> next{have + 1}, done{0}, failed{0};
    std::atomic<bool> stop{false};
    std::mutex first_mu;
    Status first_error;
    auto worker = [&] {
      for (int id = next++; id <= o_.devices && !stop; id = next++) {
        Status s = EnrollOne(id);
        if (!s.ok()) {
          ++failed;
          NoteError(s);
          // Ids must stay dense: a device that failed to enroll ends the phase.
          std::lock_guard lock(first_mu);
          if (first_error.ok()) first_error = s.WithContext("enrolling " + DeviceName(id));
          stop = true;
          return;
        }
        ++done;
      }
    };
    std::atomic<bool> progress_stop{false};
    std::thread progress([&] {
      while (!progress_stop) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (progress_stop || !o_.on_progress) continue;
        o_.on_progress("enrolling: " + std::to_string(have + done) + "/" +
                       std::to_string(o_.devices) + " devices, " + std::to_string(failed) +
                       " error(s)");
      }
    });
    std::vector<std::thread> threads;
    for (int i = 0; i < o_.concurrency; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    progress_stop = true;
    progress.join();
    report_.enrolled = done;
    report_.enroll_errors = failed;
    report_.enroll_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    DM_RETURN_IF_ERROR(store_->Flush());
    return first_error;
  }

  void RunOneSession(int id) {
    const auto t0 = SteadyClock::now();
    Status s = [&]() -> Status {
      DM_ASSIGN_OR_RETURN(std::optional<Bytes> image, store_->Load(id));
      if (!image) return NotFound(DeviceName(id) + " is not in the fleet file");
      DM_ASSIGN_OR_RETURN(auto device, Device::Open(OptionsFor(id, &*image)));
      SyncOptions so;
      so.step_timeout = o_.step_timeout;
      // A load generator counts failures instead of hiding them behind retries.
      so.retry.max_attempts = 1;
      if (o_.resume_tls) so.tls_resumption = &resumption_[static_cast<size_t>(id)];
      Result<SyncResult> r = RunSession(*device, so);
      // What the session committed (commands, acknowledged alerts, the session counter) is
      // the device's state whether or not the session ended well.
      DM_ASSIGN_OR_RETURN(Bytes after, device->db().Serialize());
      store_->Save(id, std::move(after));
      if (!r.ok()) return r.status();
      commands_ += r->commands_received;
      commands_failed_ += r->commands_failed;
      reports_ += r->alerts_delivered;
      resumed_ += r->tls_resumed;
      return Status::Ok();
    }();
    latency_.Record(SteadyClock::now() - t0);
    if (s.ok()) {
      ++sessions_ok_;
    } else {
      ++session_errors_;
      NoteError(s);
    }
  }

  void RunSessions() {
    using Due = std::pair<SteadyClock::time_point, int>;
    std::priority_queue<Due, std::vector<Due>, std::greater<>> queue;
    const auto start = SteadyClock::now();
    const auto deadline = start + o_.duration;
    {
      // First check-ins spread evenly over one interval, each at a seeded place in its slot.
      std::mt19937_64 rng(o_.seed);
      std::uniform_real_distribution<double> in_slot(0.0, 1.0);
      const double slot = std::chrono::duration<double>(o_.interval).count() / o_.devices;
      for (int id = 1; id <= o_.devices; ++id) {
        const double at = slot * ((id - 1) + in_slot(rng));
        queue.emplace(start + std::chrono::duration_cast<SteadyClock::duration>(
                                  std::chrono::duration<double>(at)),
                      id);
      }
    }
    std::mutex mu;
    std::condition_variable cv;
    bool over = false;
    std::atomic<int> in_flight{0};
    auto worker = [&] {
      std::unique_lock lock(mu);
      for (;;) {
        if (over) return;
        if (queue.empty()) {  // every device is in flight
          cv.wait(lock);
          continue;
        }
        if (queue.top().first >= deadline || SteadyClock::now() >= deadline) {
          over = true;  // the run is over; sessions in flight finish
          cv.notify_all();
          return;
        }
        if (queue.top().first > SteadyClock::now()) {
          cv.wait_until(lock, std::min(queue.top().first, deadline));
          continue;
        }
        const auto [due, id] = queue.top();
        queue.pop();
        ++in_flight;
        lock.unlock();
        RunOneSession(id);
        lock.lock();
        --in_flight;
        // Fixed-rate schedule: a device that runs late does not shift its later check-ins,
        // so a server that cannot keep up shows it as a growing backlog, not a lower demand.
        queue.emplace(due + o_.interval, id);
        cv.notify_one();
      }
    };
    std::atomic<bool> progress_stop{false};
    std::thread progress([&] {
      int64_t last = 0;
      auto last_at = SteadyClock::now();
      while (!progress_stop) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (progress_stop || !o_.on_progress) continue;
        const auto now = SteadyClock::now();
        const int64_t done = sessions_ok_;
        const double rate =
            static_cast<double>(done - last) / std::chrono::duration<double>(now - last_at).count();
        last = done;
        last_at = now;
        char line[256];
        std::snprintf(line, sizeof line,
                      "%5.0fs  sessions %lld (%.0f/s)  errors %lld  p50 %.1f ms  p99 %.1f ms  "
                      "in flight %d",
                      std::chrono::duration<double>(now - start).count(),
                      static_cast<long long>(done), rate,
                      static_cast<long long>(session_errors_.load()), latency_.QuantileMs(0.5),
                      latency_.QuantileMs(0.99), in_flight.load());
        o_.on_progress(line);
      }
    });
    std::vector<std::thread> threads;
    for (int i = 0; i < o_.concurrency; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    report_.run_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    // Check-ins that were due within the run but never started: the backlog of a server (or
    // simulator) that could not keep up.
    // Each queued device is behind by every check-in of its schedule that fell before the end.
    for (; !queue.empty() && queue.top().first < deadline; queue.pop()) {
      report_.missed_checkins +=
          1 + (deadline - queue.top().first - SteadyClock::duration(1)) /
                  std::chrono::duration_cast<SteadyClock::duration>(o_.interval);
    }
    progress_stop = true;
    progress.join();
  }

  const SimulateOptions& o_;
  std::unique_ptr<FleetStore> store_;
  std::vector<transport::TlsResumption> resumption_;  // by device id; memory only
  SimulationReport report_;
  LatencyHistogram latency_;
  std::atomic<int64_t> sessions_ok_{0}, session_errors_{0}, commands_{0}, commands_failed_{0},
      reports_{0}, resumed_{0};
  std::mutex errors_mu_;
  std::map<std::string, int64_t> errors_;
};

}  // namespace

Result<SimulateCredentials> ParseSimulateCredentials(std::string_view text, std::string_view auth) {
  if (auth != "token" && auth != "onprem" && auth != "federated") {
    return InvalidArgument("--auth must be onprem, federated or token");
  }
  SimulateCredentials out;
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (auth == "token") {
      out.token = SecretBytes(line);
      return out;
    }
    std::vector<std::string_view> fields;
    for (size_t p = 0; p < line.size();) {
      size_t q = line.find_first_of(" \t", p);
      if (q == std::string_view::npos) q = line.size();
      if (q > p) fields.push_back(line.substr(p, q - p));
      p = q + 1;
    }
    const size_t want = auth == "federated" ? 3 : 2;
    if (fields.size() != want) {
      return InvalidArgument("credentials line " + std::to_string(line_no) + ": expected " +
                             (want == 3 ? "UPN PASSWORD TOTP-SECRET" : "UPN PASSWORD"));
    }
    SimulatedUser u;
    u.upn = std::string(fields[0]);
    u.password = SecretBytes(fields[1]);
    if (want == 3) {
      auto secret = crypto::Base32Decode(fields[2]);
      if (!secret.ok()) {
        return InvalidArgument("credentials line " + std::to_string(line_no) +
                               ": the TOTP secret is not base32");
      }
      u.totp_secret = std::move(*secret);
    }
    out.users.push_back(std::move(u));
  }
  if (auth == "token") return InvalidArgument("the credentials file holds no token");
  if (out.users.empty()) return InvalidArgument("the credentials file names no user");
  return out;
}

Result<SimulationReport> RunSimulation(const SimulateOptions& options) {
  if (options.discovery_url.empty()) return InvalidArgument("simulate needs a Discovery URL");
  if (options.auth == "token" ? options.credentials.token.empty()
                              : options.credentials.users.empty()) {
    return InvalidArgument("simulate needs a token (--auth token) or users to enroll as");
  }
  return Simulation(options).Run();
}

}  // namespace dm::agent
