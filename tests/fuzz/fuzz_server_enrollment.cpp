// libFuzzer target: dmserver's MS-MDE2 endpoints (Discovery.svc, Policy.svc, Enrollment.svc),
// in-process through DmServer::Handle: SOAP parsing and limits, the wsse:Security credentials,
// the RST's CSR and AdditionalContext, the takeover check and the device record.
//
// Input: byte 0 selects the endpoint (low 2 bits) and whether the request comes with the
// enrolled device's client certificate (bit 2); the rest is the body. Every answer must be a
// SOAP one (a fault unless it is 200), never a crash or an empty status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/enroll/soap.h"
#include "server_world.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  dm::fuzz::ServerWorld& w = dm::fuzz::TheServer();
  static constexpr const char* kPaths[] = {
      "/EnrollmentServer/Discovery.svc", "/EnrollmentServer/Policy.svc",
      "/EnrollmentServer/Enrollment.svc", "/EnrollmentServer/Enrollment.svc"};
  dm::transport::HttpRequest request;
  request.method = "POST";
  request.target = kPaths[data[0] & 3];
  request.headers = {{"Content-Type", std::string(dm::soap::kContentType)}};
  request.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  const dm::transport::PeerInfo peer = (data[0] & 4) ? w.device_peer : dm::transport::PeerInfo{};

  dm::fuzz::WithRollback(w, [&] {
    dm::transport::HttpResponse r = w.server->Handle(request, peer);
    if (r.status == 0) std::abort();
    if (r.Header("Content-Type").value_or("").rfind("application/soap+xml", 0) != 0) std::abort();
    if (r.status != 200) {
      auto m = dm::soap::Message::Parse(r.body);
      if (!m.ok() || !m->fault()) std::abort();
    }
  });
  return 0;
}
