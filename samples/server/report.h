// The admin's view: per device, per user, per profile, per setting status, with the code or
// reason and each user's CanReset (from the device's latest recovery report).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

// {"rows": [{"device", "tenant", "user", "profile", "setting", "status", "code", "reason",
//            "can_reset"}...],
//  "devices": [{"device", "tenant", "enrolled", "enrolled_user", "signed_in_user",
//               "login_status", "last_seen", "manufacturer", "model", "has_report"}...]}
// user "" = device-targeted; code null until the device answered; can_reset null when the
// device has not reported the user's CanReset (and on device rows). Users with a CanReset but no
// setting rows get a row with profile/setting "". Reconciles first, so assignment changes since
// the devices' last sessions show as Pending. Caller holds the lock.
Result<nlohmann::json> BuildReport(Store& store);

// The fixed-width table `dmserver report` prints.
std::string FormatReportTable(const nlohmann::json& report);

// The latest report XML a device sent (1226 alert or DMAgent/Report Results); NotFound if none.
Result<std::string> LatestDeviceReport(Store& store, std::string_view dev_id);

}  // namespace dm::server
