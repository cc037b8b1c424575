#include "agent/transport/retry.h"

#include <gtest/gtest.h>

namespace dm::transport {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

HttpResponse Response(int status, HttpHeaders headers = {}) {
  HttpResponse r;
  r.status = status;
  r.headers = std::move(headers);
  return r;
}

class RetryPolicyTest : public ::testing::Test {
 protected:
  RetryPolicy Policy(double u = 0.5) {
    return RetryPolicy(options_, &clock_, [u] { return u; });
  }
  RetryOptions options_;
  FakeClock clock_;
};

TEST_F(RetryPolicyTest, NetworkErrorsBackOffExponentiallyUntilTheAttemptBound) {
  RetryPolicy p = Policy();  // u = 0.5: the jitter factor is exactly 1
  Result<HttpResponse> down = Unavailable("connect refused");
  EXPECT_EQ(p.NextDelay(1, down), milliseconds(1000));
  EXPECT_EQ(p.NextDelay(2, down), milliseconds(2000));
  EXPECT_EQ(p.NextDelay(3, down), milliseconds(4000));
  EXPECT_EQ(p.NextDelay(4, down), std::nullopt);  // max_attempts = 4 in total
}

TEST_F(RetryPolicyTest, TimeoutsAreRetried) {
  EXPECT_EQ(Policy().NextDelay(1, DeadlineExceeded("read timed out")), milliseconds(1000));
}

TEST_F(RetryPolicyTest, JitterStaysWithinItsBand) {
  EXPECT_EQ(Policy(0.0).Backoff(1), milliseconds(800));
  EXPECT_EQ(Policy(0.999999).Backoff(1), milliseconds(1200));
  EXPECT_EQ(Policy(0.25).Backoff(2), milliseconds(1800));
}

TEST_F(RetryPolicyTest, BackoffIsCappedIncludingJitter) {
  options_.max_attempts = 30;
  options_.max_backoff = milliseconds(5000);
  EXPECT_EQ(Policy(0.5).Backoff(20), milliseconds(5000));
  EXPECT_EQ(Policy(0.999).Backoff(20), milliseconds(5000));
  EXPECT_EQ(Policy(0.0).Backoff(20), milliseconds(4000));
}

TEST_F(RetryPolicyTest, ConfigurationAndCertificateErrorsAreNeverRetried) {
  RetryPolicy p = Policy();
  EXPECT_EQ(p.NextDelay(1, Unauthenticated("certificate verify failed")), std::nullopt);
  EXPECT_EQ(p.NextDelay(1, FailedPrecondition("wrong version number")), std::nullopt);
  EXPECT_EQ(p.NextDelay(1, InvalidArgument("bad url")), std::nullopt);
  EXPECT_EQ(p.NextDelay(1, ResourceExhausted("too big")), std::nullopt);
}

TEST_F(RetryPolicyTest, ServerErrorsAreRetriedClientErrorsAreNot) {
  RetryPolicy p = Policy();
  for (int status : {500, 502, 503, 504}) {
    EXPECT_EQ(p.NextDelay(1, Response(status)), milliseconds(1000)) << status;
  }
  for (int status : {200, 204, 301, 400, 401, 403, 404, 409, 413}) {
    EXPECT_EQ(p.NextDelay(1, Response(status)), std::nullopt) << status;
  }
}

TEST_F(RetryPolicyTest, TooManyRequestsHonoursRetryAfterSeconds) {
  RetryPolicy p = Policy();
  EXPECT_EQ(p.NextDelay(1, Response(429, {{"Retry-After", "7"}})), milliseconds(7000));
  EXPECT_EQ(p.NextDelay(1, Response(503, {{"retry-after", "3"}})), milliseconds(3000));
  // Without (or with a malformed) Retry-After, 429 falls back to the backoff.
  EXPECT_EQ(p.NextDelay(1, Response(429)), milliseconds(1000));
  EXPECT_EQ(p.NextDelay(1, Response(429, {{"Retry-After", "soon"}})), milliseconds(1000));
}

TEST_F(RetryPolicyTest, RetryAfterIsCapped) {
  options_.max_retry_after = seconds(60);
  EXPECT_EQ(Policy().NextDelay(1, Response(429, {{"Retry-After", "86400"}})), seconds(60));
}

TEST_F(RetryPolicyTest, RetryAfterHttpDateIsRelativeToTheClock) {
  clock_.Set(FromUnixSeconds(784111777));  // Sun, 06 Nov 1994 08:49:37 GMT
  auto delay =
      Policy().NextDelay(1, Response(429, {{"Retry-After", "Sun, 06 Nov 1994 08:50:07 GMT"}}));
  EXPECT_EQ(delay, seconds(30));
}

TEST_F(RetryPolicyTest, OneAttemptMeansNoRetry) {
  options_.max_attempts = 1;
  EXPECT_EQ(Policy().NextDelay(1, Unavailable("down")), std::nullopt);
  EXPECT_EQ(Policy().NextDelay(1, Response(503)), std::nullopt);
}

TEST(ParseRetryAfterTest, DeltaSeconds) {
  TimePoint now = FromUnixSeconds(1'000'000);
  EXPECT_EQ(ParseRetryAfter("120", now), seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 5 ", now), seconds(5));
  EXPECT_EQ(ParseRetryAfter("0", now), seconds(0));
  EXPECT_EQ(ParseRetryAfter("99999999999999999999", now), seconds(999'999'999));
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
}

TEST(ParseRetryAfterTest, AllThreeHttpDateForms) {
  TimePoint now = FromUnixSeconds(784111777 - 60);  // one minute before the date
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), seconds(60));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), seconds(60));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), seconds(60));
}

TEST(ParseRetryAfterTest, PastDateIsZeroAndGarbageIsRejected) {
  TimePoint now = FromUnixSeconds(1'800'000'000);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), seconds(0));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 PST", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Foo 1994 08:49:37 GMT", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Sun, 32 Nov 1994 08:49:37 GMT", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 25:49:37 GMT", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("tomorrow", now), std::nullopt);
}

}  // namespace
}  // namespace dm::transport
