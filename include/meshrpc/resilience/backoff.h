// Backoff: how long to wait before the next retry (or reconnect), as a pure state object.
//
// The four kinds follow AWS's "Exponential Backoff and Jitter" (Marc Brooker, 2015), with n
// the number of delays handed out since the last reset (0 for the first):
//   kFixed                  delay = min(max, initial)
//   kExponential            delay = min(max, initial * multiplier^n)
//   kExponentialFullJitter  delay = uniform(0, min(max, initial * multiplier^n))
//   kDecorrelatedJitter     delay = min(max, uniform(initial, previous * 3)), previous starting
//                           at initial
// Jitter spreads clients that failed together so that they do not retry together; AWS's
// simulation found full jitter the best for total work and decorrelated jitter close behind.
//
// Pure: no clock, no global RNG. Random draws come from the caller's runtime::Random (the
// Env's seeded generator), so a simulation replays the same delays. The ceiling grows by
// repeated multiplication clamped at `max`, so attempt 1,000 (or 10^9) cannot overflow.
// A Backoff is a value; not thread-safe, like any value type.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "meshrpc/base/status.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::resilience {

enum class BackoffKind : uint8_t {
  kFixed,
  kExponential,
  kExponentialFullJitter,
  kDecorrelatedJitter,
};
// "FIXED", "EXPONENTIAL", "EXPONENTIAL_FULL_JITTER", "DECORRELATED_JITTER".
std::string_view backoff_kind_name(BackoffKind kind);

struct BackoffPolicy {
  BackoffKind kind = BackoffKind::kExponentialFullJitter;
  // The first delay (kFixed: every delay; kDecorrelatedJitter: the smallest delay).
  runtime::Duration initial = std::chrono::milliseconds(100);
  // No delay exceeds it.
  runtime::Duration max = std::chrono::seconds(2);
  // Growth per delay for the exponential kinds. 2 doubles the window each time, the usual
  // choice (AWS, gRPC's retry examples); gRPC's reconnect backoff uses 1.6.
  double multiplier = 2.0;
};

// INVALID_ARGUMENT naming the field when initial < 0, max < initial, or multiplier < 1 (or
// not finite). A Backoff built from an invalid policy still behaves (it clamps), but a
// configuration should be checked where it is read.
Status validate_backoff_policy(const BackoffPolicy& policy);

class Backoff {
 public:
  explicit Backoff(const BackoffPolicy& policy);

  // The delay before the next attempt; advances n. `random` is drawn from only by the
  // jittered kinds.
  runtime::Duration next(runtime::Random& random);
  // Back to n = 0 (after a success, or a connection that stayed up).
  void reset();

  // Delays handed out since the last reset (saturates at INT64_MAX).
  int64_t delays_given() const { return delays_given_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;  // clamped: 0 <= initial <= max, multiplier >= 1
  int64_t delays_given_ = 0;
  // Exponential kinds: min(max, initial * multiplier^n). Decorrelated: the previous delay.
  runtime::Duration current_;
};

}  // namespace meshrpc::resilience
