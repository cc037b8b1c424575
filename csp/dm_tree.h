// The DM tree as the session engine sees it: OMA-DM operations on URIs, answered with OMA-DM
// status codes. The CSPs behind it keep all their state in the agent database, so the
// session's storage transaction (and an Atomic's savepoint) covers every write a command makes;
// effects outside the database (applying policy to credential containers) run in
// OnCommitted(), after the message's transaction is durable.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dm::csp {

// OMA-DM / MS-MDM status codes (protocol-omadm.md section 1.6).
namespace status {
inline constexpr int kOk = 200;
inline constexpr int kAccepted = 202;
inline constexpr int kAuthAccepted = 212;
inline constexpr int kChunkAccepted = 213;
inline constexpr int kCancelled = 214;
inline constexpr int kNotExecuted = 215;
inline constexpr int kAtomicRolledBack = 216;
inline constexpr int kBadRequest = 400;
inline constexpr int kInvalidCredentials = 401;
inline constexpr int kForbidden = 403;
inline constexpr int kNotFound = 404;
inline constexpr int kNotAllowed = 405;
inline constexpr int kOptionalFeatureNotSupported = 406;
inline constexpr int kMissingCredentials = 407;
inline constexpr int kIncompleteCommand = 412;
inline constexpr int kEntityTooLarge = 413;
inline constexpr int kUnsupportedMediaType = 415;
inline constexpr int kRequestedSizeTooBig = 416;
inline constexpr int kAlreadyExists = 418;
inline constexpr int kDeviceFull = 420;
inline constexpr int kSizeMismatch = 424;
inline constexpr int kPermissionDenied = 425;
inline constexpr int kCommandFailed = 500;
inline constexpr int kAtomicFailed = 507;
inline constexpr int kAtomicRollbackFailed = 516;
}  // namespace status

inline bool IsSuccess(int code) { return code >= 200 && code < 300; }

// Who is asking. ./User/... URIs resolve against `user` (the signed-in user of the session,
// the LoginStatus the client reported); with no user they are 404 (nothing to address).
struct Context {
  std::string user;
};

// A value written to or read from a node. `format` is the Meta Format (chr when absent on
// input), `type` the Meta Type (usually text/plain).
struct NodeValue {
  std::string data;
  std::string format = "chr";
  std::string type = "text/plain";
};

struct OpResult {
  int code = status::kOk;
  // Why, for logs and reports ("MinimumPINLength 3 is outside [4-127]"). Never a secret.
  std::string reason;
};

struct GetResult {
  int code = status::kOk;
  std::string reason;
  // Leaf: the value. Interior node: data = child names, '/'-separated, format "node".
  NodeValue value;
};

class DmTree {
 public:
  virtual ~DmTree() = default;

  virtual OpResult Add(const Context& ctx, std::string_view uri, const NodeValue& value) = 0;
  virtual OpResult Replace(const Context& ctx, std::string_view uri, const NodeValue& value) = 0;
  virtual OpResult Delete(const Context& ctx, std::string_view uri) = 0;
  virtual GetResult Get(const Context& ctx, std::string_view uri) = 0;
  virtual OpResult Exec(const Context& ctx, std::string_view uri, const NodeValue& value) = 0;

  // Called once the storage transaction holding a server message's commands committed.
  virtual void OnCommitted() {}
};

}  // namespace dm::csp
