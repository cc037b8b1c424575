#include "container/container_internal.h"

#include <cstdio>

namespace dm::container::internal {

std::string AssociatedData(std::string_view purpose, std::string_view user,
                           std::string_view ngc_key_id) {
  std::string ad(purpose);
  ad += '\n';
  ad += std::to_string(user.size());
  ad += ':';
  ad += user;
  ad += '\n';
  ad += ngc_key_id;
  return ad;
}

Result<std::string> NewKeyId(crypto::Random& random) {
  DM_ASSIGN_OR_RETURN(Bytes b, random.Public(16));
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  const std::string hex = crypto::HexEncode(b, /*upper=*/true);
  return "{" + hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12) + "}";
}

Status ValidateUserName(std::string_view user) {
  if (user.empty()) return InvalidArgument("user name is empty");
  if (user.size() > 256) return InvalidArgument("user name is longer than 256 bytes");
  for (char c : user) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return InvalidArgument("user name has a control character");
  }
  return Status::Ok();
}

}  // namespace dm::container::internal
