#include "meshrpc/resilience/backoff.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace meshrpc::resilience {
namespace {

using runtime::Duration;

BackoffPolicy clamped(BackoffPolicy policy) {
  policy.initial = std::max(policy.initial, Duration::zero());
  policy.max = std::max(policy.max, Duration::zero());
  policy.initial = std::min(policy.initial, policy.max);
  if (!std::isfinite(policy.multiplier) || policy.multiplier < 1.0) policy.multiplier = 1.0;
  return policy;
}

// min(max, value * multiplier) without overflow: the product is formed in double and compared
// against max before converting back.
Duration grown(Duration value, double multiplier, Duration max) {
  const double product = static_cast<double>(value.count()) * multiplier;
  if (!(product < static_cast<double>(max.count()))) return max;
  return Duration(static_cast<Duration::rep>(product));
}

// previous * 3, saturating at Duration::max().
Duration tripled(Duration previous) {
  constexpr Duration::rep kLimit = std::numeric_limits<Duration::rep>::max() / 3;
  if (previous.count() > kLimit) return Duration::max();
  return previous * 3;
}

}  // namespace

std::string_view backoff_kind_name(BackoffKind kind) {
  switch (kind) {
    case BackoffKind::kFixed:
      return "FIXED";
    case BackoffKind::kExponential:
      return "EXPONENTIAL";
    case BackoffKind::kExponentialFullJitter:
      return "EXPONENTIAL_FULL_JITTER";
    case BackoffKind::kDecorrelatedJitter:
      return "DECORRELATED_JITTER";
  }
  return "UNKNOWN_BACKOFF_KIND";
}

Status validate_backoff_policy(const BackoffPolicy& policy) {
  if (policy.initial < Duration::zero()) {
    return invalid_argument_error("backoff initial " + std::to_string(policy.initial.count()) +
                                  " ns is negative");
  }
  if (policy.max < policy.initial) {
    return invalid_argument_error("backoff max " + std::to_string(policy.max.count()) +
                                  " ns is below initial " + std::to_string(policy.initial.count()) +
                                  " ns");
  }
  if (!std::isfinite(policy.multiplier) || policy.multiplier < 1.0) {
    return invalid_argument_error("backoff multiplier " + std::to_string(policy.multiplier) +
                                  " is not a finite number >= 1");
  }
  return Status::ok_status();
}

Backoff::Backoff(const BackoffPolicy& policy)
    : policy_(clamped(policy)), current_(policy_.initial) {}

void Backoff::reset() {
  delays_given_ = 0;
  current_ = policy_.initial;
}

Duration Backoff::next(runtime::Random& random) {
  if (delays_given_ < std::numeric_limits<int64_t>::max()) ++delays_given_;
  switch (policy_.kind) {
    case BackoffKind::kFixed:
      return policy_.initial;
    case BackoffKind::kExponential: {
      const Duration delay = current_;
      current_ = grown(current_, policy_.multiplier, policy_.max);
      return delay;
    }
    case BackoffKind::kExponentialFullJitter: {
      const Duration ceiling = current_;
      current_ = grown(current_, policy_.multiplier, policy_.max);
      return random.uniform_duration(Duration::zero(), ceiling);
    }
    case BackoffKind::kDecorrelatedJitter: {
      // previous >= initial always, so the range is never empty.
      const Duration drawn = random.uniform_duration(policy_.initial, tripled(current_));
      current_ = std::min(policy_.max, drawn);
      return current_;
    }
  }
  return policy_.initial;
}

}  // namespace meshrpc::resilience
