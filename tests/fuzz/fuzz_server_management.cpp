// libFuzzer target: dmserver's management endpoint (POST /ManagementServer/MDM.svc) with a
// device's verified client certificate, in-process through DmServer::Handle (routing,
// certificate-to-device check, ManagementService: SyncML decode, Statuses, Results, alerts,
// report ingestion, command queue). The input is the request body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server_world.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dm::fuzz::ServerWorld& w = dm::fuzz::TheServer();
  dm::transport::HttpRequest request;
  request.method = "POST";
  request.target = "/ManagementServer/MDM.svc";
  request.headers = {{"Content-Type", "application/vnd.syncml.dm+xml"}};
  request.body.assign(reinterpret_cast<const char*>(data), size);
  dm::fuzz::WithRollback(w, [&] {
    dm::transport::HttpResponse r = w.server->Handle(request, w.device_peer);
    if (r.status == 0) std::abort();
  });
  return 0;
}
