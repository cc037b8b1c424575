// The one seam for time: production code asks a Clock, tests inject a FakeClock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dm {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // The process-wide real clock.
  static Clock& System();
};

// A clock that only moves when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'800'000'000)))
      : now_(start) {}
  TimePoint Now() const override { return now_; }
  void Advance(std::chrono::system_clock::duration d) { now_ += d; }
  void Set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_;
};

// Seconds since the Unix epoch, the form timestamps take in the database.
inline int64_t ToUnixSeconds(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
inline TimePoint FromUnixSeconds(int64_t s) { return TimePoint(std::chrono::seconds(s)); }

// "2026-11-22T14:21:39Z"
std::string FormatUtc(TimePoint t);

}  // namespace dm
