#include "meshrpc/resilience/retry_policy.h"

#include <algorithm>
#include <string>

namespace meshrpc::resilience {
namespace {

RetryDecision retry(std::string_view reason) { return {RetryVerdict::kRetry, reason}; }
RetryDecision do_not_retry(std::string_view reason) { return {RetryVerdict::kDoNotRetry, reason}; }

bool is_transient(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kResourceExhausted ||
         code == StatusCode::kDeadlineExceeded;
}

bool is_listed(StatusCode code, const RetryPolicy& policy) {
  return std::find(policy.retryable_codes.begin(), policy.retryable_codes.end(), code) !=
         policy.retryable_codes.end();
}

bool is_idempotent(Idempotency idempotency) {
  return idempotency == Idempotency::kIdempotent || idempotency == Idempotency::kNoSideEffects;
}

}  // namespace

Status validate_retry_policy(const RetryPolicy& policy) {
  if (policy.max_attempts < 1 || policy.max_attempts > kMaxAttemptsLimit) {
    return invalid_argument_error("retry max_attempts " + std::to_string(policy.max_attempts) +
                                  " is outside [1, " + std::to_string(kMaxAttemptsLimit) + "]");
  }
  if (policy.per_attempt_timeout && *policy.per_attempt_timeout <= runtime::Duration::zero()) {
    return invalid_argument_error("retry per_attempt_timeout " +
                                  std::to_string(policy.per_attempt_timeout->count()) +
                                  " ns is not positive");
  }
  if (is_listed(StatusCode::kOk, policy)) {
    return invalid_argument_error("retry retryable_codes lists OK");
  }
  return validate_backoff_policy(policy.backoff);
}

RetryDecision classify_failure(const AttemptFailure& failure, Idempotency idempotency,
                               const RetryPolicy& policy) {
  const StatusCode code = failure.code;
  if (code == StatusCode::kOk) return do_not_retry("the attempt succeeded");
  if (failure.committed) return do_not_retry("committed: the server has started answering");
  if (failure.call_deadline_passed) return do_not_retry("the call's deadline has passed");
  if (failure.request_bytes > policy.max_retry_buffer_bytes) {
    return do_not_retry("request larger than max_retry_buffer_bytes was not kept to resend");
  }
  if (failure.origin == FailureOrigin::kLocal && code == StatusCode::kResourceExhausted) {
    return do_not_retry("local limit: the same request would exceed it again");
  }
  if (failure.not_processed && is_transient(code)) {
    return retry("not processed: the server did not run the handler");
  }
  if (failure.origin == FailureOrigin::kServer && is_listed(code, policy)) {
    return retry("code listed in retryable_codes");
  }
  if (code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded) {
    if (is_idempotent(idempotency)) return retry("may have run, but the method is idempotent");
    return do_not_retry("may have run, and the method is not idempotent");
  }
  return do_not_retry("code is not retried unless listed in retryable_codes");
}

bool may_attempt(int attempts_made, const RetryPolicy& policy) {
  return attempts_made < std::clamp(policy.max_attempts, 1, kMaxAttemptsLimit);
}

runtime::TimePoint attempt_deadline(runtime::TimePoint now, runtime::TimePoint call_deadline,
                                    const RetryPolicy& policy) {
  if (!policy.per_attempt_timeout) return call_deadline;
  const runtime::Duration timeout =
      std::max(*policy.per_attempt_timeout, runtime::Duration::zero());
  // now + timeout, saturating. Only a non-negative `now` can overflow, and then the room left
  // before kInfiniteFuture is computable without overflowing.
  const bool saturates = now.time_since_epoch() >= runtime::Duration::zero() &&
                         timeout >= runtime::kInfiniteFuture - now;
  const runtime::TimePoint own = saturates ? runtime::kInfiniteFuture : now + timeout;
  return std::min(own, call_deadline);
}

}  // namespace meshrpc::resilience
