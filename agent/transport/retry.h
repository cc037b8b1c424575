// When to send an OMA-DM message again, and after how long.
//
// Retried: network failures (Code::kUnavailable), timeouts (kDeadlineExceeded), HTTP 5xx and
// HTTP 429. Never retried: TLS certificate problems (kUnauthenticated: a configuration error that
// waiting will not fix), other 4xx, bad arguments. 429 and 503 honour Retry-After (delta-seconds
// or HTTP-date, MS-MDM 3.1.6), capped at max_retry_after; everything else backs off
// exponentially with jitter. Randomness and time are injected so tests are deterministic.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

#include "agent/transport/http_types.h"
#include "base/clock.h"
#include "base/status.h"

namespace dm::transport {

struct RetryOptions {
  int max_attempts = 4;  // total attempts, the first one included; 1 disables retries
  std::chrono::milliseconds initial_backoff{1000};
  double multiplier = 2.0;
  std::chrono::milliseconds max_backoff{60'000};
  // Each backoff is scaled by a factor drawn uniformly from [1 - jitter, 1 + jitter], so a fleet
  // of agents that failed together does not come back together.
  double jitter = 0.2;
  std::chrono::milliseconds max_retry_after{300'000};
};

class RetryPolicy {
 public:
  // `uniform01` returns values in [0, 1); null means a process-wide PRNG.
  explicit RetryPolicy(RetryOptions options = {}, const Clock* clock = &Clock::System(),
                       std::function<double()> uniform01 = nullptr);

  // `attempt` is how many attempts have been made (1 after the first). Returns how long to wait
  // before the next attempt, or nullopt when the outcome is final.
  std::optional<std::chrono::milliseconds> NextDelay(int attempt,
                                                     const Result<HttpResponse>& outcome) const;

  // The jittered exponential backoff after `attempt` attempts.
  std::chrono::milliseconds Backoff(int attempt) const;

  static bool IsRetryableError(const Status& status);
  static bool IsRetryableHttpStatus(int status);

  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
  const Clock* clock_;
  std::function<double()> uniform01_;
};

// Retry-After as delta-seconds ("120") or an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT", and the
// obsolete RFC 850 and asctime forms RFC 9110 requires recipients to accept). A date in the past
// yields zero. Nullopt when the value is malformed.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, TimePoint now);

}  // namespace dm::transport
