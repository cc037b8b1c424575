// ./Vendor/MSFT/DMClient (csp-and-container.md 6.1): Provider/{ProviderID} with EntDMID and
// the Poll schedule. Device scope only. Values live in the tree's node store.
#include "csp/dmclient.h"

#include <charconv>
#include <limits>

#include "csp/csps_internal.h"
#include "csp/node_store.h"
#include "storage/database.h"

namespace dm::csp {
namespace {

constexpr char kProviderPath[] = "Vendor/MSFT/DMClient/Provider";

struct PollLeaf {
  const char* name;
  Format format;
  const char* default_value;
};
constexpr PollLeaf kPollLeaves[] = {
    {"IntervalForFirstSetOfRetries", Format::kInt, "15"},
    {"NumberOfFirstRetries", Format::kInt, "10"},
    {"IntervalForSecondSetOfRetries", Format::kInt, "0"},
    {"NumberOfSecondRetries", Format::kInt, "0"},
    {"IntervalForRemainingScheduledRetries", Format::kInt, "0"},
    {"NumberOfRemainingScheduledRetries", Format::kInt, "0"},
    {"PollOnLogin", Format::kBool, "false"},
    {"AllUsersPollOnFirstLogin", Format::kBool, "false"},
};

// Minutes and counts: non-negative and within 32 bits, as the DDF's int.
Status NonNegative32(const NodeAddress& a, std::string_view v) {
  int64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  if (n < 0 || n > std::numeric_limits<int32_t>::max()) {
    return InvalidArgument(a.segments.back() + " must be between 0 and 2147483647, got " +
                           std::string(v));
  }
  return Status::Ok();
}

int64_t ToInt(const std::string& v) {
  int64_t n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}

}  // namespace

NodeDef DmClientCsp() {
  std::vector<NodeDef> poll;
  for (const PollLeaf& l : kPollLeaves) {
    NodeDef leaf = std::move(Leaf(l.name, l.format, access::kAddDeleteGetReplace, Storage::kStored))
                       .Default(l.default_value);
    if (l.format == Format::kInt) leaf.validate = NonNegative32;
    poll.push_back(std::move(leaf));
  }
  NodeDef provider = DynamicInterior(
      Naming::kAnyName, "{ProviderID}", access::kAddDeleteGet, Storage::kStored,
      {Leaf("EntDMID", Format::kChr, access::kAddDeleteGetReplace, Storage::kStored),
       Interior("Poll", access::kAddDeleteGet, Storage::kStored, std::move(poll))});
  return std::move(Interior("DMClient", access::kGet, Storage::kPermanent,
                            {Interior("Provider", access::kGet, Storage::kPermanent,
                                      {std::move(provider)})}))
      .DeviceOnly();
}

std::chrono::minutes PollSchedule::IntervalBefore(int64_t n) const {
  for (const PollStage& s : stages) {
    if (s.forever() || n < s.count) return s.interval;
    n -= s.count;
  }
  return stages.empty() ? kFallbackPollInterval : stages.back().interval;
}

PollSchedule BuildPollSchedule(const PollSettings& p) {
  PollSchedule out;
  out.poll_on_login = p.poll_on_login;
  out.all_users_poll_on_first_login = p.all_users_poll_on_first_login;
  const std::pair<int64_t, int64_t> sets[] = {{p.interval_first_min, p.count_first},
                                              {p.interval_second_min, p.count_second},
                                              {p.interval_remaining_min, p.count_remaining}};
  for (const auto& [interval, count] : sets) {
    if (interval <= 0) continue;  // 0 disables the set
    out.stages.push_back({std::chrono::minutes(interval), count < 0 ? 0 : count});
    if (out.stages.back().forever()) break;  // later sets are never reached
  }
  if (out.stages.empty() || !out.stages.back().forever()) {
    out.stages.push_back({kFallbackPollInterval, 0});
    out.fallback_added = true;
  }
  return out;
}

Result<PollSettings> ReadPollSettings(storage::Database& db, std::string_view provider_id) {
  NodeStore store(db, Clock::System());
  std::string poll = std::string(kProviderPath) + "/" + EncodeSegment(provider_id) + "/Poll";
  DM_ASSIGN_OR_RETURN(auto rows, store.Subtree(NodeKey{UriScope::kDevice, "", poll}));
  PollSettings s;
  for (const NodeRow& row : rows) {
    if (!row.value || row.path.size() <= poll.size()) continue;
    std::string_view leaf = std::string_view(row.path).substr(poll.size() + 1);
    const std::string& v = *row.value;
    if (leaf == "IntervalForFirstSetOfRetries") s.interval_first_min = ToInt(v);
    if (leaf == "NumberOfFirstRetries") s.count_first = ToInt(v);
    if (leaf == "IntervalForSecondSetOfRetries") s.interval_second_min = ToInt(v);
    if (leaf == "NumberOfSecondRetries") s.count_second = ToInt(v);
    if (leaf == "IntervalForRemainingScheduledRetries") s.interval_remaining_min = ToInt(v);
    if (leaf == "NumberOfRemainingScheduledRetries") s.count_remaining = ToInt(v);
    if (leaf == "PollOnLogin") s.poll_on_login = v == "true";
    if (leaf == "AllUsersPollOnFirstLogin") s.all_users_poll_on_first_login = v == "true";
  }
  return s;
}

Result<PollSchedule> ReadPollSchedule(storage::Database& db, std::string_view provider_id) {
  DM_ASSIGN_OR_RETURN(PollSettings s, ReadPollSettings(db, provider_id));
  return BuildPollSchedule(s);
}

Result<std::vector<std::string>> ListProviders(storage::Database& db) {
  NodeStore store(db, Clock::System());
  return store.ChildNames(NodeKey{UriScope::kDevice, "", kProviderPath});
}

}  // namespace dm::csp
