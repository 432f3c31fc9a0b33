#include "meshrpc/resilience/hedging_policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

namespace meshrpc::resilience {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

HedgingPolicy percentile_policy(PercentileDelay delay = {}) {
  HedgingPolicy policy;
  policy.delay = delay;
  return policy;
}

TEST(HedgingPolicy, DefaultsAreOneHedgeAtP95WithinOneMsToOneSecondAndFivePercentExtraLoad) {
  HedgingPolicy policy;
  EXPECT_EQ(policy.max_attempts, 2);
  ASSERT_TRUE(std::holds_alternative<PercentileDelay>(policy.delay));
  const auto& delay = std::get<PercentileDelay>(policy.delay);
  EXPECT_DOUBLE_EQ(delay.quantile, 0.95);
  EXPECT_EQ(delay.min_delay, milliseconds(1));
  EXPECT_EQ(delay.max_delay, seconds(1));
  EXPECT_DOUBLE_EQ(policy.max_extra_load, 0.05);
  EXPECT_EQ(policy.load_window, seconds(10));
}

struct IdempotencyCase {
  const char* name;
  Idempotency idempotency;
  bool may_hedge;
};

class HedgingIdempotency : public ::testing::TestWithParam<IdempotencyCase> {};

TEST_P(HedgingIdempotency, HedgesOnlyMethodsSafeToRunTwice) {
  EXPECT_EQ(may_hedge(GetParam().idempotency), GetParam().may_hedge);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HedgingIdempotency,
    ::testing::Values(IdempotencyCase{"UnknownIsNeverHedged", Idempotency::kUnknown, false},
                      IdempotencyCase{"IdempotentIsHedged", Idempotency::kIdempotent, true},
                      IdempotencyCase{"NoSideEffectsIsHedged", Idempotency::kNoSideEffects, true}),
    [](const ::testing::TestParamInfo<IdempotencyCase>& info) {
      return std::string(info.param.name);
    });

TEST(Hedger, FixedDelayIsTheGivenDurationWithOrWithoutSamples) {
  HedgingPolicy policy;
  policy.delay = milliseconds(30);
  Hedger hedger(policy);
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(30)));
  for (int i = 0; i < 300; ++i) hedger.record_latency(milliseconds(500));
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(30)));
}

TEST(Hedger, PercentileDelayIsNulloptUntilTwentySamples) {
  Hedger hedger(percentile_policy());
  for (size_t i = 1; i < Hedger::kMinLatencySamples; ++i) {
    hedger.record_latency(milliseconds(10));
    EXPECT_EQ(hedger.hedge_delay(), std::nullopt) << "after " << i << " samples";
  }
  hedger.record_latency(milliseconds(10));
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(10)));
}

// 1..100 ms in a scrambled order (37 is coprime with 100, so each value appears once).
void record_one_to_hundred_ms(Hedger& hedger) {
  for (int i = 0; i < 100; ++i) hedger.record_latency(milliseconds(i * 37 % 100 + 1));
}

struct QuantileCase {
  const char* name;
  double quantile;
  runtime::Duration expected;
};

class HedgerQuantile : public ::testing::TestWithParam<QuantileCase> {};

TEST_P(HedgerQuantile, IsTheNearestRankOfOneToHundredMs) {
  PercentileDelay delay;
  delay.quantile = GetParam().quantile;
  Hedger hedger(percentile_policy(delay));
  record_one_to_hundred_ms(hedger);
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(Table, HedgerQuantile,
                         ::testing::Values(QuantileCase{"P95", 0.95, milliseconds(95)},
                                           QuantileCase{"P99", 0.99, milliseconds(99)},
                                           QuantileCase{"P50", 0.50, milliseconds(50)},
                                           QuantileCase{"MaxAtOne", 1.0, milliseconds(100)},
                                           QuantileCase{"TinyIsMin", 1e-6, milliseconds(1)}),
                         [](const ::testing::TestParamInfo<QuantileCase>& info) {
                           return std::string(info.param.name);
                         });

struct ClampCase {
  const char* name;
  runtime::Duration sample;
  runtime::Duration expected;
};

class HedgerClamp : public ::testing::TestWithParam<ClampCase> {};

TEST_P(HedgerClamp, KeepsPercentileDelayWithinMinAndMax) {
  Hedger hedger(percentile_policy());  // [1 ms, 1 s]
  for (int i = 0; i < 50; ++i) hedger.record_latency(GetParam().sample);
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Table, HedgerClamp,
    ::testing::Values(ClampCase{"FastMethodIsRaisedToMinDelay", microseconds(100), milliseconds(1)},
                      ClampCase{"AtMinDelayIsKept", milliseconds(1), milliseconds(1)},
                      ClampCase{"InsideRangeIsKept", milliseconds(40), milliseconds(40)},
                      ClampCase{"AtMaxDelayIsKept", seconds(1), seconds(1)},
                      ClampCase{"SlowMethodIsCappedAtMaxDelay", seconds(30), seconds(1)},
                      ClampCase{"NegativeLatencyCountsAsZero", milliseconds(-5), milliseconds(1)}),
    [](const ::testing::TestParamInfo<ClampCase>& info) { return std::string(info.param.name); });

TEST(Hedger, PercentileDelayConvergesToTheRecentP95AfterLatencyShifts) {
  Hedger hedger(percentile_policy());
  for (size_t i = 0; i < Hedger::kLatencySampleCount; ++i) hedger.record_latency(milliseconds(10));
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(10)));
  // p95 of 256 samples is the 244th smallest: 12 slower samples (4.7%) do not move it, the
  // 13th does. Once the ring is refilled the old latency is forgotten entirely.
  for (int i = 0; i < 12; ++i) hedger.record_latency(milliseconds(80));
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(10)));
  hedger.record_latency(milliseconds(80));
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(80)));
  for (size_t i = 0; i < Hedger::kLatencySampleCount; ++i) hedger.record_latency(milliseconds(3));
  EXPECT_EQ(hedger.hedge_delay(), std::optional<runtime::Duration>(milliseconds(3)));
  EXPECT_EQ(hedger.latency_sample_count(), Hedger::kLatencySampleCount);
}

TEST(Hedger, ConvergesToP95OfAKnownSampleSetStreamedManyTimes) {
  Hedger hedger(percentile_policy());
  // 1..100 ms repeated: any 256 consecutive samples hold each value 2 or 3 times, so p95 is
  // within one value of 95 ms.
  for (int round = 0; round < 10; ++round) record_one_to_hundred_ms(hedger);
  const std::optional<runtime::Duration> delay = hedger.hedge_delay();
  ASSERT_TRUE(delay.has_value());
  EXPECT_GE(*delay, milliseconds(94));
  EXPECT_LE(*delay, milliseconds(96));
}

TEST(Hedger, DeniesHedgesUntilTwentyRequestsEarnOne) {
  Hedger hedger;
  runtime::TimePoint now{};
  for (int i = 0; i < 19; ++i) {
    hedger.record_request(now);
    EXPECT_FALSE(hedger.try_acquire_hedge(now)) << "after " << i + 1 << " requests";
  }
  hedger.record_request(now);
  EXPECT_TRUE(hedger.try_acquire_hedge(now));
  EXPECT_EQ(hedger.hedges_allowed(), 1u);
  EXPECT_EQ(hedger.hedges_denied(), 19u);
}

// Grants at most 5 hedges for 100 requests, then recovers once new requests arrive in a window
// the spent hedges have slid out of.
TEST(Hedger, ExtraLoadCapDeniesPastFivePercentAndRecoversAsTheWindowSlides) {
  Hedger hedger;
  runtime::TimePoint now{};
  for (int i = 0; i < 100; ++i) hedger.record_request(now);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hedger.try_acquire_hedge(now)) << "hedge " << i;
  EXPECT_FALSE(hedger.try_acquire_hedge(now));
  EXPECT_FALSE(hedger.try_acquire_hedge(now + seconds(9)));
  now += seconds(10);  // the first window's requests and hedges are forgotten
  EXPECT_FALSE(hedger.try_acquire_hedge(now));
  for (int i = 0; i < 100; ++i) hedger.record_request(now);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(hedger.try_acquire_hedge(now)) << "hedge " << i;
  EXPECT_FALSE(hedger.try_acquire_hedge(now));
  EXPECT_EQ(hedger.hedges_allowed(), 10u);
  EXPECT_EQ(hedger.hedges_denied(), 4u);
}

struct LoadCase {
  const char* name;
  double max_extra_load;
  int requests_per_second;
};

class HedgerSteadyLoad : public ::testing::TestWithParam<LoadCase> {};

// Every request wants a hedge; over a minute of steady traffic the granted share settles at
// max_extra_load.
TEST_P(HedgerSteadyLoad, GrantsMaxExtraLoadShareOfRequests) {
  const LoadCase& c = GetParam();
  HedgingPolicy policy;
  policy.max_extra_load = c.max_extra_load;
  Hedger hedger(policy);
  runtime::TimePoint now{};
  const runtime::Duration step = seconds(1) / c.requests_per_second;
  const int requests = c.requests_per_second * 60;
  int granted = 0;
  for (int i = 0; i < requests; ++i) {
    hedger.record_request(now);
    if (hedger.try_acquire_hedge(now)) ++granted;
    now += step;
  }
  const double fraction = static_cast<double>(granted) / requests;
  EXPECT_NEAR(fraction, c.max_extra_load, c.max_extra_load * 0.1) << granted << " of " << requests;
}

INSTANTIATE_TEST_SUITE_P(Table, HedgerSteadyLoad,
                         ::testing::Values(LoadCase{"FivePercentAt100PerSecond", 0.05, 100},
                                           LoadCase{"FivePercentAt1000PerSecond", 0.05, 1000},
                                           LoadCase{"TenPercentAt100PerSecond", 0.10, 100},
                                           LoadCase{"NoneAtZero", 0.0, 100}),
                         [](const ::testing::TestParamInfo<LoadCase>& info) {
                           return std::string(info.param.name);
                         });

struct InvalidCase {
  const char* name;
  std::function<void(HedgingPolicy&)> edit;
};

class HedgerInvalidPolicy : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(HedgerInvalidPolicy, IsRejectedAtConstruction) {
  HedgingPolicy policy;
  GetParam().edit(policy);
  EXPECT_THROW(Hedger{policy}, std::invalid_argument);
}

PercentileDelay& percentile(HedgingPolicy& policy) {
  return std::get<PercentileDelay>(policy.delay);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HedgerInvalidPolicy,
    ::testing::Values(
        InvalidCase{"ZeroAttempts", [](HedgingPolicy& p) { p.max_attempts = 0; }},
        InvalidCase{"SixAttempts", [](HedgingPolicy& p) { p.max_attempts = 6; }},
        InvalidCase{"NegativeFixedDelay", [](HedgingPolicy& p) { p.delay = milliseconds(-1); }},
        InvalidCase{"ZeroQuantile", [](HedgingPolicy& p) { percentile(p).quantile = 0.0; }},
        InvalidCase{"QuantileAboveOne", [](HedgingPolicy& p) { percentile(p).quantile = 1.5; }},
        InvalidCase{"NanQuantile",
                    [](HedgingPolicy& p) {
                      percentile(p).quantile = std::numeric_limits<double>::quiet_NaN();
                    }},
        InvalidCase{"NegativeMinDelay",
                    [](HedgingPolicy& p) { percentile(p).min_delay = milliseconds(-1); }},
        InvalidCase{"MinDelayAboveMaxDelay",
                    [](HedgingPolicy& p) { percentile(p).min_delay = seconds(2); }},
        InvalidCase{"NegativeExtraLoad", [](HedgingPolicy& p) { p.max_extra_load = -0.01; }},
        InvalidCase{"ExtraLoadAboveFour", [](HedgingPolicy& p) { p.max_extra_load = 4.5; }},
        InvalidCase{
            "NanExtraLoad",
            [](HedgingPolicy& p) { p.max_extra_load = std::numeric_limits<double>::quiet_NaN(); }},
        InvalidCase{"LoadWindowUnderTenNs",
                    [](HedgingPolicy& p) { p.load_window = runtime::Duration(5); }}),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return std::string(info.param.name); });

TEST(Hedger, AcceptsTheBoundaryPolicies) {
  HedgingPolicy policy;
  policy.max_attempts = kMaxHedgeAttempts;
  policy.max_extra_load = kMaxHedgeAttempts - 1;
  policy.delay = runtime::Duration::zero();
  EXPECT_NO_THROW(Hedger{policy});
  policy.max_attempts = 1;
  policy.delay = PercentileDelay{1.0, milliseconds(5), milliseconds(5)};
  EXPECT_NO_THROW(Hedger{policy});
}

}  // namespace
}  // namespace meshrpc::resilience
