// `dmagent simulate`: a fleet of virtual devices checking in with an MDM server, for server
// developers' load tests.
//
// Every virtual device is a whole agent: its own agent database (DM tree, containers, policy,
// outbox, session counter), kept as an image in one fleet file (fleet_store.h) and loaded into
// memory only for its session, its own enrollment (key pair, CSR, client certificate) and its
// own mutual-TLS sessions through the same code `dmagent sync` runs (RunSession). Enrollment
// is MS-MDE2 (EnrollMsMde2), so any server that speaks it can be load-tested. Devices
// missing from the fleet file are created and enrolled first; then each device checks in every
// `interval`, first check-ins spread evenly over one interval, until `duration` is over.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/secret.h"
#include "base/status.h"

namespace dm::agent {

// Who the virtual devices enroll as: one bulk token for all (--auth token), or users taken in
// turn (device N enrolls as users[(N - 1) % users.size()]).
struct SimulatedUser {
  std::string upn;
  SecretBytes password;
  SecretBytes totp_secret;  // federated: the one-time codes are computed from it
};
struct SimulateCredentials {
  SecretBytes token;
  std::vector<SimulatedUser> users;
};
// The credentials file: for "token", its first line is the token; for "onprem" one user per
// line "UPN PASSWORD", for "federated" "UPN PASSWORD TOTP-SECRET-BASE32". Blank lines and lines
// starting with # are skipped.
Result<SimulateCredentials> ParseSimulateCredentials(std::string_view text, std::string_view auth);

struct SimulateOptions {
  std::string discovery_url;   // the server's MS-MDE2 Discovery URL
  std::string ca_pem;          // trust for the enrollment server; empty: the system store
  std::string auth = "token";  // onprem | federated | token
  SimulateCredentials credentials;
  std::string token_email = "simulated-device@example.test";  // the Discover email for tokens

  // machine.key (which seals the devices' TLS keys) lives here; the fleet file by default too.
  std::filesystem::path state_dir;
  std::filesystem::path fleet_file;  // empty: state_dir / "fleet.db"

  int devices = 100;
  std::chrono::milliseconds interval{60'000};
  std::chrono::milliseconds duration{60'000};
  int concurrency = 8;    // sessions in flight at once (worker threads)
  double fail_share = 0;  // share of settings each device fails (deterministic per device)
  uint64_t seed = 1;      // first check-in offsets and which settings fail
  std::chrono::milliseconds step_timeout{30'000};
  // Each device resumes its previous TLS session (in memory only), as a real client whose
  // connection library caches sessions would; false: a full handshake every session.
  bool resume_tls = true;

  // Called about once a second from a background thread with a one-line status.
  std::function<void(const std::string& line)> on_progress;
};

struct LatencySummary {
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};

struct SimulationReport {
  int devices = 0;
  int enrolled = 0;  // enrolled by this run (the others came from the fleet file)
  int enroll_errors = 0;
  double enroll_seconds = 0;

  int64_t sessions = 0;  // completed without error
  int64_t session_errors = 0;
  int64_t commands = 0;  // server commands executed by the devices
  int64_t commands_failed = 0;
  int64_t reports_delivered = 0;
  double run_seconds = 0;
  double sessions_per_second = 0;
  double offered_per_second = 0;  // devices / interval
  int64_t missed_checkins = 0;    // due within the run but not started by its end
  int64_t tls_resumed = 0;        // sessions whose handshake resumed the device's last one
  LatencySummary latency;         // one whole session: load, TLS, all messages, save
  std::vector<std::pair<std::string, int64_t>> errors;  // message -> count, most frequent first

  int64_t fleet_file_bytes = 0;
  int64_t rss_before_bytes = 0;  // before any device was loaded
  int64_t rss_peak_bytes = 0;
  double agent_bytes_per_device = 0;  // (peak - before) / devices
};

Result<SimulationReport> RunSimulation(const SimulateOptions& options);

}  // namespace dm::agent
