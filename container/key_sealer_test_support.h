// For tests that build a ContainerStore without a Device: a software sealer over a fixed root,
// so a test can also build a second one with another root (a "different machine key").
#pragma once

#include <cstdint>

#include "container/key_sealer.h"

namespace dm::container::testing {

inline SecretBytes FixedSealerRoot(uint8_t fill = 0x5a) {
  SecretBytes root(crypto::kAesKeySize);
  for (size_t i = 0; i < root.size(); ++i) root.data()[i] = static_cast<uint8_t>(fill + i);
  return root;
}

class FixedKeySealer final : public SoftwareKeySealer {
 public:
  explicit FixedKeySealer(uint8_t fill = 0x5a) : SoftwareKeySealer(FixedSealerRoot(fill)) {}
};

}  // namespace dm::container::testing
