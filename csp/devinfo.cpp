// ./DevInfo (csp-and-container.md 6.3): device identity, all Get, device scope. Sent by the
// agent in every session's first package; served here for Gets as well.
#include <optional>
#include <string>

#include "csp/csps_internal.h"
#include "csp/device_facts.h"
#include "storage/database.h"

namespace dm::csp {
std::function<Result<std::optional<std::string>>(const NodeAddress&)> FactOr(
    storage::Database& db, const char* key, HostFactsSource host, std::string HostFacts::*field,
    std::string fallback) {
  return [&db, key, host = std::move(host), field, fallback = std::move(fallback)](
             const NodeAddress&) -> Result<std::optional<std::string>> {
    DM_ASSIGN_OR_RETURN(auto fact, ReadFact(db, key));
    if (fact && !fact->empty()) return fact;
    if (host && field != nullptr) {
      std::string v = host().*field;
      if (!v.empty()) return std::optional<std::string>(std::move(v));
    }
    return std::optional<std::string>(fallback);
  };
}

NodeDef DevInfoCsp(storage::Database& db, HostFactsSource host) {
  std::vector<NodeDef> leaves;
  leaves.push_back(ComputedLeaf("DevId", Format::kChr,
                                [&db](const NodeAddress&) -> Result<std::optional<std::string>> {
                                  DM_ASSIGN_OR_RETURN(std::string id, DeviceId(db));
                                  return std::optional<std::string>(std::move(id));
                                }));
  // "Unknown" when absent is what Windows reports for Man (csp-and-container.md 6.3).
  leaves.push_back(
      ComputedLeaf("Man", Format::kChr,
                   FactOr(db, kFactManufacturer, host, &HostFacts::manufacturer, "Unknown")));
  leaves.push_back(ComputedLeaf("Mod", Format::kChr,
                                FactOr(db, kFactModel, host, &HostFacts::product_name, "Unknown")));
  // The DM client revision: fixed, the value the Windows 10/11 client reports.
  leaves.push_back(ComputedLeaf("DmV", Format::kChr, [](const NodeAddress&) {
    return Result<std::optional<std::string>>(std::optional<std::string>("1.3"));
  }));
  leaves.push_back(ComputedLeaf("Lang", Format::kChr,
                                FactOr(db, kFactLanguage, host, &HostFacts::language, "en-US")));
  return std::move(Interior("DevInfo", access::kGet, Storage::kPermanent, std::move(leaves)))
      .DeviceOnly();
}

}  // namespace dm::csp
