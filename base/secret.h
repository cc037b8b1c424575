// Bytes that must never outlive their use: PIN-derived keys, master keys, protectors,
// private keys in clear. Wiped with OPENSSL_cleanse on destruction and on reassignment;
// not copyable by accident (Clone() is explicit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace dm {

using Bytes = std::vector<uint8_t>;

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : b_(n) {}
  SecretBytes(const uint8_t* p, size_t n) : b_(p, p + n) {}
  explicit SecretBytes(std::string_view s)
      : b_(reinterpret_cast<const uint8_t*>(s.data()),
           reinterpret_cast<const uint8_t*>(s.data()) + s.size()) {}
  ~SecretBytes() { Wipe(); }

  SecretBytes(SecretBytes&& o) noexcept : b_(std::move(o.b_)) { o.b_.clear(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
      Wipe();
      b_ = std::move(o.b_);
      o.b_.clear();
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const { return SecretBytes(b_.data(), b_.size()); }

  uint8_t* data() { return b_.data(); }
  const uint8_t* data() const { return b_.data(); }
  size_t size() const { return b_.size(); }
  bool empty() const { return b_.empty(); }
  std::span<const uint8_t> span() const { return {b_.data(), b_.size()}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(b_.data()), b_.size()}; }
  void resize(size_t n);  // wipes what a shrink drops
  void Wipe();

  friend bool operator==(const SecretBytes& a, const SecretBytes& b);  // constant time

 private:
  std::vector<uint8_t> b_;
};

}  // namespace dm
