#include "meshrpc/resilience/retry_budget.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace meshrpc::resilience {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Retries granted when `requests` are spread evenly over `duration` and every request asks
// for one retry right after it is sent.
int granted_retries(RetryBudget& budget, runtime::TimePoint& now, int requests,
                    runtime::Duration duration) {
  const runtime::Duration step = duration / requests;
  int granted = 0;
  for (int i = 0; i < requests; ++i) {
    budget.record_request(now);
    if (budget.try_acquire_retry(now)) ++granted;
    now += step;
  }
  return granted;
}

TEST(RetryBudget, DefaultsAreTwentyPercentOverTenSecondsWithTenPerSecondFloor) {
  RetryBudgetOptions options;
  EXPECT_DOUBLE_EQ(options.ratio, 0.2);
  EXPECT_EQ(options.window, seconds(10));
  EXPECT_DOUBLE_EQ(options.min_retries_per_second, 10.0);
}

TEST(RetryBudget, FreshBudgetHoldsTheFloorForOneWindow) {
  RetryBudget budget;
  EXPECT_DOUBLE_EQ(budget.available(runtime::TimePoint{}), 100.0);  // 10/s x 10 s
}

struct SteadyLoadCase {
  const char* name;
  RetryBudgetOptions options;
  int requests_per_second;
  double expected_retry_fraction;  // of requests, measured in steady state
};

class RetryBudgetSteadyLoad : public ::testing::TestWithParam<SteadyLoadCase> {};

// After a warm-up window, every request wants a retry; the granted share settles at
// ratio + floor / rate.
TEST_P(RetryBudgetSteadyLoad, GrantsRatioPlusFloorShareOfRequests) {
  const SteadyLoadCase& c = GetParam();
  RetryBudget budget(c.options);
  runtime::TimePoint now{};
  // Warm-up: fill the window with requests and spend the floor.
  granted_retries(budget, now, c.requests_per_second * 20, seconds(20));
  const int requests = c.requests_per_second * 60;
  const int granted = granted_retries(budget, now, requests, seconds(60));
  EXPECT_NEAR(static_cast<double>(granted) / requests, c.expected_retry_fraction,
              c.expected_retry_fraction * 0.05 + 0.002)
      << c.name;
  EXPECT_EQ(budget.retries_denied(),
            static_cast<uint64_t>(c.requests_per_second * 80) - budget.retries_allowed());
}

INSTANTIATE_TEST_SUITE_P(
    Table, RetryBudgetSteadyLoad,
    ::testing::Values(
        // 1,000 req/s: 20% from the ratio + 10/1000 from the floor.
        SteadyLoadCase{"default_1000rps", {}, 1000, 0.21},
        SteadyLoadCase{"default_10000rps", {}, 10000, 0.201},
        SteadyLoadCase{"ratio_only", {.ratio = 0.2, .min_retries_per_second = 0}, 1000, 0.2},
        SteadyLoadCase{"ten_percent", {.ratio = 0.1, .min_retries_per_second = 0}, 500, 0.1},
        // 5 req/s: the floor (10/s) covers every request's retry.
        SteadyLoadCase{"low_traffic_floor", {}, 5, 1.0}),
    [](const ::testing::TestParamInfo<SteadyLoadCase>& info) { return info.param.name; });

TEST(RetryBudget, FloorLetsAnIdleClientRetryAtTheMinimumRate) {
  RetryBudget budget;
  runtime::TimePoint now{};
  // No requests at all: 10 retries/s over a 10 s window, i.e. 100 per window.
  int granted = 0;
  for (int i = 0; i < 150; ++i) granted += budget.try_acquire_retry(now) ? 1 : 0;
  EXPECT_EQ(granted, 100);
  EXPECT_EQ(budget.retries_denied(), 50u);
}

TEST(RetryBudget, FiveRequestsAtTwentyPercentEarnExactlyOneRetry) {
  RetryBudget budget({.ratio = 0.2, .min_retries_per_second = 0});
  runtime::TimePoint now{};
  for (int i = 0; i < 4; ++i) budget.record_request(now);
  EXPECT_FALSE(budget.try_acquire_retry(now));
  budget.record_request(now);
  EXPECT_TRUE(budget.try_acquire_retry(now));
  EXPECT_FALSE(budget.try_acquire_retry(now));
  EXPECT_DOUBLE_EQ(budget.available(now), 0.0);
}

TEST(RetryBudget, ExhaustedBudgetRecoversAsTheWindowSlides) {
  RetryBudget budget;
  runtime::TimePoint now{};
  while (budget.try_acquire_retry(now)) {
  }
  EXPECT_EQ(budget.retries_allowed(), 100u);
  EXPECT_FALSE(budget.try_acquire_retry(now + seconds(5)));
  // The spent retries age out between 9 and 10 s later; the floor is back in full.
  EXPECT_FALSE(budget.try_acquire_retry(now + milliseconds(9999)));
  EXPECT_DOUBLE_EQ(budget.available(now + seconds(10)), 100.0);
  EXPECT_TRUE(budget.try_acquire_retry(now + seconds(10)));
}

TEST(RetryBudget, RequestsOutsideTheWindowEarnNothing) {
  RetryBudget budget({.ratio = 0.5, .min_retries_per_second = 0});
  runtime::TimePoint now{};
  for (int i = 0; i < 100; ++i) budget.record_request(now);
  EXPECT_DOUBLE_EQ(budget.available(now), 50.0);
  EXPECT_DOUBLE_EQ(budget.available(now + seconds(10)), 0.0);
  EXPECT_FALSE(budget.try_acquire_retry(now + seconds(10)));
}

TEST(RetryBudget, MemoryStaysFixedAfterAMillionRequests) {
  RetryBudget budget({.ratio = 0.2, .min_retries_per_second = 0});
  static_assert(sizeof(RetryBudget) < 512, "a budget is a fixed ring of counters");
  runtime::TimePoint now{};
  // 1,000,000 requests over 1,000 s: only the last window's 10,000 count.
  for (int i = 0; i < 1'000'000; ++i) {
    budget.record_request(now);
    now += milliseconds(1);
  }
  EXPECT_NEAR(budget.available(now - milliseconds(1)), 2000.0, 200.0);
}

TEST(RetryBudget, ZeroRatioAndZeroFloorNeverRetries) {
  RetryBudget budget({.ratio = 0, .min_retries_per_second = 0});
  runtime::TimePoint now{};
  for (int i = 0; i < 1000; ++i) budget.record_request(now);
  EXPECT_FALSE(budget.try_acquire_retry(now));
  EXPECT_EQ(budget.retries_denied(), 1u);
}

TEST(RetryBudget, RejectsOptionsNoBudgetCanHonour) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(RetryBudget({.ratio = -0.1}), std::invalid_argument);
  EXPECT_THROW(RetryBudget({.ratio = nan}), std::invalid_argument);
  EXPECT_THROW(RetryBudget({.min_retries_per_second = -1}), std::invalid_argument);
  EXPECT_THROW(RetryBudget({.window = runtime::Duration(5)}), std::invalid_argument);
}

}  // namespace
}  // namespace meshrpc::resilience
