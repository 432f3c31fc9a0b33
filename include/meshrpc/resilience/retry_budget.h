// RetryBudget: caps retries at a fraction of a client's recent requests, so a sick backend
// is not hit by a retry storm (Finagle's RetryBudget). Per-attempt limits alone multiply
// load by max_attempts exactly when the backend is least able to take it; a budget bounds
// the extra load at `ratio` whatever the attempt limits say.
//
// Rule: over the sliding `window`, retries <= ratio x requests + min_retries_per_second x
// window. record_request() is called once per original call (never per retry), and
// try_acquire_retry() before each retry, hedge or failover attempt; those draw on the same
// budget. The floor lets a low-traffic client (1 request/s) still retry its rare failures,
// which a pure ratio would forbid.
//
// The window slides in steps of window / 10 (SlidingWindowCounter): requests and retries are
// forgotten 0.9 to 1.0 window after they happened. Memory is O(1) whatever the traffic.
//
// A pure state machine (DESIGN.md principle 1): `now` is an argument, nothing is read from a
// clock. Threading: not thread-safe. The owner (one cluster::Client) guards it or keeps one
// per io thread with its share of the floor; a lock inside would sit on every call's path
// (DESIGN.md: no lock on the per-call hot path) and is the driver's decision to take.
#pragma once

#include <chrono>
#include <cstdint>

#include "meshrpc/resilience/sliding_window.h"
#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

struct RetryBudgetOptions {
  // Retries may add at most 20% to the load the backend already sees (Finagle's default):
  // enough to ride out a few failing instances, too little to turn an overload into a storm.
  double ratio = 0.2;
  // 10 s: long enough to smooth bursts of a busy client, short enough that the budget
  // recovers within seconds once failures stop (Finagle's default ttl).
  runtime::Duration window = std::chrono::seconds(10);
  // 10 retries/s (100 per 10 s window) whatever the traffic: a client sending one request a
  // second can still retry every failure, and 10/s cannot overload a backend by itself.
  double min_retries_per_second = 10.0;
};

class RetryBudget {
 public:
  // Throws std::invalid_argument on options no budget can honour (negative or NaN ratio or
  // floor, a window under 10 ns): a setup-time programmer error.
  explicit RetryBudget(RetryBudgetOptions options = {});

  // One original request (not a retry) was sent at `now`.
  void record_request(runtime::TimePoint now);

  // True, consuming one retry from the budget, if a retry at `now` fits; false (counted in
  // retries_denied) if the budget is spent: fail the call with the last attempt's status.
  [[nodiscard]] bool try_acquire_retry(runtime::TimePoint now);

  // Retries that would be allowed at `now` (fractional: 0.6 means not yet one).
  double available(runtime::TimePoint now);

  uint64_t retries_allowed() const { return retries_allowed_; }
  uint64_t retries_denied() const { return retries_denied_; }
  const RetryBudgetOptions& options() const { return options_; }

 private:
  // Balance in millionths of a retry, so that 5 requests at ratio 0.2 earn exactly one retry
  // (0.2 x 5 in floating point need not be 1.0).
  static constexpr int64_t kUnit = 1'000'000;
  int64_t balance_units(runtime::TimePoint now);

  RetryBudgetOptions options_;
  int64_t ratio_units_;    // ratio x kUnit
  int64_t reserve_units_;  // min_retries_per_second x window x kUnit
  SlidingWindowCounter requests_;
  SlidingWindowCounter retries_;
  uint64_t retries_allowed_ = 0;
  uint64_t retries_denied_ = 0;
};

}  // namespace meshrpc::resilience
