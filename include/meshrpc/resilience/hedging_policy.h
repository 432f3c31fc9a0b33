// Hedging (backup requests): when an idempotent call has not answered after a delay, send the
// same request again and take whichever answer comes first (brpc backup_request_ms, gRPC
// hedgingPolicy, "The Tail at Scale"). It trades a little extra load for a shorter tail.
//
// HedgingPolicy says how; a Hedger, one per method per client, decides per call:
//   - may_hedge(idempotency): only methods that are safe to run twice are hedged.
//   - hedge_delay(): how long to wait before each extra attempt. Fixed, or a percentile of the
//     method's recent latency clamped to [min_delay, max_delay]: hedging at the p95 re-sends
//     only the slowest ~5% of calls, so the load it adds is small by construction.
//   - try_acquire_hedge(now): the extra-load cap. Over a sliding window, hedges <=
//     max_extra_load x requests, so hedging cannot turn a slow backend into an overloaded one
//     (brpc #2695: unbounded backup requests doubled load exactly when latency rose).
// Hedges are also attempts: the driver draws each from the client's RetryBudget as well, so
// retries, hedges and failovers share one budget (issue 6); this cap is the hedging-specific
// limit inside it.
//
// A pure state machine (DESIGN.md principle 1): `now` and latencies are arguments, nothing is
// read from a clock. Memory is fixed: kLatencySampleCount samples and one sliding window.
// Threading: not thread-safe; the owner (one cluster::Client) guards it, as for RetryBudget.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>

#include "meshrpc/base/idempotency.h"
#include "meshrpc/resilience/sliding_window.h"
#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

// Hedge after a percentile of the method's recently observed latency.
struct PercentileDelay {
  // p95 ("The Tail at Scale"): the slowest 5% get a hedge, which alone keeps extra load near
  // 5%, the default max_extra_load.
  double quantile = 0.95;
  // 1 ms: a hedge sooner than this races ordinary network and scheduling jitter, re-sending
  // calls that were about to answer, for a method so fast its tail barely matters.
  runtime::Duration min_delay = std::chrono::milliseconds(1);
  // 1 s: past that the tail is an outage, not jitter; a hedge then is better left to the
  // retry policy and the circuit breaker. Also the bound when the estimate runs away.
  runtime::Duration max_delay = std::chrono::seconds(1);
};

struct HedgingPolicy {
  // Attempts per call, the first included. 2: one backup request, as brpc sends; most of the
  // tail is cut by the first hedge and each further one adds load for less gain.
  int max_attempts = 2;
  // A fixed runtime::Duration (brpc backup_request_ms), or a percentile of observed latency.
  std::variant<runtime::Duration, PercentileDelay> delay = PercentileDelay{};
  // Hedges may add at most 5% to the requests sent (brpc #2695): with the p95 delay a healthy
  // method hedges about that much; when latency shifts up, the cap, not the estimate,
  // bounds the extra load until the estimate catches up.
  double max_extra_load = 0.05;
  // 10 s, as RetryBudget: smooths bursts, recovers within seconds once latency settles.
  runtime::Duration load_window = std::chrono::seconds(10);
};

// Hedges at most kMaxHedgeAttempts attempts per call: gRPC's cap for maxAttempts. More
// copies of one request only multiply load.
inline constexpr int kMaxHedgeAttempts = 5;

// Whether a method with this idempotency may be hedged: kIdempotent and kNoSideEffects.
// Hedging runs the request twice by design, so kUnknown never is.
constexpr bool may_hedge(Idempotency idempotency) {
  return idempotency == Idempotency::kIdempotent || idempotency == Idempotency::kNoSideEffects;
}

class Hedger {
 public:
  // Recent latencies the percentile is taken over. 256: p95 rests on the ~13 slowest, enough
  // not to follow a single outlier, and a latency shift is fully reflected after 256 calls;
  // 2 KiB per method.
  static constexpr size_t kLatencySampleCount = 256;
  // Samples needed before a percentile delay is offered. With fewer than 20, p95 by nearest
  // rank is the maximum, i.e. one outlier.
  static constexpr size_t kMinLatencySamples = 20;

  // Throws std::invalid_argument on a policy no hedger can honour (max_attempts outside
  // [1, kMaxHedgeAttempts], a negative delay, min_delay > max_delay, a quantile outside
  // (0, 1], max_extra_load outside [0, kMaxHedgeAttempts - 1] or NaN, a load_window under
  // 10 ns): a setup-time programmer error.
  explicit Hedger(HedgingPolicy policy = {});

  // One call (not a hedge) was sent at `now`: the base of the extra-load cap.
  void record_request(runtime::TimePoint now);

  // A completed attempt took `latency`, measured from its own send. Attempts cancelled
  // because another won are not recorded (their latency is unknown); that biases the
  // percentile low under heavy hedging, which max_extra_load bounds. Negative counts as 0.
  void record_latency(runtime::Duration latency);

  // How long after the previous attempt was sent to send the next one. A fixed delay always
  // has a value. A percentile delay is nullopt until kMinLatencySamples latencies were
  // recorded: the driver then does not hedge this call, since a hedge fired at a guessed delay
  // is load without evidence; after that it is the quantile of the last kLatencySampleCount
  // latencies (nearest rank), clamped to [min_delay, max_delay].
  std::optional<runtime::Duration> hedge_delay() const;

  // True, counting one hedge at `now`, if it fits under max_extra_load x requests over the
  // window; false (counted in hedges_denied) otherwise: the call keeps waiting on the attempts
  // already sent. Call once before each extra attempt.
  [[nodiscard]] bool try_acquire_hedge(runtime::TimePoint now);

  uint64_t hedges_allowed() const { return hedges_allowed_; }
  uint64_t hedges_denied() const { return hedges_denied_; }
  size_t latency_sample_count() const { return sample_count_; }
  const HedgingPolicy& policy() const { return policy_; }

 private:
  // Load in millionths of a request, so that 20 requests at 0.05 earn exactly one hedge.
  static constexpr int64_t kUnit = 1'000'000;

  runtime::Duration percentile_delay(const PercentileDelay& delay) const;

  HedgingPolicy policy_;
  int64_t extra_load_units_;  // max_extra_load x kUnit
  SlidingWindowCounter requests_;
  SlidingWindowCounter hedges_;
  // Ring of the most recent latencies in ns; the first sample_count_ slots are valid.
  std::array<int64_t, kLatencySampleCount> samples_{};
  size_t next_sample_ = 0;
  size_t sample_count_ = 0;
  uint64_t hedges_allowed_ = 0;
  uint64_t hedges_denied_ = 0;
};

}  // namespace meshrpc::resilience
