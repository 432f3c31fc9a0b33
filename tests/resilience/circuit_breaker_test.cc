#include "meshrpc/resilience/circuit_breaker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::resilience {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using State = CircuitBreaker::State;
using Reason = CircuitBreaker::Reason;

constexpr char kEndpoint[] = "10.0.0.7:7000";

// A breaker driven by hand in virtual time, recording every transition.
class CircuitBreakerTest : public ::testing::Test {
 protected:
  explicit CircuitBreakerTest(CircuitBreakerOptions options = {}) : breaker_(kEndpoint, options) {
    breaker_.set_observer([this](std::string_view name, const CircuitBreaker::Transition& t) {
      EXPECT_EQ(name, kEndpoint);
      transitions_.push_back(t);
    });
  }

  // One admitted call that fails (or succeeds) at now_.
  void fail_call() {
    ASSERT_THAT(breaker_.allow(now_), IsOk());
    breaker_.on_failure(now_);
  }
  void succeed_call() {
    ASSERT_THAT(breaker_.allow(now_), IsOk());
    breaker_.on_success(now_);
  }
  void trip_by_consecutive_failures() {
    for (int i = 0; i < 5; ++i) fail_call();
    ASSERT_EQ(breaker_.state(now_), State::kOpen);
  }

  runtime::TimePoint now_ = runtime::TimePoint{} + seconds(1000);
  CircuitBreaker breaker_;
  std::vector<CircuitBreaker::Transition> transitions_;
};

TEST_F(CircuitBreakerTest, StartsClosedAndAdmitsCalls) {
  EXPECT_EQ(breaker_.state(now_), State::kClosed);
  EXPECT_THAT(breaker_.allow(now_), IsOk());
}

TEST_F(CircuitBreakerTest, OpensAfterFiveConsecutiveFailures) {
  for (int i = 0; i < 4; ++i) fail_call();
  EXPECT_EQ(breaker_.state(now_), State::kClosed);
  fail_call();
  EXPECT_EQ(breaker_.state(now_), State::kOpen);
  ASSERT_EQ(transitions_.size(), 1u);
  EXPECT_EQ(transitions_[0].from, State::kClosed);
  EXPECT_EQ(transitions_[0].to, State::kOpen);
  EXPECT_EQ(transitions_[0].reason, Reason::kConsecutiveFailures);
  EXPECT_EQ(transitions_[0].at, now_);
  EXPECT_EQ(transitions_[0].open_duration, seconds(5));
  EXPECT_EQ(breaker_.times_opened(), 1u);
}

TEST_F(CircuitBreakerTest, ASuccessResetsTheConsecutiveFailureCount) {
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) fail_call();
    succeed_call();
  }
  // 12 failures of 15 calls, but never 5 in a row and fewer than minimum_calls (20).
  EXPECT_EQ(breaker_.state(now_), State::kClosed);
}

TEST_F(CircuitBreakerTest, OpenFailsFastWithUnavailableNamingTheEndpoint) {
  trip_by_consecutive_failures();
  now_ += seconds(1);
  EXPECT_THAT(breaker_.allow(now_),
              StatusIs(StatusCode::kUnavailable, HasSubstr("circuit open for 10.0.0.7:7000")));
  EXPECT_THAT(breaker_.allow(now_), StatusIs(StatusCode::kUnavailable, HasSubstr("4000 ms")));
  EXPECT_EQ(breaker_.calls_rejected(), 2u);
}

TEST_F(CircuitBreakerTest, OpenIgnoresOutcomesOfCallsAdmittedBeforeTheTrip) {
  trip_by_consecutive_failures();
  breaker_.on_success(now_);
  breaker_.on_failure(now_);
  EXPECT_EQ(breaker_.state(now_), State::kOpen);
  EXPECT_EQ(transitions_.size(), 1u);
}

TEST_F(CircuitBreakerTest, HalfOpensWhenTheOpenDurationElapses) {
  trip_by_consecutive_failures();
  EXPECT_EQ(breaker_.state(now_ + seconds(5) - milliseconds(1)), State::kOpen);
  now_ += seconds(5);
  EXPECT_EQ(breaker_.state(now_), State::kHalfOpen);
  ASSERT_EQ(transitions_.size(), 2u);
  EXPECT_EQ(transitions_[1].reason, Reason::kOpenDurationElapsed);
  EXPECT_EQ(transitions_[1].at, now_);
  EXPECT_EQ(breaker_.times_half_opened(), 1u);
}

TEST_F(CircuitBreakerTest, HalfOpenAdmitsAtMostThreeConcurrentProbes) {
  trip_by_consecutive_failures();
  now_ += seconds(5);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(breaker_.allow(now_), IsOk()) << "probe " << i;
  EXPECT_THAT(breaker_.allow(now_),
              StatusIs(StatusCode::kUnavailable, HasSubstr("circuit open for 10.0.0.7:7000")));
  // A finished probe frees its slot.
  breaker_.on_success(now_);
  EXPECT_THAT(breaker_.allow(now_), IsOk());
  EXPECT_THAT(breaker_.allow(now_), StatusIs(StatusCode::kUnavailable));
}

TEST_F(CircuitBreakerTest, CancelledProbeFreesItsSlotWithoutAVerdict) {
  trip_by_consecutive_failures();
  now_ += seconds(5);
  for (int i = 0; i < 3; ++i) ASSERT_THAT(breaker_.allow(now_), IsOk());
  breaker_.on_cancelled(now_);
  EXPECT_EQ(breaker_.state(now_), State::kHalfOpen);
  EXPECT_THAT(breaker_.allow(now_), IsOk());
}

TEST_F(CircuitBreakerTest, ClosesAfterThreeProbeSuccesses) {
  trip_by_consecutive_failures();
  now_ += seconds(5);
  succeed_call();
  succeed_call();
  EXPECT_EQ(breaker_.state(now_), State::kHalfOpen);
  succeed_call();
  EXPECT_EQ(breaker_.state(now_), State::kClosed);
  EXPECT_EQ(transitions_.back().reason, Reason::kProbesSucceeded);
  EXPECT_EQ(breaker_.times_closed(), 1u);
  // Closed starts from fresh evidence: 4 failures do not re-trip it.
  for (int i = 0; i < 4; ++i) fail_call();
  EXPECT_EQ(breaker_.state(now_), State::kClosed);
}

TEST_F(CircuitBreakerTest, ProbeFailureReopensForTwiceAsLong) {
  trip_by_consecutive_failures();
  now_ += seconds(5);
  succeed_call();
  fail_call();
  EXPECT_EQ(breaker_.state(now_), State::kOpen);
  EXPECT_EQ(transitions_.back().reason, Reason::kProbeFailed);
  EXPECT_EQ(transitions_.back().open_duration, seconds(10));
  EXPECT_EQ(breaker_.state(now_ + seconds(10) - milliseconds(1)), State::kOpen);
  EXPECT_EQ(breaker_.state(now_ + seconds(10)), State::kHalfOpen);
}

TEST_F(CircuitBreakerTest, OpenDurationGrowsUpToTheCapThenResetsOnClose) {
  trip_by_consecutive_failures();
  const std::vector<seconds> expected = {seconds(10), seconds(20), seconds(40), seconds(60),
                                         seconds(60)};
  for (seconds want : expected) {
    now_ += transitions_.back().open_duration;
    ASSERT_EQ(breaker_.state(now_), State::kHalfOpen);
    fail_call();
    EXPECT_EQ(transitions_.back().open_duration, want);
  }
  now_ += seconds(60);
  for (int i = 0; i < 3; ++i) succeed_call();
  ASSERT_EQ(breaker_.state(now_), State::kClosed);
  trip_by_consecutive_failures();
  EXPECT_EQ(transitions_.back().open_duration, seconds(5));
}

TEST_F(CircuitBreakerTest, ReportsEveryTransitionInOrder) {
  trip_by_consecutive_failures();
  now_ += seconds(5);
  fail_call();
  now_ += seconds(10);
  for (int i = 0; i < 3; ++i) succeed_call();
  std::vector<std::pair<State, State>> seen;
  for (const auto& t : transitions_) seen.emplace_back(t.from, t.to);
  EXPECT_THAT(seen, ::testing::ElementsAre(std::pair(State::kClosed, State::kOpen),
                                           std::pair(State::kOpen, State::kHalfOpen),
                                           std::pair(State::kHalfOpen, State::kOpen),
                                           std::pair(State::kOpen, State::kHalfOpen),
                                           std::pair(State::kHalfOpen, State::kClosed)));
  EXPECT_EQ(breaker_.times_opened(), 2u);
  EXPECT_EQ(breaker_.times_half_opened(), 2u);
  EXPECT_EQ(breaker_.times_closed(), 1u);
}

// Failure-rate trigger, with the consecutive trigger off so only the rate can trip.
struct RateCase {
  const char* name;
  int successes;  // interleaved with the failures, never more than 4 failures in a row
  int failures;
  State expected;
};

class CircuitBreakerRate : public ::testing::TestWithParam<RateCase> {};

TEST_P(CircuitBreakerRate, TripsAtHalfFailuresOnlyOnceMinimumCallsSeen) {
  const RateCase& c = GetParam();
  CircuitBreaker breaker(kEndpoint, {.consecutive_failures = 0});
  runtime::TimePoint now{};
  int successes = c.successes;
  int failures = c.failures;
  while (successes + failures > 0) {
    ASSERT_THAT(breaker.allow(now), IsOk());
    // Successes first, so the rate is judged when the last failures arrive.
    if (successes > 0) {
      --successes;
      breaker.on_success(now);
    } else {
      --failures;
      breaker.on_failure(now);
    }
    now += milliseconds(10);
  }
  EXPECT_EQ(breaker.state(now), c.expected) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CircuitBreakerRate,
    ::testing::Values(RateCase{"all_fail_below_minimum_calls", 0, 19, State::kClosed},
                      RateCase{"all_fail_at_minimum_calls", 0, 20, State::kOpen},
                      RateCase{"half_fail_at_minimum_calls", 10, 10, State::kOpen},
                      RateCase{"just_under_half", 11, 9, State::kClosed},
                      RateCase{"under_half_many_calls", 60, 59, State::kClosed},
                      RateCase{"half_many_calls", 60, 60, State::kOpen}),
    [](const ::testing::TestParamInfo<RateCase>& info) { return info.param.name; });

TEST(CircuitBreaker, FailureRateForgetsFailuresOutsideTheWindow) {
  CircuitBreaker breaker(kEndpoint, {.consecutive_failures = 0});
  runtime::TimePoint now{};
  for (int i = 0; i < 19; ++i) {
    ASSERT_THAT(breaker.allow(now), IsOk());
    breaker.on_failure(now);
  }
  now += seconds(10);  // those 19 failures have left the 10 s window
  for (int i = 0; i < 19; ++i) {
    ASSERT_THAT(breaker.allow(now), IsOk());
    breaker.on_failure(now);
  }
  EXPECT_EQ(breaker.state(now), State::kClosed);
  breaker.on_failure(now);
  EXPECT_EQ(breaker.state(now), State::kOpen);
}

TEST(CircuitBreaker, GrowthCanBeDisabled) {
  CircuitBreaker breaker(kEndpoint, {.open_duration_multiplier = 1.0});
  runtime::TimePoint now{};
  for (int trip = 0; trip < 3; ++trip) {
    for (int i = 0; i < 5; ++i) breaker.on_failure(now);
    ASSERT_EQ(breaker.state(now), State::kOpen);
    ASSERT_EQ(breaker.state(now + seconds(5)), State::kHalfOpen);
    now += seconds(5);
  }
}

struct CodeCase {
  StatusCode code;
  bool counts;
};

TEST(CountsAsBreakerFailure, OnlyCodesAboutEndpointHealthCount) {
  const CodeCase cases[] = {
      {StatusCode::kOk, false},
      {StatusCode::kCancelled, false},
      {StatusCode::kUnknown, false},
      {StatusCode::kInvalidArgument, false},
      {StatusCode::kDeadlineExceeded, true},
      {StatusCode::kNotFound, false},
      {StatusCode::kAlreadyExists, false},
      {StatusCode::kPermissionDenied, false},
      {StatusCode::kResourceExhausted, true},
      {StatusCode::kFailedPrecondition, false},
      {StatusCode::kAborted, false},
      {StatusCode::kOutOfRange, false},
      {StatusCode::kUnimplemented, false},
      {StatusCode::kInternal, true},
      {StatusCode::kUnavailable, true},
      {StatusCode::kDataLoss, false},
      {StatusCode::kUnauthenticated, false},
  };
  static_assert(std::size(cases) == kStatusCodeCount);
  for (const CodeCase& c : cases) {
    const Status status = c.code == StatusCode::kOk ? Status() : Status(c.code, "x");
    EXPECT_EQ(counts_as_breaker_failure(status), c.counts) << c.code;
  }
}

TEST(CircuitBreaker, NamesItsStates) {
  EXPECT_EQ(circuit_state_name(State::kClosed), "closed");
  EXPECT_EQ(circuit_state_name(State::kOpen), "open");
  EXPECT_EQ(circuit_state_name(State::kHalfOpen), "half-open");
}

TEST(CircuitBreaker, RejectsOptionsThatCannotWork) {
  EXPECT_THROW(CircuitBreaker("a", {.open_duration = seconds(0)}), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker("a", {.open_duration_multiplier = 0.5}), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker("a", {.half_open_probes = 0}), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker("a", {.half_open_successes_to_close = 0}), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker("a", {.window = runtime::Duration(1)}), std::invalid_argument);
}

}  // namespace
}  // namespace meshrpc::resilience
