#include "agent/simulate/failing_tree.h"

#include <string>

namespace dm::agent {
namespace {

// FNV-1a then a splitmix64 finaliser: cheap, stable across runs and platforms (std::hash is
// neither), and well spread for short URIs.
uint64_t Mix(uint64_t seed, std::string_view s) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

class FailingTree final : public csp::DmTree {
 public:
  FailingTree(std::unique_ptr<csp::DmTree> inner, double share, uint64_t seed)
      : inner_(std::move(inner)), share_(share), seed_(seed) {}

  csp::OpResult Add(const csp::Context& ctx, std::string_view uri,
                    const csp::NodeValue& value) override {
    if (Fails(uri)) return Failure();
    return inner_->Add(ctx, uri, value);
  }
  csp::OpResult Replace(const csp::Context& ctx, std::string_view uri,
                        const csp::NodeValue& value) override {
    if (Fails(uri)) return Failure();
    return inner_->Replace(ctx, uri, value);
  }
  csp::OpResult Delete(const csp::Context& ctx, std::string_view uri) override {
    return inner_->Delete(ctx, uri);
  }
  csp::GetResult Get(const csp::Context& ctx, std::string_view uri) override {
    return inner_->Get(ctx, uri);
  }
  csp::OpResult Exec(const csp::Context& ctx, std::string_view uri,
                     const csp::NodeValue& value) override {
    if (Fails(uri)) return Failure();
    return inner_->Exec(ctx, uri, value);
  }
  void OnCommitted() override { inner_->OnCommitted(); }

 private:
  // The server's configuration of the agent itself (DMAgent CSP) is not a setting a device
  // may be unable to apply: failing it would only stop the device's reports.
  bool Fails(std::string_view uri) const {
    if (uri.find("Vendor/MSFT/DMAgent/") != std::string_view::npos) return false;
    return SimulatedFailure(share_, seed_, uri);
  }
  static csp::OpResult Failure() {
    return {.code = csp::status::kCommandFailed, .reason = "simulated failure"};
  }

  std::unique_ptr<csp::DmTree> inner_;
  double share_;
  uint64_t seed_;
};

}  // namespace

bool SimulatedFailure(double share, uint64_t device_seed, std::string_view uri) {
  if (share <= 0.0) return false;
  if (share >= 1.0) return true;
  // The top 53 bits as a uniform double in [0, 1).
  const double u = static_cast<double>(Mix(device_seed, uri) >> 11) * 0x1.0p-53;
  return u < share;
}

std::unique_ptr<csp::DmTree> MakeFailingTree(std::unique_ptr<csp::DmTree> inner, double share,
                                             uint64_t device_seed) {
  if (share <= 0.0) return inner;
  return std::make_unique<FailingTree>(std::move(inner), share, device_seed);
}

}  // namespace dm::agent
