#include "agent/transport/retry.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <ctime>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace dm::transport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

double DefaultUniform01() {
  static std::mutex mu;
  static std::mt19937_64 gen{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

int ParseInt(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

int MonthIndex(std::string_view m) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (kMonths[i] == m) return static_cast<int>(i);
  }
  return -1;
}

bool ParseClock(std::string_view s, std::tm* tm) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  std::string_view h = s.substr(0, 2), m = s.substr(3, 2), sec = s.substr(6, 2);
  if (!AllDigits(h) || !AllDigits(m) || !AllDigits(sec)) return false;
  tm->tm_hour = ParseInt(h);
  tm->tm_min = ParseInt(m);
  tm->tm_sec = ParseInt(sec);
  return tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec <= 60;
}

std::optional<TimePoint> ParseHttpDate(std::string_view value, TimePoint now) {
  // Commas and the dashes of RFC 850 dates become separators, which reduces the three formats
  // to two token layouts.
  std::string s(value);
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == ',' || c == '-'; }, ' ');
  std::vector<std::string_view> tok;
  std::string_view rest(s);
  while (!rest.empty()) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    size_t end = rest.find(' ');
    tok.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }

  std::string_view day, month, year, clock;
  if (tok.size() == 6 && tok[5] == "GMT") {  // IMF-fixdate or RFC 850
    day = tok[1], month = tok[2], year = tok[3], clock = tok[4];
  } else if (tok.size() == 5) {  // asctime: "Sun Nov  6 08:49:37 1994"
    month = tok[1], day = tok[2], clock = tok[3], year = tok[4];
  } else {
    return std::nullopt;
  }
  if (tok[0].empty() || !std::isalpha(static_cast<unsigned char>(tok[0][0]))) return std::nullopt;
  std::tm tm{};
  tm.tm_mon = MonthIndex(month);
  if (tm.tm_mon < 0 || !AllDigits(day) || day.size() > 2 || !AllDigits(year) ||
      (year.size() != 2 && year.size() != 4) || !ParseClock(clock, &tm)) {
    return std::nullopt;
  }
  tm.tm_mday = ParseInt(day);
  if (tm.tm_mday < 1 || tm.tm_mday > 31) return std::nullopt;
  int y = ParseInt(year);
  if (year.size() == 2) {
    // RFC 9110 5.6.7: a two-digit year more than 50 years in the future is in the past century.
    std::time_t now_t = std::chrono::system_clock::to_time_t(now);
    std::tm now_tm{};
    gmtime_r(&now_t, &now_tm);
    int this_year = now_tm.tm_year + 1900;
    y += (this_year / 100) * 100;
    if (y > this_year + 50) y -= 100;
  }
  tm.tm_year = y - 1900;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, TimePoint now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (AllDigits(value)) {
    // Anything beyond ~30 years is a nonsense value; clamp instead of overflowing.
    if (value.size() > 9) return seconds(999'999'999);
    return seconds(ParseInt(value));
  }
  std::optional<TimePoint> at = ParseHttpDate(value, now);
  if (!at) return std::nullopt;
  if (*at <= now) return seconds(0);
  return std::chrono::ceil<seconds>(*at - now);
}

RetryPolicy::RetryPolicy(RetryOptions options, const Clock* clock,
                         std::function<double()> uniform01)
    : options_(options),
      clock_(clock != nullptr ? clock : &Clock::System()),
      uniform01_(uniform01 ? std::move(uniform01) : DefaultUniform01) {}

bool RetryPolicy::IsRetryableError(const Status& status) {
  return status.code() == Code::kUnavailable || status.code() == Code::kDeadlineExceeded;
}

bool RetryPolicy::IsRetryableHttpStatus(int status) {
  return status == 429 || (status >= 500 && status < 600);
}

milliseconds RetryPolicy::Backoff(int attempt) const {
  double base = static_cast<double>(options_.initial_backoff.count()) *
                std::pow(options_.multiplier, std::max(0, attempt - 1));
  double cap = static_cast<double>(options_.max_backoff.count());
  base = std::min(base, cap);
  double u = std::clamp(uniform01_(), 0.0, 1.0);
  double factor = 1.0 + options_.jitter * (2.0 * u - 1.0);
  double ms = std::clamp(base * factor, 0.0, cap);
  return milliseconds(static_cast<int64_t>(std::llround(ms)));
}

std::optional<milliseconds> RetryPolicy::NextDelay(int attempt,
                                                   const Result<HttpResponse>& outcome) const {
  if (attempt >= options_.max_attempts) return std::nullopt;
  if (!outcome.has_value()) {
    if (!IsRetryableError(outcome.error())) return std::nullopt;
    return Backoff(attempt);
  }
  const HttpResponse& r = *outcome;
  if (!IsRetryableHttpStatus(r.status)) return std::nullopt;
  if (r.status == 429 || r.status == 503) {
    if (auto header = r.Header("Retry-After")) {
      if (auto after = ParseRetryAfter(*header, clock_->Now())) {
        return std::min<milliseconds>(*after, options_.max_retry_after);
      }
    }
  }
  return Backoff(attempt);
}

}  // namespace dm::transport
