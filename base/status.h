// Errors as values across module boundaries (ARCHITECTURE decision 8).
//
// Status carries a code and a message a person can act on; Result<T> is either a T or a
// non-OK Status. Both are [[nodiscard]] so a dropped error is a compiler warning. Member names
// follow std::expected (has_value, value, error) so a later move to C++23 is mechanical.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dm {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (bad PIN format, bad URI, bad value)
  kNotFound,            // the thing asked for does not exist
  kAlreadyExists,       // create of something that exists
  kPermissionDenied,    // authenticated but not allowed (wrong scope, read-only, consent missing)
  kUnauthenticated,     // wrong PIN, wrong password or OTP, bad certificate
  kFailedPrecondition,  // the state does not allow it (locked out, no protector, pending reboot)
  kResourceExhausted,   // too large, too many
  kCorruption,          // stored data does not decode or authenticate
  kIoError,             // the file system or database failed
  kUnavailable,         // network or peer down; retrying may help
  kDeadlineExceeded,    // a timeout
  kAborted,             // gave up on purpose (session abort, rollback)
  kUnimplemented,       // a protocol feature this agent does not support
  kInternal,            // a bug: an invariant did not hold
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: no container for user alice"
  std::string ToString() const;

  // Prefixes the message with context, keeping the code: "open state db: disk I/O error".
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design, like StatusOr
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status has no value");
    if (std::get<Status>(v_).ok()) v_ = Internal("Result constructed from OK status");
  }

  bool has_value() const { return v_.index() == 0; }
  bool ok() const { return has_value(); }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The error; OK when there is a value.
  Status status() const { return has_value() ? Status::Ok() : std::get<Status>(v_); }
  const Status& error() const {
    assert(!has_value());
    return std::get<Status>(v_);
  }

  T value_or(T fallback) const& { return has_value() ? std::get<0>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dm

// Propagates a non-OK Status (or the error of a Result) to the caller.
#define DM_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::dm::Status dm_status_ = (expr);        \
    if (!dm_status_.ok()) return dm_status_; \
  } while (0)

#define DM_CONCAT_INNER_(a, b) a##b
#define DM_CONCAT_(a, b) DM_CONCAT_INNER_(a, b)
// DM_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error of MakeX() if it failed.
#define DM_ASSIGN_OR_RETURN(lhs, expr) \
  DM_ASSIGN_OR_RETURN_IMPL_(DM_CONCAT_(dm_result_, __LINE__), lhs, expr)
#define DM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.has_value()) return tmp.error();       \
  lhs = std::move(tmp).value()
