// RetryPolicy and classify_failure: whether a failed attempt may be tried again.
//
// classify_failure is the one place that decides (DESIGN.md principle 5); retries, hedging
// and failover all ask it rather than looking at status codes themselves. The rules, first
// match wins:
//   1. OK                                               never (nothing to retry)
//   2. committed (response headers or a message came)   never (gRPC's commit point)
//   3. the overall call deadline has passed             never (a retry cannot outlive it)
//   4. request larger than max_retry_buffer_bytes       never (it was not kept to resend)
//   5. RESOURCE_EXHAUSTED from a local limit            never (the same request hits it again)
//   6. provably not processed, transient code           retry, whatever the idempotency
//   7. server status listed in retryable_codes          retry (the application says it is safe)
//   8. UNAVAILABLE or DEADLINE_EXCEEDED after sending   retry only if the method is idempotent
//   9. anything else                                    never (an application answer, or a
//                                                       local error that would repeat)
// "Transient" (rule 6) is UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED: a request
// never sent, refused under GOAWAY, or rejected before dispatch by a busy or draining server.
// CANCELLED is never retried: it means someone (the caller, a closing channel) no longer
// wants the result. INTERNAL and UNKNOWN are never retried unless listed: they report a bug
// or an unexplained failure, and repeating it blindly only multiplies it.
//
// Whether a retry is *allowed* is a separate question, asked after a kRetry verdict: may_attempt
// (max_attempts) and, in the client, the retry budget and any server pushback.
// Pure: no clock, no I/O. Policies are values; share them freely once built.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "meshrpc/base/failure_origin.h"
#include "meshrpc/base/idempotency.h"
#include "meshrpc/base/status.h"
#include "meshrpc/resilience/backoff.h"
#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

// gRPC treats maxAttempts above 5 as 5: each attempt multiplies the load a failing backend
// sees, and past 5 a retry rarely succeeds where the first four did not.
inline constexpr int kMaxAttemptsLimit = 5;

struct RetryPolicy {
  // Attempts in all, the first included: 3 is the first plus two retries, which rides over a
  // single restart or a dropped connection without tripling a sick backend's load for long.
  // Values above kMaxAttemptsLimit act as kMaxAttemptsLimit; below 1, as 1.
  int max_attempts = 3;
  // Exponential with full jitter, 100 ms then doubling to at most 2 s: 100 ms is longer than
  // a reconnect on a LAN and short next to a typical call deadline, so the first retry is
  // cheap; 2 s stops the wait from growing past what an interactive call can spend; jitter
  // keeps clients that failed together from retrying together.
  BackoffPolicy backoff = {BackoffKind::kExponentialFullJitter, std::chrono::milliseconds(100),
                           std::chrono::seconds(2), 2.0};
  // Each attempt's own timeout, under the call's deadline (attempt_deadline). None: an
  // attempt may use all the time the call has left.
  std::optional<runtime::Duration> per_attempt_timeout;
  // Codes a server may answer with that this method declares safe to retry (e.g. ABORTED
  // for a transaction the server rolled back). Empty by default: an application's answer is
  // final unless the application says otherwise.
  std::vector<StatusCode> retryable_codes;
  // gRPC's per-call retry buffer bound: a request bigger than 256 KiB is not kept for a
  // resend, so it is not retried; keeping every large request would hold memory per call.
  uint64_t max_retry_buffer_bytes = 256 * 1024;
};

// INVALID_ARGUMENT naming the field when max_attempts is outside [1, kMaxAttemptsLimit],
// per_attempt_timeout is not positive, retryable_codes holds OK, or the backoff is invalid.
Status validate_retry_policy(const RetryPolicy& policy);

// Where a failed attempt's status came from (declared in base: core reports it).
using ::meshrpc::failure_origin_name;
using ::meshrpc::FailureOrigin;

// What is known about one failed attempt.
struct AttemptFailure {
  StatusCode code = StatusCode::kUnknown;
  FailureOrigin origin = FailureOrigin::kServer;
  // core::CallResult::not_processed: never sent, refused under GOAWAY, or rejected by the
  // server before dispatch. The server provably did not run the handler.
  bool not_processed = false;
  // Response headers or a response message arrived: the call is committed to this attempt.
  bool committed = false;
  // The call's overall deadline has passed (as opposed to this attempt's own timeout).
  bool call_deadline_passed = false;
  // The serialized request's size, against max_retry_buffer_bytes.
  uint64_t request_bytes = 0;
};

enum class RetryVerdict : uint8_t { kRetry, kDoNotRetry };

struct RetryDecision {
  RetryVerdict verdict = RetryVerdict::kDoNotRetry;
  // Why, for logs and tests; a static string.
  std::string_view reason;

  bool retry() const { return verdict == RetryVerdict::kRetry; }
};

RetryDecision classify_failure(const AttemptFailure& failure, Idempotency idempotency,
                               const RetryPolicy& policy);

// True while another attempt is within max_attempts (clamped to [1, kMaxAttemptsLimit]);
// `attempts_made` counts every attempt sent so far, the first included.
bool may_attempt(int attempts_made, const RetryPolicy& policy);

// When an attempt started at `now` must end: the earlier of the call's deadline and
// now + per_attempt_timeout (saturating, never past kInfiniteFuture).
runtime::TimePoint attempt_deadline(runtime::TimePoint now, runtime::TimePoint call_deadline,
                                    const RetryPolicy& policy);

}  // namespace meshrpc::resilience
