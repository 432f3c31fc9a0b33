#include "meshrpc/resilience/concurrency_limiter.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <string>
#include <utility>

namespace meshrpc::resilience {
namespace {

// A window spans at least this many no-load latencies, so that most calls ending in it were
// admitted under the limit the previous window set, and a change is judged by its effect.
constexpr int kNoLoadLatenciesPerWindow = 4;
// A probe waits at most this many windows for the calls in flight to drain to its limit.
// Calls still running after that are a long tail (streams, long polls), not a queue that a
// lower limit empties; the probe measures anyway rather than holding the limit down.
constexpr int kMaxDrainWindows = 10;
// A probe that finds the no-load latency more than 1/10 below the estimate probes again
// after 10 windows (1 s by default) rather than probe_interval; see close_window.
constexpr int kReprobeDrop = 10;
constexpr int kReprobeWindows = 10;
// Tolerances beyond this accept latency 100 x no-load: no limit at all, a typo.
constexpr double kMaxTolerance = 100.0;

void require(bool valid, const std::string& what) {
  if (!valid) throw std::invalid_argument("adaptive concurrency limit: " + what);
}

bool in_unit_interval(double value) { return value > 0.0 && value <= 1.0; }  // false for NaN

AdaptiveLimitOptions validated(AdaptiveLimitOptions o) {
  require(o.min_limit >= 1, "min_limit 0 would admit no call and never measure again");
  require(o.min_limit <= o.initial_limit && o.initial_limit <= o.max_limit,
          "limits " + std::to_string(o.min_limit) + " <= " + std::to_string(o.initial_limit) +
              " <= " + std::to_string(o.max_limit) + " are not min <= initial <= max");
  require(o.tolerance >= 1.0 && o.tolerance <= kMaxTolerance,
          "tolerance " + std::to_string(o.tolerance) + " is not in [1, 100]");
  require(in_unit_interval(o.min_gradient),
          "min_gradient " + std::to_string(o.min_gradient) + " is not in (0, 1]");
  require(in_unit_interval(o.smoothing),
          "smoothing " + std::to_string(o.smoothing) + " is not in (0, 1]");
  require(in_unit_interval(o.probe_ratio),
          "probe_ratio " + std::to_string(o.probe_ratio) + " is not in (0, 1]");
  require(o.window > runtime::Duration::zero(),
          "window " + std::to_string(o.window.count()) + " ns is not positive");
  require(o.min_window_samples >= 1, "min_window_samples is 0");
  require(o.latency_floor >= runtime::Duration::zero(),
          "latency_floor " + std::to_string(o.latency_floor.count()) + " ns is negative");
  require(o.probe_interval > runtime::Duration::zero(),
          "probe_interval " + std::to_string(o.probe_interval.count()) + " ns is not positive");
  return o;
}

}  // namespace

AdaptiveConcurrencyLimiter::AdaptiveConcurrencyLimiter(AdaptiveLimitOptions options)
    : options_(validated(options)), limit_(static_cast<double>(options_.initial_limit)) {}

bool AdaptiveConcurrencyLimiter::try_acquire() {
  if (in_flight_ >= limit()) {
    ++calls_shed_;
    return false;
  }
  ++in_flight_;
  ++calls_admitted_;
  window_peak_in_flight_ = std::max(window_peak_in_flight_, in_flight_);
  return true;
}

void AdaptiveConcurrencyLimiter::on_success(runtime::TimePoint now, runtime::Duration latency) {
  // At least 1 ns even with a zero floor: the no-load latency divides the gradient, and zero
  // marks it unknown.
  const auto floor = static_cast<double>(std::max<int64_t>(options_.latency_floor.count(), 1));
  record(now, std::max(static_cast<double>(latency.count()), floor), true);
}

void AdaptiveConcurrencyLimiter::on_failure(runtime::TimePoint now, runtime::Duration latency) {
  record(now, std::max(static_cast<double>(latency.count()), 0.0), false);
}

void AdaptiveConcurrencyLimiter::record(runtime::TimePoint now, double latency_ns, bool succeeded) {
  assert(in_flight_ > 0 && "a completion without an admitted call");
  if (in_flight_ > 0) --in_flight_;
  if (phase_ == Phase::kProbeDraining) {
    // Calls admitted under the old limit say nothing about the no-load latency.
    finish_draining_if_drained(now);
    return;
  }
  if (probe_skips_ > 0) {
    --probe_skips_;
    return;
  }
  if (window_successes_ + window_failures_ == 0) window_start_ = now;
  if (succeeded) {
    ++window_successes_;
    window_success_ns_ += latency_ns;
  } else {
    ++window_failures_;
    window_failure_ns_ += latency_ns;
  }
  if (window_successes_ + window_failures_ >= options_.min_window_samples &&
      now - window_start_ >= window_length()) {
    close_window(now);
  }
}

runtime::Duration AdaptiveConcurrencyLimiter::window_length() const {
  return std::max(options_.window, kNoLoadLatenciesPerWindow * no_load_);
}

void AdaptiveConcurrencyLimiter::close_window(runtime::TimePoint now) {
  ++windows_;
  if (phase_ == Phase::kProbeMeasuring) {
    finish_probe(now);
  } else {
    const bool first_estimate = no_load_ == runtime::Duration::zero();
    update_limit();
    // The first estimate is re-measured at once: it may have been taken under load.
    if (first_estimate) next_probe_ = now;
    if (no_load_ > runtime::Duration::zero() && now >= next_probe_) start_probe(now);
  }
  reset_window();
}

void AdaptiveConcurrencyLimiter::update_limit() {
  const double tolerance = options_.tolerance;
  double target = limit_;
  if (window_successes_ == 0) {
    // Nothing was served: no latency to judge by. Failures slow enough to be a queue (or
    // timeouts) still cut the limit.
    const double failure_ns = window_failure_ns_ / static_cast<double>(window_failures_);
    const auto no_load_ns = static_cast<double>(no_load_.count());
    if (no_load_ns > 0 && failure_ns > tolerance * no_load_ns) {
      target = limit_ * options_.min_gradient;
    }
  } else {
    const double latency_ns =
        (window_success_ns_ + window_failure_ns_) / static_cast<double>(window_successes_);
    if (no_load_ == runtime::Duration::zero() ||
        latency_ns < static_cast<double>(no_load_.count())) {
      no_load_ = runtime::Duration(static_cast<int64_t>(latency_ns));
    }
    const double gradient =
        std::clamp(tolerance * static_cast<double>(no_load_.count()) / latency_ns,
                   options_.min_gradient, tolerance);
    target = limit_ * gradient;
    // Growth needs evidence: the load must have come near the limit it would raise.
    if (target > limit_ && static_cast<double>(window_peak_in_flight_) < limit_ / 2) {
      target = limit_;
    }
  }
  set_limit(limit_ + options_.smoothing * (target - limit_));
}

void AdaptiveConcurrencyLimiter::start_probe(runtime::TimePoint now) {
  ++probes_;
  limit_before_probe_ = limit_;
  set_limit(limit_ * options_.probe_ratio);
  phase_ = Phase::kProbeDraining;
  probe_started_ = now;
  finish_draining_if_drained(now);
}

void AdaptiveConcurrencyLimiter::finish_probe(runtime::TimePoint now) {
  phase_ = Phase::kNormal;
  set_limit(limit_before_probe_);
  next_probe_ = now + options_.probe_interval;
  if (window_successes_ == 0) return;  // nothing measured: keep the estimate
  const auto measured = runtime::Duration(static_cast<int64_t>(
      (window_success_ns_ + window_failure_ns_) / static_cast<double>(window_successes_)));
  const runtime::Duration previous = std::exchange(no_load_, measured);
  if (measured < previous) {
    // The limit was settled for latency near tolerance x the old estimate; for the new one
    // it is too high by about their ratio: one gradient step, bounded like any other.
    const double ratio =
        static_cast<double>(measured.count()) / static_cast<double>(previous.count());
    set_limit(limit_ * std::max(ratio, options_.min_gradient));
  }
  if (measured < previous - previous / kReprobeDrop) {
    // Well below: the old estimate had a queue in it (taken under load), and so did the limit
    // this probe was cut from. Probe again once the limit has settled on the new estimate.
    next_probe_ = now + std::min(options_.probe_interval, kReprobeWindows * window_length());
  }
}

void AdaptiveConcurrencyLimiter::finish_draining_if_drained(runtime::TimePoint now) {
  if (in_flight_ <= limit() || now - probe_started_ >= kMaxDrainWindows * window_length()) {
    phase_ = Phase::kProbeMeasuring;
    // The calls still in flight were admitted before the drain ended and may have queued;
    // most end first, so the next that many samples are left out of the measurement.
    probe_skips_ = in_flight_;
    reset_window();
  }
}

void AdaptiveConcurrencyLimiter::reset_window() {
  window_successes_ = 0;
  window_failures_ = 0;
  window_success_ns_ = 0;
  window_failure_ns_ = 0;
  window_peak_in_flight_ = in_flight_;
}

void AdaptiveConcurrencyLimiter::set_limit(double limit) {
  limit_ = std::clamp(limit, static_cast<double>(options_.min_limit),
                      static_cast<double>(options_.max_limit));
}

}  // namespace meshrpc::resilience
