#include "agent/transport/omadm_headers.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <random>

namespace dm::transport {

CorrelationVector CorrelationVector::New() {
  std::array<unsigned char, 12> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    // A correlation vector is a tracing aid, not a secret; a weaker source is acceptable.
    std::random_device rd;
    for (auto& b : raw) b = static_cast<unsigned char>(rd());
  }
  std::array<unsigned char, 17> b64{};  // 12 bytes -> 16 characters + NUL
  EVP_EncodeBlock(b64.data(), raw.data(), static_cast<int>(raw.size()));
  return CorrelationVector(std::string(reinterpret_cast<const char*>(b64.data()), 16));
}

std::string CorrelationVector::Next() { return base_ + ".0.0." + std::to_string(next_++); }

HttpHeaders OmaDmHeaders::NextMessage() {
  return {
      {"Accept", std::string(kOmaDmAccept)},
      {"Accept-Charset", "UTF-8"},
      {"Client-Request-Id", client_request_id_},
      {"MS-CV", cv_.Next()},
  };
}

}  // namespace dm::transport
