#include "meshrpc/cluster/adaptive_limit.h"

#include <chrono>

#include "meshrpc/base/logging.h"

namespace meshrpc::cluster {

namespace {

AdaptiveLimitStats stats_of(const resilience::AdaptiveConcurrencyLimiter& limiter) {
  return AdaptiveLimitStats{limiter.limit(),           limiter.in_flight(),
                            limiter.no_load_latency(), limiter.calls_admitted(),
                            limiter.calls_shed(),      limiter.probes()};
}

}  // namespace

AdaptiveConcurrencyLimit::AdaptiveConcurrencyLimit(runtime::Env& env,
                                                   resilience::AdaptiveLimitOptions options)
    : env_(env), limiter_(options) {}

bool AdaptiveConcurrencyLimit::try_acquire() {
  std::lock_guard lock(mutex_);
  return limiter_.try_acquire();
}

void AdaptiveConcurrencyLimit::release(runtime::Duration latency, bool ok) {
  const runtime::TimePoint now = env_.now();
  size_t before = 0;
  AdaptiveLimitStats after;
  {
    std::lock_guard lock(mutex_);
    before = limiter_.limit();
    if (ok) {
      limiter_.on_success(now, latency);
    } else {
      limiter_.on_failure(now, latency);
    }
    if (limiter_.limit() == before) return;
    after = stats_of(limiter_);
  }
  // Logged outside the lock: formatting must not hold up other threads' calls.
  MESHRPC_LOG_DEBUG(
      "adaptive concurrency limit {} -> {} (no-load latency {} us, {} in flight, {} calls shed, "
      "{} probes)",
      before, after.limit,
      std::chrono::duration_cast<std::chrono::microseconds>(after.no_load_latency).count(),
      after.in_flight, after.calls_shed, after.probes);
}

size_t AdaptiveConcurrencyLimit::limit() const {
  std::lock_guard lock(mutex_);
  return limiter_.limit();
}

AdaptiveLimitStats AdaptiveConcurrencyLimit::stats() const {
  std::lock_guard lock(mutex_);
  return stats_of(limiter_);
}

std::shared_ptr<AdaptiveConcurrencyLimit> make_adaptive_concurrency_limit(
    runtime::Env& env, resilience::AdaptiveLimitOptions options) {
  return std::make_shared<AdaptiveConcurrencyLimit>(env, options);
}

}  // namespace meshrpc::cluster
