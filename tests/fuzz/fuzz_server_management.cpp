// libFuzzer target: dmserver's management endpoint (POST /ManagementServer/MDM.svc) with a
// device's verified client certificate, in-process through DmServer::Handle (routing,
// certificate-to-device check, ManagementService: SyncML decode, Statuses, Results, alerts,
// report ingestion, command queue). The input is the request body.
//
// A fuzzer cannot forge an ES256 signature, so without help it would never get past the user
// token check to the user-targeted settings. Every "@USER_TOKEN@" in the input is therefore
// replaced by a token the world's IdP signed for its user (server_world.h), valid for the
// world's fixed clock; the seeds (tests/fuzz/seeds/server_management) and the dictionary carry
// the placeholder.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server_world.h"

namespace {

constexpr std::string_view kTokenPlaceholder = "@USER_TOKEN@";

void SubstituteUserToken(std::string& body, const std::string& token) {
  for (size_t at = body.find(kTokenPlaceholder); at != std::string::npos;
       at = body.find(kTokenPlaceholder, at + token.size())) {
    body.replace(at, kTokenPlaceholder.size(), token);
  }
}

// Once per process: a session whose user signed in must be sent the user-targeted setting,
// or the token substitution no longer reaches that code and the fuzzer would be blind to it.
void CheckTheTokenReachesUserSettings(dm::fuzz::ServerWorld& w) {
  std::string body =
      "<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2"
      "</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>x</LocURI></Target>"
      "<Source><LocURI>" +
      std::string(dm::fuzz::kFuzzDevId) +
      "</LocURI></Source></SyncHdr><SyncBody><Alert><CmdID>2</CmdID><Data>1201</Data></Alert>"
      "<Alert><CmdID>3</CmdID><Data>1224</Data><Item><Meta><Type xmlns=\"syncml:metinf\">"
      "com.microsoft/MDM/LoginStatus</Type></Meta><Data>user</Data></Item></Alert><Alert>"
      "<CmdID>4</CmdID><Data>1224</Data><Item><Meta><Type xmlns=\"syncml:metinf\">"
      "com.microsoft/MDM/AADUserToken</Type></Meta><Data>@USER_TOKEN@</Data></Item></Alert>"
      "<Final/></SyncBody></SyncML>";
  SubstituteUserToken(body, w.user_token);
  dm::transport::HttpRequest request{.method = "POST",
                                     .target = "/ManagementServer/MDM.svc",
                                     .headers = {{"Content-Type", "application/vnd.syncml.dm+xml"}},
                                     .body = body};
  dm::fuzz::WithRollback(w, [&] {
    dm::transport::HttpResponse r = w.server->Handle(request, w.device_peer);
    if (r.body.find("./User/Vendor/MSFT/PassportForWork") == std::string::npos) {
      dm::fuzz::SetupFailed("a session with the user's token got no user setting: " + r.body);
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dm::fuzz::ServerWorld& w = dm::fuzz::TheServer();
  static const bool checked = (CheckTheTokenReachesUserSettings(w), true);
  (void)checked;
  dm::transport::HttpRequest request;
  request.method = "POST";
  request.target = "/ManagementServer/MDM.svc";
  request.headers = {{"Content-Type", "application/vnd.syncml.dm+xml"}};
  request.body.assign(reinterpret_cast<const char*>(data), size);
  SubstituteUserToken(request.body, w.user_token);
  dm::fuzz::WithRollback(w, [&] {
    dm::transport::HttpResponse r = w.server->Handle(request, w.device_peer);
    if (r.status == 0) std::abort();
  });
  return 0;
}
