// The adaptive concurrency limit for a core::Server: resilience's AdaptiveConcurrencyLimiter
// (the algorithm: latency against no-load latency, see resilience/concurrency_limiter.h)
// behind the server's core::ConcurrencyLimit hook, on the env's clock.
//
//   core::ServerOptions options;
//   options.concurrency_limit = cluster::make_adaptive_concurrency_limit(env);
//   core::Server server(env, network, options);
//
// Under overload the server then sheds calls beyond the limit with RESOURCE_EXHAUSTED before
// dispatch, which a cluster::Client retries on another endpoint, instead of queueing them
// until every call is slow. Each change of the limit is a debug log line; shed calls are
// counted (stats()).
//
// Threading: safe from any thread (a mutex around the limiter, taken twice per call for a
// few dozen instructions). Lifetime: `env` outlives it; the server co-owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "meshrpc/core/concurrency_limit.h"
#include "meshrpc/resilience/concurrency_limiter.h"
#include "meshrpc/runtime/env.h"

namespace meshrpc::cluster {

struct AdaptiveLimitStats {
  size_t limit = 0;
  size_t in_flight = 0;
  runtime::Duration no_load_latency{};  // zero until measured
  uint64_t calls_admitted = 0;
  uint64_t calls_shed = 0;
  uint64_t probes = 0;  // no-load latency re-measurements
};

class AdaptiveConcurrencyLimit final : public core::ConcurrencyLimit {
 public:
  // Throws std::invalid_argument on invalid options (see AdaptiveConcurrencyLimiter).
  AdaptiveConcurrencyLimit(runtime::Env& env, resilience::AdaptiveLimitOptions options);

  [[nodiscard]] bool try_acquire() override;
  void release(runtime::Duration latency, bool ok) override;
  size_t limit() const override;

  AdaptiveLimitStats stats() const;

 private:
  runtime::Env& env_;
  mutable std::mutex mutex_;  // guards limiter_
  resilience::AdaptiveConcurrencyLimiter limiter_;
};

// A limit for ServerOptions::concurrency_limit that follows `env`'s clock.
std::shared_ptr<AdaptiveConcurrencyLimit> make_adaptive_concurrency_limit(
    runtime::Env& env, resilience::AdaptiveLimitOptions options = {});

}  // namespace meshrpc::cluster
