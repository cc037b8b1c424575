// DMClient CSP polling (csp-and-container.md 6.1): the server configures
// ./Vendor/MSFT/DMClient/Provider/{ProviderID}/Poll/* in the DM tree; the daemon asks
// ReadPollSchedule when to start the next client-initiated session.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace dm::storage {
class Database;
}

namespace dm::csp {

// The Poll leaves, with the DDF defaults.
struct PollSettings {
  int64_t interval_first_min = 15;     // IntervalForFirstSetOfRetries
  int64_t count_first = 10;            // NumberOfFirstRetries
  int64_t interval_second_min = 0;     // IntervalForSecondSetOfRetries
  int64_t count_second = 0;            // NumberOfSecondRetries
  int64_t interval_remaining_min = 0;  // IntervalForRemainingScheduledRetries
  int64_t count_remaining = 0;         // NumberOfRemainingScheduledRetries
  bool poll_on_login = false;
  bool all_users_poll_on_first_login = false;
};

// One set of polls: `count` polls `interval` apart; count 0 = forever.
struct PollStage {
  std::chrono::minutes interval{0};
  int64_t count = 0;
  bool forever() const { return count == 0; }
  friend bool operator==(const PollStage&, const PollStage&) = default;
};

// When no configured set repeats forever, the device adds a daily one (as Windows creates a
// 24-hour schedule in the maintenance window).
inline constexpr std::chrono::minutes kFallbackPollInterval{24 * 60};

struct PollSchedule {
  // In order (first, second, remaining); the last stage always repeats forever.
  std::vector<PollStage> stages;
  bool fallback_added = false;  // the last stage is kFallbackPollInterval, not configured
  bool poll_on_login = false;
  bool all_users_poll_on_first_login = false;

  // The wait before scheduled poll number `n` (0 = the first poll after the schedule began,
  // i.e. after enrollment or after the provider's Poll settings changed).
  std::chrono::minutes IntervalBefore(int64_t n) const;
};

// The rules of DMClient Poll: a set whose interval is 0 is disabled; a set whose count is 0
// (with a non-zero interval) repeats forever and the later sets are not used; if no set repeats
// forever, a daily fallback is appended.
PollSchedule BuildPollSchedule(const PollSettings& settings);

// The stored Poll values for a provider (defaults for what was never set, or for a provider
// that does not exist). `provider_id` is the decoded node name ("MS DM Server").
Result<PollSettings> ReadPollSettings(storage::Database& db, std::string_view provider_id);
Result<PollSchedule> ReadPollSchedule(storage::Database& db, std::string_view provider_id);

// The providers added under ./Vendor/MSFT/DMClient/Provider, by name.
Result<std::vector<std::string>> ListProviders(storage::Database& db);

}  // namespace dm::csp
