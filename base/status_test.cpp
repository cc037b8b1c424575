#include "base/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace dm {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s, Status::Ok());
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = NotFound("no container for user alice");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "no container for user alice");
  EXPECT_EQ(s.ToString(), "NotFound: no container for user alice");
}

TEST(StatusTest, EveryHelperMapsToItsCode) {
  EXPECT_EQ(InvalidArgument("x").code(), Code::kInvalidArgument);
  EXPECT_EQ(AlreadyExists("x").code(), Code::kAlreadyExists);
  EXPECT_EQ(PermissionDenied("x").code(), Code::kPermissionDenied);
  EXPECT_EQ(Unauthenticated("x").code(), Code::kUnauthenticated);
  EXPECT_EQ(FailedPrecondition("x").code(), Code::kFailedPrecondition);
  EXPECT_EQ(ResourceExhausted("x").code(), Code::kResourceExhausted);
  EXPECT_EQ(Corruption("x").code(), Code::kCorruption);
  EXPECT_EQ(IoError("x").code(), Code::kIoError);
  EXPECT_EQ(Unavailable("x").code(), Code::kUnavailable);
  EXPECT_EQ(DeadlineExceeded("x").code(), Code::kDeadlineExceeded);
  EXPECT_EQ(Aborted("x").code(), Code::kAborted);
  EXPECT_EQ(Unimplemented("x").code(), Code::kUnimplemented);
  EXPECT_EQ(Internal("x").code(), Code::kInternal);
}

TEST(StatusTest, CodeNamesAreDistinct) {
  EXPECT_EQ(CodeName(Code::kOk), "OK");
  EXPECT_EQ(CodeName(Code::kDeadlineExceeded), "DeadlineExceeded");
  EXPECT_EQ(CodeName(Code::kUnauthenticated), "Unauthenticated");
  EXPECT_NE(CodeName(Code::kUnavailable), CodeName(Code::kInternal));
}

TEST(StatusTest, WithContextPrefixesAndKeepsCode) {
  Status s = IoError("disk I/O error").WithContext("open state db");
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(s.message(), "open state db: disk I/O error");
  EXPECT_TRUE(Status::Ok().WithContext("anything").ok());
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(Aborted("a"), Aborted("a"));
  EXPECT_FALSE(Aborted("a") == Aborted("b"));
  EXPECT_FALSE(Aborted("a") == Internal("a"));
}

TEST(ResultTest, HoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value_or(7), 42);
}

TEST(ResultTest, HoldsError) {
  Result<std::string> r = Unavailable("server down");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "server down");
  EXPECT_EQ(r.value_or("fallback"), "fallback");
}

TEST(ResultTest, ArrowAndMoveOnlyValues) {
  Result<std::string> s = std::string("hello");
  EXPECT_EQ(s->size(), 5u);
  Result<std::unique_ptr<int>> p = std::make_unique<int>(9);
  std::unique_ptr<int> taken = std::move(p).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 9);
}

#ifdef NDEBUG
// In release builds the assert is gone; an OK status must still not masquerade as a value.
TEST(ResultTest, OkStatusBecomesInternalError) {
  Result<int> r = Status::Ok();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInternal);
}
#endif

Status FailIf(bool fail) { return fail ? Aborted("asked to fail") : Status::Ok(); }

Status UsesReturnIfError(bool fail, int* reached) {
  DM_RETURN_IF_ERROR(FailIf(fail));
  ++*reached;
  return Status::Ok();
}

TEST(MacrosTest, ReturnIfErrorPropagatesAndContinues) {
  int reached = 0;
  EXPECT_TRUE(UsesReturnIfError(false, &reached).ok());
  EXPECT_EQ(reached, 1);
  Status s = UsesReturnIfError(true, &reached);
  EXPECT_EQ(s, Aborted("asked to fail"));
  EXPECT_EQ(reached, 1);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  DM_ASSIGN_OR_RETURN(int h, Half(x));
  DM_ASSIGN_OR_RETURN(int q, Half(h));  // two uses in one scope must not clash
  return q;
}

TEST(MacrosTest, AssignOrReturn) {
  Result<int> ok = Quarter(8);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 2);
  Result<int> bad = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), InvalidArgument("odd"));
}

Result<std::unique_ptr<int>> MakePtr() { return std::make_unique<int>(5); }

Result<int> UsesMoveOnly() {
  DM_ASSIGN_OR_RETURN(std::unique_ptr<int> p, MakePtr());
  return *p;
}

TEST(MacrosTest, AssignOrReturnMovesValue) {
  Result<int> r = UsesMoveOnly();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 5);
}

}  // namespace
}  // namespace dm
