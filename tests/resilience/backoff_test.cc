#include "meshrpc/resilience/backoff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/random.h"

namespace meshrpc::resilience {
namespace {

using meshrpc::testing::IsOk;
using meshrpc::testing::StatusIs;
using runtime::Duration;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<Duration> first_delays(Backoff& backoff, runtime::Random& random, int count) {
  std::vector<Duration> delays;
  for (int i = 0; i < count; ++i) delays.push_back(backoff.next(random));
  return delays;
}

TEST(Backoff, FixedGivesInitialEveryTime) {
  runtime::Random random(1);
  Backoff backoff({BackoffKind::kFixed, milliseconds(500), seconds(2), 2.0});
  EXPECT_THAT(first_delays(backoff, random, 4),
              ::testing::ElementsAre(milliseconds(500), milliseconds(500), milliseconds(500),
                                     milliseconds(500)));
}

TEST(Backoff, ExponentialMultipliesUntilMax) {
  runtime::Random random(1);
  Backoff backoff({BackoffKind::kExponential, milliseconds(100), seconds(1), 2.0});
  EXPECT_THAT(first_delays(backoff, random, 6),
              ::testing::ElementsAre(milliseconds(100), milliseconds(200), milliseconds(400),
                                     milliseconds(800), seconds(1), seconds(1)));
}

TEST(Backoff, ExponentialHonoursFractionalMultiplier) {
  runtime::Random random(1);
  Backoff backoff({BackoffKind::kExponential, seconds(1), seconds(120), 1.6});
  EXPECT_THAT(first_delays(backoff, random, 3),
              ::testing::ElementsAre(seconds(1), milliseconds(1600), milliseconds(2560)));
}

TEST(Backoff, ExponentialDoesNotDrawRandomness) {
  runtime::Random used(7);
  runtime::Random untouched(7);
  Backoff backoff({BackoffKind::kExponential, milliseconds(100), seconds(1), 2.0});
  first_delays(backoff, used, 5);
  EXPECT_EQ(used.next_u64(), untouched.next_u64());
}

TEST(Backoff, FullJitterStaysWithinZeroAndTheExponentialCeiling) {
  const BackoffPolicy policy{BackoffKind::kExponentialFullJitter, milliseconds(100), seconds(2),
                             2.0};
  const std::vector<Duration> ceilings = {milliseconds(100), milliseconds(200),  milliseconds(400),
                                          milliseconds(800), milliseconds(1600), seconds(2),
                                          seconds(2)};
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    runtime::Random random(seed);
    Backoff backoff(policy);
    for (Duration ceiling : ceilings) {
      const Duration delay = backoff.next(random);
      ASSERT_GE(delay, Duration::zero()) << "seed " << seed;
      ASSERT_LE(delay, ceiling) << "seed " << seed;
    }
  }
}

TEST(Backoff, FullJitterSpreadsOverTheWholeRange) {
  // Over many draws of the first delay, some land in the bottom and some in the top tenth:
  // the jitter is full, not a small wobble around the ceiling.
  bool low = false;
  bool high = false;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    runtime::Random random(seed);
    Backoff backoff({BackoffKind::kExponentialFullJitter, milliseconds(100), seconds(2), 2.0});
    const Duration delay = backoff.next(random);
    low = low || delay < milliseconds(10);
    high = high || delay > milliseconds(90);
  }
  EXPECT_TRUE(low);
  EXPECT_TRUE(high);
}

TEST(Backoff, SameSeedGivesSameJitteredSequence) {
  const BackoffPolicy policy{BackoffKind::kDecorrelatedJitter, milliseconds(100), seconds(2), 2.0};
  runtime::Random a(42);
  runtime::Random b(42);
  Backoff first(policy);
  Backoff second(policy);
  EXPECT_EQ(first_delays(first, a, 20), first_delays(second, b, 20));
}

TEST(Backoff, DecorrelatedJitterStaysBetweenInitialAndThreeTimesPreviousCappedAtMax) {
  const BackoffPolicy policy{BackoffKind::kDecorrelatedJitter, milliseconds(100), seconds(2), 2.0};
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    runtime::Random random(seed);
    Backoff backoff(policy);
    Duration previous = milliseconds(100);
    for (int i = 0; i < 20; ++i) {
      const Duration delay = backoff.next(random);
      ASSERT_GE(delay, milliseconds(100)) << "seed " << seed << " delay " << i;
      ASSERT_LE(delay, std::min<Duration>(seconds(2), previous * 3))
          << "seed " << seed << " delay " << i;
      previous = delay;
    }
  }
}

TEST(Backoff, DecorrelatedJitterReachesMax) {
  runtime::Random random(3);
  Backoff backoff({BackoffKind::kDecorrelatedJitter, milliseconds(100), seconds(2), 2.0});
  bool reached = false;
  for (int i = 0; i < 200 && !reached; ++i) reached = backoff.next(random) == seconds(2);
  EXPECT_TRUE(reached);
}

TEST(Backoff, ResetStartsTheSequenceOver) {
  runtime::Random random(1);
  Backoff backoff({BackoffKind::kExponential, milliseconds(100), seconds(1), 2.0});
  first_delays(backoff, random, 3);
  EXPECT_EQ(backoff.delays_given(), 3);
  backoff.reset();
  EXPECT_EQ(backoff.delays_given(), 0);
  EXPECT_EQ(backoff.next(random), milliseconds(100));
}

TEST(Backoff, ResetReturnsDecorrelatedJitterToInitial) {
  runtime::Random random(5);
  Backoff backoff({BackoffKind::kDecorrelatedJitter, milliseconds(100), seconds(60), 2.0});
  first_delays(backoff, random, 30);
  backoff.reset();
  EXPECT_LE(backoff.next(random), milliseconds(300));
}

TEST(Backoff, DoesNotOverflowAtAttemptThousand) {
  for (BackoffKind kind : {BackoffKind::kExponential, BackoffKind::kExponentialFullJitter,
                           BackoffKind::kDecorrelatedJitter}) {
    runtime::Random random(9);
    Backoff backoff({kind, milliseconds(100), seconds(2), 10.0});
    Duration delay{};
    for (int i = 0; i < 1000; ++i) delay = backoff.next(random);
    EXPECT_GE(delay, Duration::zero()) << backoff_kind_name(kind);
    EXPECT_LE(delay, seconds(2)) << backoff_kind_name(kind);
  }
}

TEST(Backoff, HugeMaxDoesNotOverflow) {
  runtime::Random random(9);
  Backoff exponential({BackoffKind::kExponential, seconds(1), Duration::max(), 1000.0});
  Backoff decorrelated({BackoffKind::kDecorrelatedJitter, seconds(1), Duration::max(), 2.0});
  for (int i = 0; i < 1000; ++i) {
    ASSERT_GE(exponential.next(random), seconds(1)) << i;
    ASSERT_GE(decorrelated.next(random), seconds(1)) << i;
  }
  EXPECT_EQ(exponential.next(random), Duration::max());
}

TEST(Backoff, ClampsInitialAboveMax) {
  runtime::Random random(1);
  Backoff backoff({BackoffKind::kFixed, seconds(5), seconds(1), 2.0});
  EXPECT_EQ(backoff.next(random), seconds(1));
}

TEST(BackoffPolicyValidation, AcceptsDefaults) {
  EXPECT_THAT(validate_backoff_policy(BackoffPolicy{}), IsOk());
}

TEST(BackoffPolicyValidation, RejectsMaxBelowInitial) {
  EXPECT_THAT(validate_backoff_policy({BackoffKind::kFixed, seconds(5), seconds(1), 2.0}),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("max")));
}

TEST(BackoffPolicyValidation, RejectsMultiplierBelowOne) {
  EXPECT_THAT(validate_backoff_policy({BackoffKind::kExponential, seconds(1), seconds(5), 0.5}),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("multiplier")));
}

TEST(BackoffPolicyValidation, RejectsNegativeInitial) {
  EXPECT_THAT(validate_backoff_policy({BackoffKind::kFixed, seconds(-1), seconds(5), 2.0}),
              StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("initial")));
}

}  // namespace
}  // namespace meshrpc::resilience
