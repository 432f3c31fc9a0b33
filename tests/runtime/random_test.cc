#include "meshrpc/runtime/random.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>

namespace meshrpc::runtime {
namespace {

TEST(Random, SameSeedGivesTheSameSequence) {
  Random a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Random, SequenceIsPinned) {
  // Golden values: a change of algorithm or seeding would silently change what every
  // simulation seed means, so it must show up here first.
  Random random(1);
  EXPECT_EQ(random.next_u64(), 12966619160104079557ULL);
  EXPECT_EQ(random.next_u64(), 9600361134598540522ULL);
}

TEST(Random, UniformStaysInRangeAndCoversIt) {
  Random random(7);
  std::array<int, 10> counts{};
  for (int i = 0; i < 100'000; ++i) {
    const uint64_t x = random.uniform(10);
    ASSERT_LT(x, 10u);
    ++counts[x];
  }
  for (int count : counts) EXPECT_NEAR(count, 10'000, 600);
  EXPECT_EQ(random.uniform(0), 0u);
  EXPECT_EQ(random.uniform(1), 0u);
}

TEST(Random, UniformIntIsInclusive) {
  Random random(7);
  bool saw_lo = false, saw_hi = false;
  for (int i = 0; i < 10'000; ++i) {
    const int64_t x = random.uniform_int(-2, 2);
    ASSERT_GE(x, -2);
    ASSERT_LE(x, 2);
    saw_lo |= x == -2;
    saw_hi |= x == 2;
  }
  EXPECT_TRUE(saw_lo && saw_hi);
  EXPECT_EQ(random.uniform_int(5, 5), 5);
}

TEST(Random, BernoulliHonoursProbability) {
  Random random(11);
  int hits = 0;
  for (int i = 0; i < 100'000; ++i) hits += random.bernoulli(0.25);
  EXPECT_NEAR(hits, 25'000, 800);
  EXPECT_FALSE(random.bernoulli(0.0));
  EXPECT_TRUE(random.bernoulli(1.0));
}

TEST(Random, NextDoubleIsInUnitInterval) {
  Random random(3);
  for (int i = 0; i < 10'000; ++i) {
    const double x = random.next_double();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
  }
}

TEST(Random, UniformDurationIsBounded) {
  Random random(3);
  for (int i = 0; i < 1000; ++i) {
    const Duration d = random.uniform_duration(Duration(100), Duration(200));
    ASSERT_GE(d.count(), 100);
    ASSERT_LE(d.count(), 200);
  }
}

}  // namespace
}  // namespace meshrpc::runtime
