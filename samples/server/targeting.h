// Which profiles reach a device and its users, and the command queue that delivers them.
//
// Rules (Intune-like, documented for admins in the report):
//  - Device scope (user ""): a profile applies when a device group holding the device includes
//    it and no device group holding the device excludes it.
//  - User scope (user U): a profile applies when a user group holding U includes it and no user
//    group holding U, nor any device group holding the device, excludes it. Exclude wins.
//  - User-scope commands are delivered only in sessions where U is the signed-in user
//    (LoginStatus "user" + the UPN alert); they are tracked for every user seen on the device
//    and shown Pending "waiting for U to sign in" until then. Device-scope settings that address
//    ./User/ wait for any signed-in user (as Fleet holds ./User/ profiles).
//  - One command per setting (no Atomic wrapper: one bad LocURI must not roll back the rest);
//    a raw command from a profile is sent as written, with fresh UUID CmdIDs.
//  - "{TenantId}" in a LocURI or value is replaced with the device's tenant id, as Intune does
//    for PassportForWork paths.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "samples/server/store.h"

namespace dm::server {

// Profile ids that apply to the device for `upn` ("" = device scope). Caller holds the lock.
Result<std::vector<int64_t>> ApplicableProfiles(Store& store, const Device& device,
                                                std::string_view upn);

// Brings the queue and per-setting status of one device in line with the assignments: new or
// changed settings get a fresh queued command (status Pending), settings no longer assigned lose
// their queued command and status row. Caller holds the lock.
Status ReconcileDevice(Store& store, std::string_view dev_id);
Status ReconcileAll(Store& store);

// Records a user seen on the device (enrollment, LoginStatus).
Status NoteDeviceUser(Store& store, std::string_view dev_id, std::string_view upn);

// "./Device/Vendor/..." and "./Vendor/..." name the same node; compare URIs in this form.
std::string NormalizeLocUri(std::string_view uri);

}  // namespace dm::server
