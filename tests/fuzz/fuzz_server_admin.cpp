// libFuzzer target: dmserver's admin API (/admin/v1/<op>) request handling, in-process through
// DmServer::HandleAdmin (the admin listener's router): bearer-token check, method rules,
// query-string and JSON body parsing, and every admin operation on the server store. The same
// request on the device listener (DmServer::Handle) must always be 404.
//
// Input: byte 0 selects the request shape (low 2 bits: authorization = the valid token, none,
// "Bearer <line 2>", or <line 2> as the raw header; next 2 bits: method POST, GET, DELETE or
// "post"); line 1 (after byte 0) is the target after /admin/v1/ (may carry ?query); for the
// two header modes line 2 is the header value; the rest is the body. Printable seeds: '0' is
// POST with the valid token, '4' GET with the valid token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server_world.h"

namespace {

std::string_view NextLine(std::string_view& rest) {
  size_t nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  dm::fuzz::ServerWorld& w = dm::fuzz::TheServer();
  const unsigned mode = data[0] & 0x0f;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  dm::transport::HttpRequest request;
  static constexpr const char* kMethods[] = {"POST", "GET", "DELETE", "post"};
  request.method = kMethods[(mode >> 2) & 3];
  request.target = "/admin/v1/" + std::string(NextLine(rest));
  const unsigned auth = mode & 3;
  if (auth == 0) {
    request.headers.emplace_back("Authorization", "Bearer " + w.admin_token);
  } else if (auth == 2) {
    request.headers.emplace_back("Authorization", "Bearer " + std::string(NextLine(rest)));
  } else if (auth == 3) {
    request.headers.emplace_back("Authorization", std::string(NextLine(rest)));
  }
  request.body = std::string(rest);

  dm::fuzz::WithRollback(w, [&] {
    dm::transport::HttpResponse r = w.server->HandleAdmin(request);
    if (w.server->Handle(request, dm::transport::PeerInfo{}).status != 404) std::abort();
    // Without the token nothing but 401 may come back.
    const bool valid =
        auth == 0 || (auth == 2 && request.headers[0].second == "Bearer " + w.admin_token);
    if (!valid && auth != 3 && r.status != 401) std::abort();
    if (r.status == 0) std::abort();
  });
  return 0;
}
