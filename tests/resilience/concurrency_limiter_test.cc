#include "meshrpc/resilience/concurrency_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

namespace meshrpc::resilience {
namespace {

using namespace std::chrono_literals;
using runtime::Duration;
using runtime::TimePoint;

// How long a call takes, given the calls in flight once it is admitted (itself included).
using LatencyModel = std::function<Duration(size_t in_flight)>;

// A server with `cores` workers and `service` time per call, shared among the calls in
// flight: no queueing up to `cores` calls, then latency grows with the queue.
LatencyModel fixed_capacity(size_t cores, Duration service) {
  return [=](size_t in_flight) {
    const double load = std::max(1.0, static_cast<double>(in_flight) / static_cast<double>(cores));
    return std::chrono::duration_cast<Duration>(service * load);
  };
}

// The same latency however many calls run: nothing queues.
LatencyModel constant(Duration latency) {
  return [=](size_t) { return latency; };
}

// Offers calls to a limiter in virtual time, 1 ms steps, and completes the admitted ones when
// their latency has passed: a server under a synthetic load.
class LoadDriver {
 public:
  explicit LoadDriver(AdaptiveLimitOptions options = {}) : limiter_(options) {}

  // For `duration`, offers `calls_per_ms` calls per millisecond (fractions accumulate); each
  // admitted call succeeds after model(in-flight).
  void run(Duration duration, double calls_per_ms, const LatencyModel& model) {
    const TimePoint end = now_ + duration;
    while (now_ < end) {
      complete_until(now_);
      offered_ += calls_per_ms;
      for (; offered_ >= 1.0; offered_ -= 1.0) {
        if (!limiter_.try_acquire()) {
          ++shed_;
          continue;
        }
        const Duration latency = model(limiter_.in_flight());
        pending_.emplace(now_ + latency, latency);
        admitted_latencies_.push_back(latency);
      }
      now_ += 1ms;
      lowest_limit_ = std::min(lowest_limit_, limiter_.limit());
      highest_limit_ = std::max(highest_limit_, limiter_.limit());
    }
  }

  // Forgets what was observed so far (limit extremes, latencies, shed count).
  void reset_observations() {
    lowest_limit_ = highest_limit_ = limiter_.limit();
    admitted_latencies_.clear();
    shed_ = 0;
  }

  Duration mean_admitted_latency() const {
    if (admitted_latencies_.empty()) return Duration::zero();
    Duration total{};
    for (Duration latency : admitted_latencies_) total += latency;
    return total / static_cast<int64_t>(admitted_latencies_.size());
  }

  AdaptiveConcurrencyLimiter& limiter() { return limiter_; }
  size_t lowest_limit() const { return lowest_limit_; }
  size_t highest_limit() const { return highest_limit_; }
  uint64_t shed() const { return shed_; }

 private:
  void complete_until(TimePoint t) {
    while (!pending_.empty() && pending_.begin()->first <= t) {
      auto [at, latency] = *pending_.begin();
      pending_.erase(pending_.begin());
      limiter_.on_success(at, latency);
    }
  }

  AdaptiveConcurrencyLimiter limiter_;
  TimePoint now_{};
  double offered_ = 0;
  std::multimap<TimePoint, Duration> pending_;
  std::vector<Duration> admitted_latencies_;
  size_t lowest_limit_ = std::numeric_limits<size_t>::max();
  size_t highest_limit_ = 0;
  uint64_t shed_ = 0;
};

TEST(AdaptiveConcurrencyLimiter, DefaultsAreDocumented) {
  AdaptiveLimitOptions options;
  EXPECT_EQ(options.initial_limit, 20u);
  EXPECT_EQ(options.min_limit, 8u);
  EXPECT_EQ(options.max_limit, 1000u);
  EXPECT_DOUBLE_EQ(options.tolerance, 1.5);
  EXPECT_DOUBLE_EQ(options.min_gradient, 0.5);
  EXPECT_DOUBLE_EQ(options.smoothing, 0.5);
  EXPECT_EQ(options.window, 100ms);
  EXPECT_EQ(options.min_window_samples, 20u);
  EXPECT_EQ(options.latency_floor, 100us);
  EXPECT_EQ(options.probe_interval, 10s);
  EXPECT_DOUBLE_EQ(options.probe_ratio, 0.25);
  AdaptiveConcurrencyLimiter limiter;
  EXPECT_EQ(limiter.limit(), 20u);
  EXPECT_EQ(limiter.no_load_latency(), Duration::zero());
}

struct InvalidCase {
  const char* name;
  std::function<void(AdaptiveLimitOptions&)> change;
};

class AdaptiveConcurrencyLimiterInvalid : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(AdaptiveConcurrencyLimiterInvalid, Throws) {
  AdaptiveLimitOptions options;
  GetParam().change(options);
  EXPECT_THROW(AdaptiveConcurrencyLimiter{options}, std::invalid_argument);
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

INSTANTIATE_TEST_SUITE_P(
    Options, AdaptiveConcurrencyLimiterInvalid,
    ::testing::Values(InvalidCase{"MinLimitZero", [](auto& o) { o.min_limit = 0; }},
                      InvalidCase{"InitialBelowMin", [](auto& o) { o.initial_limit = 4; }},
                      InvalidCase{"InitialAboveMax", [](auto& o) { o.initial_limit = 2000; }},
                      InvalidCase{"MaxBelowMin", [](auto& o) { o.max_limit = 4; }},
                      InvalidCase{"ToleranceBelowOne", [](auto& o) { o.tolerance = 0.9; }},
                      InvalidCase{"ToleranceNaN", [](auto& o) { o.tolerance = kNaN; }},
                      InvalidCase{"ToleranceHuge", [](auto& o) { o.tolerance = 1e6; }},
                      InvalidCase{"MinGradientZero", [](auto& o) { o.min_gradient = 0.0; }},
                      InvalidCase{"MinGradientAboveOne", [](auto& o) { o.min_gradient = 1.5; }},
                      InvalidCase{"SmoothingZero", [](auto& o) { o.smoothing = 0.0; }},
                      InvalidCase{"SmoothingNaN", [](auto& o) { o.smoothing = kNaN; }},
                      InvalidCase{"ProbeRatioZero", [](auto& o) { o.probe_ratio = 0.0; }},
                      InvalidCase{"ProbeRatioAboveOne", [](auto& o) { o.probe_ratio = 1.01; }},
                      InvalidCase{"WindowZero", [](auto& o) { o.window = Duration::zero(); }},
                      InvalidCase{"WindowSamplesZero", [](auto& o) { o.min_window_samples = 0; }},
                      InvalidCase{"NegativeLatencyFloor", [](auto& o) { o.latency_floor = -1us; }},
                      InvalidCase{"ProbeIntervalZero",
                                  [](auto& o) { o.probe_interval = Duration::zero(); }}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(AdaptiveConcurrencyLimiter, EdgeOptionsAreAccepted) {
  AdaptiveLimitOptions options;
  options.min_limit = options.initial_limit = options.max_limit = 1;
  options.tolerance = 1.0;
  options.min_gradient = options.smoothing = options.probe_ratio = 1.0;
  options.latency_floor = Duration::zero();
  options.min_window_samples = 1;
  EXPECT_NO_THROW(AdaptiveConcurrencyLimiter{options});
}

TEST(AdaptiveConcurrencyLimiter, ShedsPastTheLimitAndAdmitsAgainOnRelease) {
  AdaptiveLimitOptions options;
  options.min_limit = 1;
  options.initial_limit = 3;
  AdaptiveConcurrencyLimiter limiter(options);
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_FALSE(limiter.try_acquire());
  EXPECT_EQ(limiter.in_flight(), 3u);
  EXPECT_EQ(limiter.calls_shed(), 1u);
  limiter.on_failure(TimePoint{} + 1ms, 1ms);
  EXPECT_EQ(limiter.in_flight(), 2u);
  EXPECT_TRUE(limiter.try_acquire());
  EXPECT_EQ(limiter.calls_admitted(), 4u);
}

// A window needs both its samples and its duration before the limit moves.
TEST(AdaptiveConcurrencyLimiter, LimitMovesOnlyAfterAFullWindow) {
  AdaptiveConcurrencyLimiter limiter;
  TimePoint now{};
  for (int i = 0; i < 19; ++i) {  // too few samples, however long it takes
    ASSERT_TRUE(limiter.try_acquire());
    now += 50ms;
    limiter.on_success(now, 10ms);
  }
  EXPECT_EQ(limiter.windows(), 0u);
  EXPECT_EQ(limiter.no_load_latency(), Duration::zero());
  ASSERT_TRUE(limiter.try_acquire());
  limiter.on_success(now, 10ms);
  EXPECT_EQ(limiter.windows(), 1u);
  EXPECT_EQ(limiter.no_load_latency(), 10ms);
}

// Nothing queues, so latency stays at its no-load level however many calls run: the limit
// climbs to max_limit and never dips on the way.
TEST(AdaptiveConcurrencyLimiter, GrowsToMaxWhileLatencyStaysAtNoLoad) {
  LoadDriver driver;
  driver.run(5s, 200.0, constant(10ms));  // 2,000 calls would be in flight without a limit
  EXPECT_EQ(driver.limiter().limit(), 1000u);
  EXPECT_EQ(driver.limiter().no_load_latency(), 10ms);
}

TEST(AdaptiveConcurrencyLimiter, GrowthIsGradualNotAJump) {
  LoadDriver driver;
  driver.run(150ms, 200.0, constant(10ms));  // one window and its probe
  EXPECT_LE(driver.limiter().limit(), 30u);
  EXPECT_GT(driver.shed(), 0u);
}

// 8 cores, 10 ms per call, 5x more calls offered than they can serve: the limit settles
// near where latency is tolerance (1.5) x no-load, i.e. about 12 calls, instead of letting
// thousands queue.
TEST(AdaptiveConcurrencyLimiter, SettlesNearCapacityTimesToleranceUnderOverload) {
  LoadDriver driver;
  driver.run(2s, 4.0, fixed_capacity(8, 10ms));
  driver.reset_observations();
  driver.run(5s, 4.0, fixed_capacity(8, 10ms));
  EXPECT_GE(driver.lowest_limit(), 8u);
  EXPECT_LE(driver.highest_limit(), 16u);
  EXPECT_NEAR(static_cast<double>(driver.limiter().no_load_latency().count()),
              static_cast<double>(Duration(10ms).count()), 1e6);
  EXPECT_LE(driver.mean_admitted_latency(), 17ms);
  EXPECT_GT(driver.shed(), 0u);
}

// A limit set for a fast service shrinks once the service's capacity drops and calls queue.
TEST(AdaptiveConcurrencyLimiter, ShrinksWhenLatencyRisesFromQueueing) {
  LoadDriver driver;
  driver.run(5s, 50.0, fixed_capacity(400, 10ms));
  const size_t before = driver.limiter().limit();
  ASSERT_GE(before, 400u);
  driver.run(3s, 50.0, fixed_capacity(20, 10ms));  // the same load, 1/20 of the capacity
  EXPECT_LE(driver.limiter().limit(), 40u);
  EXPECT_GE(driver.limiter().limit(), 20u);
}

// When the overload ends (capacity is back) the limit climbs back up.
TEST(AdaptiveConcurrencyLimiter, RecoversAfterOverloadEnds) {
  LoadDriver driver;
  driver.run(3s, 20.0, fixed_capacity(8, 10ms));
  ASSERT_LE(driver.limiter().limit(), 16u);
  driver.run(3s, 20.0, fixed_capacity(400, 10ms));
  EXPECT_GE(driver.limiter().limit(), 190u);  // 20 calls/ms x 10 ms = 200 wanted
}

// Offered load far below the limit: no evidence that a higher limit is safe, so it holds.
TEST(AdaptiveConcurrencyLimiter, DoesNotGrowWhenTheLoadNeverNearsTheLimit) {
  LoadDriver driver;
  driver.run(5s, 0.5, constant(10ms));  // ~5 calls in flight, limit 20
  EXPECT_EQ(driver.limiter().limit(), 20u);
  EXPECT_EQ(driver.shed(), 0u);
}

// Sustained overload for a minute: the periodic probes keep measuring the true no-load
// latency, so the estimate does not drift up with the queue (and the limit with it).
TEST(AdaptiveConcurrencyLimiter, NoLoadEstimateDoesNotDriftUnderSustainedOverload) {
  LoadDriver driver;
  driver.run(2s, 4.0, fixed_capacity(8, 10ms));
  driver.reset_observations();
  driver.run(60s, 4.0, fixed_capacity(8, 10ms));
  EXPECT_GE(driver.limiter().probes(), 6u);
  EXPECT_LE(driver.limiter().no_load_latency(), 11ms);
  EXPECT_LE(driver.highest_limit(), 16u);
  EXPECT_LE(driver.mean_admitted_latency(), 17ms);
}

// The server starts under overload, so its first estimate includes a queue. The probe right
// after the first window cuts most of it out; since that estimate fell a lot, another probe
// follows a second later and finds the true no-load latency.
TEST(AdaptiveConcurrencyLimiter, ProbesCorrectAnEstimateTakenUnderLoad) {
  AdaptiveLimitOptions options;
  options.initial_limit = 40;  // 5x the 8 cores: the first window sees ~40 ms, not 10 ms
  LoadDriver driver(options);
  driver.run(400ms, 10.0, fixed_capacity(8, 10ms));
  EXPECT_EQ(driver.limiter().probes(), 1u);
  EXPECT_LE(driver.limiter().no_load_latency(), 16ms);
  driver.run(2600ms, 10.0, fixed_capacity(8, 10ms));
  EXPECT_GE(driver.limiter().probes(), 2u);
  EXPECT_LE(driver.limiter().no_load_latency(), 10500us);
  EXPECT_LE(driver.limiter().limit(), 16u);
}

// The service became 4x slower for good (a slower dependency), not from queueing. At first
// that looks like queueing and the limit drops; the next probe re-learns the no-load latency
// and the limit grows back.
TEST(AdaptiveConcurrencyLimiter, ReLearnsASlowerNoLoadLatencyAtTheNextProbe) {
  LoadDriver driver;
  driver.run(3s, 20.0, constant(10ms));
  ASSERT_GE(driver.limiter().limit(), 190u);
  driver.run(2s, 20.0, constant(40ms));
  EXPECT_EQ(driver.limiter().limit(), 8u);
  driver.run(15s, 20.0, constant(40ms));
  EXPECT_EQ(driver.limiter().no_load_latency(), 40ms);
  EXPECT_GE(driver.limiter().limit(), 700u);  // 20 calls/ms x 40 ms = 800 wanted
}

// Reports one call at a time, every 5 ms, until a window has ended: `failures_per_ten` of
// every ten calls fail after `failure_latency`, the others succeed after `success_latency`.
void run_window(AdaptiveConcurrencyLimiter& limiter, TimePoint& now, Duration success_latency,
                Duration failure_latency, int failures_per_ten) {
  const uint64_t windows = limiter.windows();
  for (int i = 0; limiter.windows() == windows; ++i) {
    ASSERT_TRUE(limiter.try_acquire());
    now += 5ms;
    if (i % 10 < failures_per_ten) {
      limiter.on_failure(now, failure_latency);
    } else {
      limiter.on_success(now, success_latency);
    }
  }
}

// The first window sets the no-load latency and starts a probe; the probe's window confirms
// it. The limit is back at its initial value, no probe is due for 10 s.
void establish_no_load(AdaptiveConcurrencyLimiter& limiter, TimePoint& now, Duration latency) {
  run_window(limiter, now, latency, 0ms, 0);
  ASSERT_TRUE(limiter.probing());
  run_window(limiter, now, latency, 0ms, 0);
  ASSERT_FALSE(limiter.probing());
  ASSERT_EQ(limiter.no_load_latency(), latency);
}

// Failures that take long (handlers timing out) count their time, so they cut the limit like
// queueing does.
TEST(AdaptiveConcurrencyLimiter, SlowFailuresCutTheLimit) {
  AdaptiveConcurrencyLimiter limiter;
  TimePoint now{};
  establish_no_load(limiter, now, 10ms);
  ASSERT_EQ(limiter.limit(), 20u);
  run_window(limiter, now, 10ms, 100ms, 5);  // half the calls time out after 100 ms
  EXPECT_EQ(limiter.limit(), 15u);           // gradient 0.5 (the floor), smoothed half way
  EXPECT_EQ(limiter.no_load_latency(), 10ms);
}

// Failures that end at once (a dependency refusing) neither make the server look faster nor
// slower: the no-load latency stays that of served calls, and the limit holds.
TEST(AdaptiveConcurrencyLimiter, FastFailuresNeitherRaiseNorLowerLatency) {
  AdaptiveConcurrencyLimiter limiter;
  TimePoint now{};
  for (int round = 0; round < 20; ++round) run_window(limiter, now, 10ms, 10us, 5);
  EXPECT_GE(limiter.no_load_latency(), 10ms);
  EXPECT_LE(limiter.no_load_latency(), 10ms + 200us);
  EXPECT_EQ(limiter.limit(), 20u);  // never more than 1 in flight: no growth either
}

TEST(AdaptiveConcurrencyLimiter, AllFastFailuresHoldTheLimitAllSlowOnesCutIt) {
  AdaptiveConcurrencyLimiter limiter;
  TimePoint now{};
  establish_no_load(limiter, now, 10ms);
  run_window(limiter, now, 0ms, 1ms, 10);
  EXPECT_EQ(limiter.limit(), 20u);
  run_window(limiter, now, 0ms, 1s, 10);
  EXPECT_EQ(limiter.limit(), 15u);
}

// With no latency floor, calls that take no time at all (as in a simulation) still leave a
// valid limit and a usable no-load latency.
TEST(AdaptiveConcurrencyLimiter, ZeroLatenciesWithoutAFloorKeepTheLimitValid) {
  AdaptiveLimitOptions options;
  options.latency_floor = Duration::zero();
  LoadDriver driver(options);
  driver.run(2s, 50.0, constant(Duration::zero()));
  EXPECT_GE(driver.limiter().limit(), 8u);
  EXPECT_LE(driver.limiter().limit(), 1000u);
  EXPECT_EQ(driver.limiter().no_load_latency(), 1ns);
}

// Random latencies, outcomes and loads, with tight bounds: the limit never leaves
// [min_limit, max_limit] and in-flight never exceeds the limit it was admitted under.
TEST(AdaptiveConcurrencyLimiter, LimitStaysWithinBoundsUnderRandomSamples) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 random(seed);
    AdaptiveLimitOptions options;
    options.min_limit = 5;
    options.initial_limit = 10;
    options.max_limit = 40;
    options.min_window_samples = 5;
    options.window = 10ms;
    options.probe_interval = 500ms;
    AdaptiveConcurrencyLimiter limiter(options);
    std::multimap<TimePoint, std::pair<Duration, bool>> pending;
    TimePoint now{};
    for (int step = 0; step < 20'000; ++step) {
      while (!pending.empty() && pending.begin()->first <= now) {
        auto [at, sample] = *pending.begin();
        pending.erase(pending.begin());
        sample.second ? limiter.on_success(at, sample.first) : limiter.on_failure(at, sample.first);
        ASSERT_GE(limiter.limit(), 5u) << "seed " << seed;
        ASSERT_LE(limiter.limit(), 40u) << "seed " << seed;
      }
      const int offered = static_cast<int>(random() % 8);
      for (int i = 0; i < offered; ++i) {
        if (!limiter.try_acquire()) continue;
        ASSERT_LE(limiter.in_flight(), limiter.limit()) << "seed " << seed;
        const Duration latency = std::chrono::microseconds(random() % 200'000);
        pending.emplace(now + latency, std::make_pair(latency, random() % 4 != 0));
      }
      now += 1ms;
    }
  }
}

}  // namespace
}  // namespace meshrpc::resilience
