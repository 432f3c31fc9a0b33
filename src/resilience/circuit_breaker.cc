#include "meshrpc/resilience/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace meshrpc::resilience {
namespace {

CircuitBreakerOptions validated(CircuitBreakerOptions options) {
  if (options.open_duration <= runtime::Duration::zero()) {
    throw std::invalid_argument("circuit breaker open_duration must be positive");
  }
  if (!(options.open_duration_multiplier >= 1.0)) {
    throw std::invalid_argument("circuit breaker open_duration_multiplier " +
                                std::to_string(options.open_duration_multiplier) + " is below 1");
  }
  if (options.half_open_probes == 0 || options.half_open_successes_to_close == 0) {
    throw std::invalid_argument(
        "circuit breaker half_open_probes and half_open_successes_to_close must be at least 1");
  }
  options.open_duration_max = std::max(options.open_duration_max, options.open_duration);
  return options;
}

int64_t whole_ms(runtime::Duration d) {
  return std::chrono::ceil<std::chrono::milliseconds>(d).count();
}

}  // namespace

bool counts_as_breaker_failure(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kResourceExhausted:
    case StatusCode::kInternal:
      return true;
    default:
      return false;
  }
}

std::string_view circuit_state_name(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerOptions options)
    : name_(std::move(name)),
      options_(validated(options)),
      calls_(options_.window),
      failures_(options_.window) {}

Status CircuitBreaker::allow(runtime::TimePoint now) {
  advance(now);
  switch (state_) {
    case State::kClosed:
      return Status::ok_status();
    case State::kOpen:
      ++calls_rejected_;
      return unavailable_error("circuit open for " + name_ + ": next probe in " +
                               std::to_string(whole_ms(open_until_ - now)) + " ms");
    case State::kHalfOpen:
      if (probes_in_flight_ < options_.half_open_probes) {
        ++probes_in_flight_;
        return Status::ok_status();
      }
      ++calls_rejected_;
      return unavailable_error(
          "circuit open for " + name_ + ": half-open with " + std::to_string(probes_in_flight_) +
          " probes in flight (half_open_probes " + std::to_string(options_.half_open_probes) + ")");
  }
  return Status::ok_status();
}

void CircuitBreaker::on_success(runtime::TimePoint now) {
  advance(now);
  if (state_ == State::kClosed) {
    record_closed_outcome(now, /*failed=*/false);
  } else if (state_ == State::kHalfOpen) {
    release_probe();
    if (++probe_successes_ >= options_.half_open_successes_to_close) {
      move_to(State::kClosed, Reason::kProbesSucceeded, now);
    }
  }
}

void CircuitBreaker::on_failure(runtime::TimePoint now) {
  advance(now);
  if (state_ == State::kClosed) {
    record_closed_outcome(now, /*failed=*/true);
  } else if (state_ == State::kHalfOpen) {
    release_probe();
    trip(now, Reason::kProbeFailed);
  }
}

void CircuitBreaker::on_cancelled(runtime::TimePoint now) {
  advance(now);
  if (state_ == State::kHalfOpen) release_probe();
}

CircuitBreaker::State CircuitBreaker::state(runtime::TimePoint now) {
  advance(now);
  return state_;
}

void CircuitBreaker::advance(runtime::TimePoint now) {
  if (state_ == State::kOpen && now >= open_until_) {
    move_to(State::kHalfOpen, Reason::kOpenDurationElapsed, now);
  }
}

void CircuitBreaker::record_closed_outcome(runtime::TimePoint now, bool failed) {
  calls_.add(now);
  if (!failed) {
    consecutive_failures_ = 0;
    return;
  }
  failures_.add(now);
  ++consecutive_failures_;
  if (options_.consecutive_failures > 0 && consecutive_failures_ >= options_.consecutive_failures) {
    trip(now, Reason::kConsecutiveFailures);
    return;
  }
  // Only a failure can raise the rate, so only a failure checks it.
  const int64_t calls = calls_.sum(now);
  if (calls >= options_.minimum_calls &&
      static_cast<double>(failures_.sum(now)) >=
          options_.failure_rate_threshold * static_cast<double>(calls)) {
    trip(now, Reason::kFailureRate);
  }
}

void CircuitBreaker::trip(runtime::TimePoint now, Reason reason) {
  ++trips_in_a_row_;
  // open_duration x multiplier^(trips - 1), computed in double so a long outage cannot
  // overflow before the cap applies.
  const double base_ns = static_cast<double>(options_.open_duration.count());
  const double grown_ns = base_ns * std::pow(options_.open_duration_multiplier,
                                             static_cast<double>(trips_in_a_row_ - 1));
  const double max_ns = static_cast<double>(options_.open_duration_max.count());
  current_open_duration_ = grown_ns >= max_ns ? options_.open_duration_max
                                              : runtime::Duration(static_cast<int64_t>(grown_ns));
  open_until_ = now + current_open_duration_;
  move_to(State::kOpen, reason, now);
}

void CircuitBreaker::move_to(State to, Reason reason, runtime::TimePoint now) {
  const Transition transition{state_, to, reason, now,
                              to == State::kOpen ? current_open_duration_ : runtime::Duration{}};
  state_ = to;
  switch (to) {
    case State::kOpen:
      ++times_opened_;
      break;
    case State::kHalfOpen:
      ++times_half_opened_;
      probes_in_flight_ = 0;
      probe_successes_ = 0;
      break;
    case State::kClosed:
      ++times_closed_;
      trips_in_a_row_ = 0;
      break;
  }
  // Every state starts from fresh evidence: failures seen before a trip must not re-trip the
  // breaker as soon as it closes.
  consecutive_failures_ = 0;
  calls_.clear();
  failures_.clear();
  if (observer_) observer_(name_, transition);
}

void CircuitBreaker::release_probe() {
  if (probes_in_flight_ > 0) --probes_in_flight_;
}

}  // namespace meshrpc::resilience
