// CircuitBreaker: stops sending calls to one endpoint that keeps failing, so callers fail
// fast (and fail over) instead of waiting on it, and the endpoint gets room to recover.
//
//   kClosed --(consecutive_failures in a row, or failure rate >= threshold over the window
//              with >= minimum_calls)--> kOpen
//   kOpen --(open duration elapsed)--> kHalfOpen
//   kHalfOpen --(half_open_successes_to_close probe successes)--> kClosed
//   kHalfOpen --(any probe failure)--> kOpen, for open_duration_multiplier times longer than
//              last time, capped at open_duration_max
//
// Use: before each attempt call allow(now); if it is not OK, do not send (the status is
// UNAVAILABLE "circuit open for <name>"). After an admitted attempt ends, report exactly one
// of on_success, on_failure or on_cancelled. Which outcomes are failures is the caller's
// decision: only those that say something about the endpoint's health (see
// counts_as_breaker_failure). An application error means the endpoint answered: on_success.
//
// Outcomes of calls admitted before a trip that arrive while kOpen are ignored; arriving
// while kHalfOpen they count as probe outcomes (the breaker cannot tell them apart, and both
// are recent evidence about the endpoint).
//
// A pure state machine (DESIGN.md principle 1): `now` is an argument and the open-to-half-open
// move happens when a call passes a `now` at or past the open deadline. Every transition is
// counted and handed to the observer (principle 7), which the driver logs and exports.
// Threading: not thread-safe; one per endpoint, guarded by its owner (a breaker is touched
// twice per call to its endpoint, so the owner picks the cheapest guard for its threading).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/status.h"
#include "meshrpc/resilience/sliding_window.h"
#include "meshrpc/runtime/clock.h"

namespace meshrpc::resilience {

// True for outcomes that say the endpoint is unhealthy: UNAVAILABLE (unreachable, reset,
// shedding), DEADLINE_EXCEEDED (too slow), RESOURCE_EXHAUSTED (overloaded) and INTERNAL
// (broken). Application codes (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...), OK and
// CANCELLED are not. The caller must not report a RESOURCE_EXHAUSTED produced locally (a
// request over the size limit): that says nothing about the endpoint.
bool counts_as_breaker_failure(const Status& status);

struct CircuitBreakerOptions {
  // 5 in a row: a dead endpoint trips within 5 calls even at low traffic, where a rate over
  // minimum_calls would take 20; 5 unrelated failures in a row of a healthy endpoint are rare.
  // 0 disables this trigger.
  uint32_t consecutive_failures = 5;
  // Trip when half the calls in the window fail: well above the error rate of a healthy
  // endpoint, low enough to catch one that fails every other call. Above 1.0 disables it.
  double failure_rate_threshold = 0.5;
  // The rate is judged over at least 20 calls, so 2 failures of 3 calls do not trip it.
  uint32_t minimum_calls = 20;
  // 10 s window for the rate: recent enough to react, long enough to hold minimum_calls at
  // modest traffic.
  runtime::Duration window = std::chrono::seconds(10);
  // First open period 5 s: long enough for a restarting process or a flapping link to settle,
  // short enough that a recovered endpoint is back within seconds.
  runtime::Duration open_duration = std::chrono::seconds(5);
  // Each trip from half-open doubles the open period, up to 60 s, so a down endpoint is
  // probed ever less often but still every minute. 1.0 disables growth.
  double open_duration_multiplier = 2.0;
  runtime::Duration open_duration_max = std::chrono::seconds(60);
  // At most 3 probes in flight at once: enough to judge the endpoint, too few to hurt it.
  uint32_t half_open_probes = 3;
  // 3 probe successes close the breaker: one lucky call is not recovery.
  uint32_t half_open_successes_to_close = 3;
};

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  enum class Reason {
    kConsecutiveFailures,  // closed -> open
    kFailureRate,          // closed -> open
    kOpenDurationElapsed,  // open -> half-open
    kProbeFailed,          // half-open -> open
    kProbesSucceeded,      // half-open -> closed
  };

  struct Transition {
    State from;
    State to;
    Reason reason;
    runtime::TimePoint at;
    // When kOpen: how long it stays open before probing.
    runtime::Duration open_duration;
  };
  using Observer = std::function<void(std::string_view name, const Transition& transition)>;

  // `name` is the endpoint ("10.0.0.7:7000"), used in the UNAVAILABLE message. Throws
  // std::invalid_argument on options that cannot work (zero probes, a zero open duration,
  // a multiplier below 1): a setup-time programmer error.
  CircuitBreaker(std::string name, CircuitBreakerOptions options = {});

  // Called on every state change, from inside the call that caused it. It must not call back
  // into this breaker.
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // OK: send the attempt. UNAVAILABLE: do not; the endpoint's circuit is open or its
  // half-open probes are all in flight. Try another endpoint or fail the call.
  [[nodiscard]] Status allow(runtime::TimePoint now);
  void on_success(runtime::TimePoint now);
  void on_failure(runtime::TimePoint now);
  // An admitted attempt ended with no verdict on the endpoint (cancelled by the caller before
  // an answer): frees its probe slot and counts nothing.
  void on_cancelled(runtime::TimePoint now);

  State state(runtime::TimePoint now);

  const std::string& name() const { return name_; }
  const CircuitBreakerOptions& options() const { return options_; }
  // Transition counts by kind, and calls refused by allow().
  uint64_t times_opened() const { return times_opened_; }
  uint64_t times_half_opened() const { return times_half_opened_; }
  uint64_t times_closed() const { return times_closed_; }
  uint64_t calls_rejected() const { return calls_rejected_; }

 private:
  void advance(runtime::TimePoint now);
  void trip(runtime::TimePoint now, Reason reason);
  void move_to(State to, Reason reason, runtime::TimePoint now);
  void record_closed_outcome(runtime::TimePoint now, bool failed);
  void release_probe();

  std::string name_;
  CircuitBreakerOptions options_;
  Observer observer_;
  State state_ = State::kClosed;

  // kClosed
  uint32_t consecutive_failures_ = 0;
  SlidingWindowCounter calls_;
  SlidingWindowCounter failures_;
  // kOpen
  runtime::TimePoint open_until_{};
  runtime::Duration current_open_duration_{};
  uint32_t trips_in_a_row_ = 0;  // trips since the breaker last closed; drives the growth
  // kHalfOpen
  uint32_t probes_in_flight_ = 0;
  uint32_t probe_successes_ = 0;

  uint64_t times_opened_ = 0;
  uint64_t times_half_opened_ = 0;
  uint64_t times_closed_ = 0;
  uint64_t calls_rejected_ = 0;
};

std::string_view circuit_state_name(CircuitBreaker::State state);

}  // namespace meshrpc::resilience
