// ./Vendor/MSFT/Reboot (csp-and-container.md 6.2). Device scope only.
#include "csp/reboot.h"

#include <chrono>

#include "csp/csps_internal.h"
#include "csp/node_store.h"
#include "storage/database.h"

namespace dm::csp {
namespace {

constexpr char kSinglePath[] = "Vendor/MSFT/Reboot/Schedule/Single";
constexpr char kDailyPath[] = "Vendor/MSFT/Reboot/Schedule/DailyRecurrent";

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n digits at s[pos].
bool Digits(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool Expect(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

Status ValidateSchedule(const NodeAddress& a, std::string_view v) {
  auto t = ParseIso8601DateTime(v);
  if (!t) return InvalidArgument(a.segments.back() + ": " + t.error().message());
  return Status::Ok();
}

Result<std::optional<std::pair<TimePoint, TimePoint>>> ReadScheduleLeaf(NodeStore& store,
                                                                        const char* path) {
  DM_ASSIGN_OR_RETURN(auto row, store.Find(NodeKey{UriScope::kDevice, "", path}));
  using Out = std::optional<std::pair<TimePoint, TimePoint>>;
  if (!row || !row->value || row->value->empty()) return Out();
  auto t = ParseIso8601DateTime(*row->value);
  if (!t) return Out();  // written by an older rule set; ignore rather than fail the agent
  return Out(std::make_pair(*t, row->updated_at));
}

}  // namespace

Result<TimePoint> ParseIso8601DateTime(std::string_view s) {
  auto bad = [&] {
    return InvalidArgument("'" + std::string(s.substr(0, 64)) +
                           "' is not an ISO 8601 date and time (e.g. 2018-10-25T18:00:00)");
  };
  size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!Digits(s, pos, 4, y) || !Expect(s, pos, '-') || !Digits(s, pos, 2, mo) ||
      !Expect(s, pos, '-') || !Digits(s, pos, 2, d)) {
    return bad();
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't')) {
    return InvalidArgument("'" + std::string(s.substr(0, 64)) +
                           "' has no time: the Reboot CSP needs a date and a time");
  }
  ++pos;
  if (!Digits(s, pos, 2, h) || !Expect(s, pos, ':') || !Digits(s, pos, 2, mi)) return bad();
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!Digits(s, pos, 2, sec)) return bad();
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      if (pos == start) return bad();
    }
  }
  int offset_min = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int sign = s[pos] == '-' ? -1 : 1;
      ++pos;
      int oh = 0, om = 0;
      if (!Digits(s, pos, 2, oh)) return bad();
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (!Digits(s, pos, 2, om) || oh > 14 || om > 59) return bad();
      offset_min = sign * (oh * 60 + om);
    } else {
      return bad();
    }
  }
  if (pos != s.size()) return bad();
  if (mo < 1 || mo > 12 || d < 1 || d > static_cast<int>(DaysInMonth(y, mo)) || h > 23 || mi > 59 ||
      sec > 60) {
    return bad();
  }
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + std::min(sec, 59) - offset_min * 60;
  return FromUnixSeconds(secs);
}

std::string_view RebootCauseName(RebootCause c) {
  switch (c) {
    case RebootCause::kRequested:
      return "RebootNow";
    case RebootCause::kScheduledSingle:
      return "Schedule/Single";
    case RebootCause::kScheduledDaily:
      return "Schedule/DailyRecurrent";
  }
  return "Unknown";
}

Status RecordRebootRequest(storage::Database& db, TimePoint at, std::string_view origin) {
  return db.Run("INSERT INTO csp_reboot (requested_at, origin) VALUES (?, ?)", ToUnixSeconds(at),
                origin);
}

Result<std::vector<RebootRequest>> PendingRebootRequests(storage::Database& db) {
  DM_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT id, requested_at, origin FROM csp_reboot "
                                          "WHERE performed_at IS NULL ORDER BY id"));
  std::vector<RebootRequest> out;
  for (;;) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back({st.Int(0), FromUnixSeconds(st.Int(1)), st.Text(2)});
  }
  return out;
}

Status MarkRebootPerformed(storage::Database& db, TimePoint at) {
  DM_ASSIGN_OR_RETURN(auto tx, db.Begin());
  DM_RETURN_IF_ERROR(db.Run("UPDATE csp_reboot SET performed_at = ? WHERE performed_at IS NULL",
                            ToUnixSeconds(at)));
  if (db.Changes() == 0) {
    // A reboot nobody requested through RebootNow (a schedule, or the operator): record it
    // so schedules know it happened.
    DM_RETURN_IF_ERROR(
        db.Run("INSERT INTO csp_reboot (requested_at, origin, performed_at) VALUES (?, ?, ?)",
               ToUnixSeconds(at), std::string_view("reboot step"), ToUnixSeconds(at)));
  }
  return tx.Commit();
}

Result<std::optional<TimePoint>> LastRebootPerformed(storage::Database& db) {
  DM_ASSIGN_OR_RETURN(auto st, db.Prepare("SELECT MAX(performed_at) FROM csp_reboot"));
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(FromUnixSeconds(st.Int(0)));
}

Result<RebootSchedule> ReadRebootSchedule(storage::Database& db) {
  NodeStore store(db, Clock::System());
  RebootSchedule out;
  DM_ASSIGN_OR_RETURN(auto single, ReadScheduleLeaf(store, kSinglePath));
  if (single) {
    out.single = single->first;
    out.single_set_at = single->second;
  }
  DM_ASSIGN_OR_RETURN(auto daily, ReadScheduleLeaf(store, kDailyPath));
  if (daily) {
    out.daily = daily->first;
    out.daily_set_at = daily->second;
  }
  return out;
}

Result<std::optional<RebootDue>> RebootDueAt(storage::Database& db, TimePoint now) {
  DM_ASSIGN_OR_RETURN(auto pending, PendingRebootRequests(db));
  for (const RebootRequest& r : pending) {
    if (r.requested_at <= now)
      return std::optional<RebootDue>({RebootCause::kRequested, r.requested_at});
  }
  DM_ASSIGN_OR_RETURN(auto last, LastRebootPerformed(db));
  DM_ASSIGN_OR_RETURN(RebootSchedule sched, ReadRebootSchedule(db));
  auto fresh = [&](TimePoint occurrence, TimePoint set_at) {
    return occurrence <= now && occurrence >= set_at && (!last || *last < occurrence);
  };
  if (sched.single && fresh(*sched.single, sched.single_set_at)) {
    return std::optional<RebootDue>({RebootCause::kScheduledSingle, *sched.single});
  }
  if (sched.daily && *sched.daily <= now) {
    constexpr auto kDay = std::chrono::hours(24);
    auto periods = (now - *sched.daily) / kDay;
    TimePoint latest = *sched.daily + periods * kDay;
    if (fresh(latest, sched.daily_set_at)) {
      return std::optional<RebootDue>({RebootCause::kScheduledDaily, latest});
    }
  }
  return std::optional<RebootDue>();
}

NodeDef RebootCsp(storage::Database& db, const Clock& clock) {
  NodeDef now = ComputedLeaf("RebootNow", Format::kNull, [](const NodeAddress&) {
    return Result<std::optional<std::string>>(std::optional<std::string>(""));
  });
  now.access = access::kExec | access::kGet;
  now.exec = [&db, &clock](const NodeAddress&, const NodeValue&) -> OpResult {
    Status s = RecordRebootRequest(db, clock.Now(), "RebootNow");
    if (!s.ok()) return OpResult{StatusCodeFor(s), s.message()};
    return OpResult{status::kOk, "reboot requested; it runs at the end of the session"};
  };
  auto schedule_leaf = [](const char* name) {
    NodeDef d = std::move(Leaf(name, Format::kChr, access::kAddDeleteGetReplace, Storage::kStored))
                    .Validate(ValidateSchedule);
    d.empty_deletes = true;
    return d;
  };
  return std::move(Interior("Reboot", access::kGet, Storage::kPermanent,
                            {std::move(now),
                             Interior("Schedule", access::kGet, Storage::kPermanent,
                                      {schedule_leaf("Single"), schedule_leaf("DailyRecurrent")})}))
      .DeviceOnly();
}

}  // namespace dm::csp
