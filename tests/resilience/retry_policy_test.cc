// The classification table (retry_policy.h), one test per row, then the attempt and deadline
// helpers.
#include "meshrpc/resilience/retry_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::resilience {
namespace {

using meshrpc::testing::IsOk;
using meshrpc::testing::StatusIs;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr Idempotency kNotIdempotent = Idempotency::kUnknown;

AttemptFailure server_status(StatusCode code) { return {.code = code}; }

AttemptFailure transport_failure(StatusCode code) {
  return {.code = code, .origin = FailureOrigin::kTransport};
}

AttemptFailure not_processed(StatusCode code, FailureOrigin origin) {
  return {.code = code, .origin = origin, .not_processed = true};
}

bool retries(const AttemptFailure& failure, Idempotency idempotency,
             const RetryPolicy& policy = RetryPolicy{}) {
  const RetryDecision decision = classify_failure(failure, idempotency, policy);
  EXPECT_FALSE(decision.reason.empty());
  return decision.retry();
}

// Rule 1.
TEST(RetryClassification, NeverRetriesOk) {
  EXPECT_FALSE(retries(server_status(StatusCode::kOk), Idempotency::kNoSideEffects));
}

// Rule 2.
TEST(RetryClassification, NeverRetriesOnceCommitted) {
  AttemptFailure failure = transport_failure(StatusCode::kUnavailable);
  failure.committed = true;
  EXPECT_FALSE(retries(failure, Idempotency::kNoSideEffects));
}

// Rule 3.
TEST(RetryClassification, NeverRetriesOnceTheCallDeadlinePassed) {
  AttemptFailure failure = not_processed(StatusCode::kDeadlineExceeded, FailureOrigin::kLocal);
  failure.call_deadline_passed = true;
  EXPECT_FALSE(retries(failure, Idempotency::kNoSideEffects));
}

// Rule 4.
TEST(RetryClassification, DoesNotRetryOversizedRequest) {
  AttemptFailure failure = not_processed(StatusCode::kUnavailable, FailureOrigin::kTransport);
  failure.request_bytes = 256 * 1024 + 1;
  EXPECT_FALSE(retries(failure, Idempotency::kNoSideEffects));
}

TEST(RetryClassification, RetriesRequestExactlyAtTheBufferBound) {
  AttemptFailure failure = not_processed(StatusCode::kUnavailable, FailureOrigin::kTransport);
  failure.request_bytes = 256 * 1024;
  EXPECT_TRUE(retries(failure, kNotIdempotent));
}

// Rule 5.
TEST(RetryClassification, NeverRetriesLocalSizeLimit) {
  RetryPolicy policy;
  policy.retryable_codes = {StatusCode::kResourceExhausted};
  EXPECT_FALSE(retries(not_processed(StatusCode::kResourceExhausted, FailureOrigin::kLocal),
                       Idempotency::kNoSideEffects, policy));
}

// Rule 6.
TEST(RetryClassification, RetriesUnavailableWhenNotProcessedEvenForNonIdempotent) {
  EXPECT_TRUE(retries(not_processed(StatusCode::kUnavailable, FailureOrigin::kLocal),
                      kNotIdempotent));  // never sent: no connection
  EXPECT_TRUE(retries(not_processed(StatusCode::kUnavailable, FailureOrigin::kTransport),
                      kNotIdempotent));  // refused under GOAWAY
}

TEST(RetryClassification, RetriesServerRejectionBeforeDispatchEvenForNonIdempotent) {
  EXPECT_TRUE(
      retries(not_processed(StatusCode::kUnavailable, FailureOrigin::kServer), kNotIdempotent));
  EXPECT_TRUE(retries(not_processed(StatusCode::kResourceExhausted, FailureOrigin::kServer),
                      kNotIdempotent));
}

TEST(RetryClassification, RetriesAttemptTimeoutBeforeSendingEvenForNonIdempotent) {
  EXPECT_TRUE(
      retries(not_processed(StatusCode::kDeadlineExceeded, FailureOrigin::kLocal), kNotIdempotent));
}

TEST(RetryClassification, DoesNotRetryCancelledEvenWhenNotProcessed) {
  EXPECT_FALSE(retries(not_processed(StatusCode::kCancelled, FailureOrigin::kLocal),
                       Idempotency::kNoSideEffects));  // e.g. "channel destroyed"
}

TEST(RetryClassification, DoesNotRetryApplicationCodeJustBecauseNotProcessed) {
  EXPECT_FALSE(retries(not_processed(StatusCode::kUnimplemented, FailureOrigin::kServer),
                       Idempotency::kNoSideEffects));
}

// Rule 7.
TEST(RetryClassification, RetriesListedApplicationCode) {
  RetryPolicy policy;
  policy.retryable_codes = {StatusCode::kAborted};
  EXPECT_TRUE(retries(server_status(StatusCode::kAborted), kNotIdempotent, policy));
}

TEST(RetryClassification, ListingACodeDoesNotMakeATransportFailureSafe) {
  RetryPolicy policy;
  policy.retryable_codes = {StatusCode::kUnavailable};
  EXPECT_FALSE(retries(transport_failure(StatusCode::kUnavailable), kNotIdempotent, policy));
}

// Rule 8.
TEST(RetryClassification, RetriesTransportFailureAfterSendOnlyWhenIdempotent) {
  const AttemptFailure reset = transport_failure(StatusCode::kUnavailable);
  EXPECT_FALSE(retries(reset, kNotIdempotent));
  EXPECT_TRUE(retries(reset, Idempotency::kIdempotent));
  EXPECT_TRUE(retries(reset, Idempotency::kNoSideEffects));
}

TEST(RetryClassification, RetriesAttemptTimeoutAfterSendOnlyWhenIdempotent) {
  const AttemptFailure timeout = transport_failure(StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(retries(timeout, kNotIdempotent));
  EXPECT_TRUE(retries(timeout, Idempotency::kIdempotent));
  EXPECT_TRUE(retries(timeout, Idempotency::kNoSideEffects));
}

TEST(RetryClassification, RetriesServerUnavailableOnlyWhenIdempotent) {
  EXPECT_FALSE(retries(server_status(StatusCode::kUnavailable), kNotIdempotent));
  EXPECT_TRUE(retries(server_status(StatusCode::kUnavailable), Idempotency::kIdempotent));
}

// Rule 9: application codes, one test each.
class RetryClassificationOfApplicationCode : public ::testing::TestWithParam<StatusCode> {};

TEST_P(RetryClassificationOfApplicationCode, DoesNotRetryEvenForReads) {
  EXPECT_FALSE(retries(server_status(GetParam()), Idempotency::kNoSideEffects));
}

TEST_P(RetryClassificationOfApplicationCode, RetriesWhenListed) {
  RetryPolicy policy;
  policy.retryable_codes = {GetParam()};
  EXPECT_TRUE(retries(server_status(GetParam()), kNotIdempotent, policy));
}

INSTANTIATE_TEST_SUITE_P(
    AllApplicationCodes, RetryClassificationOfApplicationCode,
    ::testing::Values(StatusCode::kCancelled, StatusCode::kUnknown, StatusCode::kInvalidArgument,
                      StatusCode::kNotFound, StatusCode::kAlreadyExists,
                      StatusCode::kPermissionDenied, StatusCode::kResourceExhausted,
                      StatusCode::kFailedPrecondition, StatusCode::kAborted,
                      StatusCode::kOutOfRange, StatusCode::kUnimplemented, StatusCode::kInternal,
                      StatusCode::kDataLoss, StatusCode::kUnauthenticated),
    [](const ::testing::TestParamInfo<StatusCode>& info) {
      return std::string(status_code_name(info.param));
    });

TEST(RetryClassification, DoesNotRetryInvalidArgument) {
  EXPECT_FALSE(retries(server_status(StatusCode::kInvalidArgument), Idempotency::kNoSideEffects));
}

TEST(RetryClassification, DoesNotRetryInternalFromTransport) {
  EXPECT_FALSE(retries(transport_failure(StatusCode::kInternal), Idempotency::kNoSideEffects));
}

TEST(RetryAttempts, AllowsUpToMaxAttempts) {
  RetryPolicy policy;
  policy.max_attempts = 3;
  EXPECT_TRUE(may_attempt(0, policy));
  EXPECT_TRUE(may_attempt(2, policy));
  EXPECT_FALSE(may_attempt(3, policy));
}

TEST(RetryAttempts, CapsMaxAttemptsAtLimit) {
  RetryPolicy policy;
  policy.max_attempts = 100;
  EXPECT_TRUE(may_attempt(kMaxAttemptsLimit - 1, policy));
  EXPECT_FALSE(may_attempt(kMaxAttemptsLimit, policy));
}

TEST(RetryAttempts, AlwaysAllowsTheFirstAttempt) {
  RetryPolicy policy;
  policy.max_attempts = 0;
  EXPECT_TRUE(may_attempt(0, policy));
  EXPECT_FALSE(may_attempt(1, policy));
}

TEST(RetryAttemptDeadline, IsTheCallDeadlineWithoutPerAttemptTimeout) {
  const runtime::TimePoint now{seconds(10)};
  EXPECT_EQ(attempt_deadline(now, now + seconds(5), RetryPolicy{}), now + seconds(5));
}

TEST(RetryAttemptDeadline, IsTheEarlierOfAttemptTimeoutAndCallDeadline) {
  RetryPolicy policy;
  policy.per_attempt_timeout = milliseconds(300);
  const runtime::TimePoint now{seconds(10)};
  EXPECT_EQ(attempt_deadline(now, now + seconds(5), policy), now + milliseconds(300));
  EXPECT_EQ(attempt_deadline(now, now + milliseconds(100), policy), now + milliseconds(100));
}

TEST(RetryAttemptDeadline, SaturatesInsteadOfOverflowing) {
  RetryPolicy policy;
  policy.per_attempt_timeout = runtime::Duration::max();
  const runtime::TimePoint now{seconds(10)};
  EXPECT_EQ(attempt_deadline(now, runtime::kInfiniteFuture, policy), runtime::kInfiniteFuture);
}

TEST(RetryPolicyValidation, AcceptsDefaults) { EXPECT_THAT(validate_retry_policy({}), IsOk()); }

TEST(RetryPolicyValidation, RejectsMaxAttemptsAboveLimit) {
  RetryPolicy policy;
  policy.max_attempts = kMaxAttemptsLimit + 1;
  EXPECT_THAT(validate_retry_policy(policy),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("max_attempts")));
}

TEST(RetryPolicyValidation, RejectsNonPositivePerAttemptTimeout) {
  RetryPolicy policy;
  policy.per_attempt_timeout = runtime::Duration::zero();
  EXPECT_THAT(validate_retry_policy(policy),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("per_attempt_timeout")));
}

TEST(RetryPolicyValidation, RejectsOkAsRetryable) {
  RetryPolicy policy;
  policy.retryable_codes = {StatusCode::kOk};
  EXPECT_THAT(validate_retry_policy(policy), StatusIs(StatusCode::kInvalidArgument));
}

TEST(RetryPolicyDefaults, AreThreeAttemptsWithJitteredExponentialBackoff) {
  const RetryPolicy policy;
  EXPECT_EQ(policy.max_attempts, 3);
  EXPECT_EQ(policy.backoff.kind, BackoffKind::kExponentialFullJitter);
  EXPECT_EQ(policy.backoff.initial, milliseconds(100));
  EXPECT_EQ(policy.backoff.max, seconds(2));
  EXPECT_EQ(policy.max_retry_buffer_bytes, 256u * 1024u);
  EXPECT_TRUE(policy.retryable_codes.empty());
}

}  // namespace
}  // namespace meshrpc::resilience
